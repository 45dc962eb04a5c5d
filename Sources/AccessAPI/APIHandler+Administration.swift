import AccessDomain
import AccessOpenAPI
import AccessStore
import Foundation
import OpenAPIRuntime

/// The administration endpoints: organisation members (super user API), the service desk's ticket queue and letters,
/// OMS change requests, the audit trail and the notification outbox. Reads run as the caller, so row-level security
/// applies (R13); what the caller may not see answers 404 exactly as if it did not exist.
extension APIHandler {
    var administration: AdministrationQueries { AdministrationQueries(database: queries.database) }
    var changeRequests: OMSChangeRequestStore { OMSChangeRequestStore(database: queries.database) }

    // MARK: Super user API: members (R13, R14)

    func listOrganisationMembers(
        _ input: Operations.ListOrganisationMembers.Input
    ) async throws -> Operations.ListOrganisationMembers.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        let found = try await administration.members(actor: actor, organisation: input.path.orgId, before: before, limit: limit + 1)
        let page = Array(found.prefix(limit))
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.map { member in
                            .init(
                                accountId: member.account, email: member.email, displayName: member.displayName,
                                roles: member.assignments.map {
                                    .init(assignmentId: $0.id, role: $0.role, effectiveFrom: $0.effectiveFrom, endsAt: $0.endsAt)
                                })
                        },
                        nextCursor: found.count > limit ? page.last.map { Paging.cursor(before: $0.cursorKey) } : nil))))
    }

    func revokeMemberRole(_ input: Operations.RevokeMemberRole.Input) async throws -> Operations.RevokeMemberRole.Output {
        let actor = try RequestActor.required()
        let (organisation, account, role) = (input.path.orgId, input.path.accountId, input.path.role)
        guard role.needsOrganisation else {
            throw Problem.validation("role must be an organisation role.", field: "role")
        }
        var reason: String?
        if case .json(let body)? = input.body { reason = body.reason }
        if let text = reason, text.count > 2000 {
            throw Problem.validation("reason has at most 2000 characters.", field: "reason")
        }
        let assignment = try await administration.activeAssignment(
            actor: actor, account: account, role: role, organisation: organisation)
        _ = try await requests.revoke(
            actor: actor, assignment: assignment, channel: nil, reason: reason, expectedOrganisation: organisation)
        return .noContent(.init())
    }

    // MARK: EMA service desk: the queue and the letters (R10)

    func listTickets(_ input: Operations.ListTickets.Input) async throws -> Operations.ListTickets.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        let found = try await administration.tickets(
            actor: actor, status: input.query.status, overdue: input.query.overdue, before: before, limit: limit + 1)
        let page = Array(found.prefix(limit))
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.map(Self.ticket),
                        nextCursor: found.count > limit ? page.last.map { Paging.cursor(before: $0.id) } : nil))))
    }

    func getTicket(_ input: Operations.GetTicket.Input) async throws -> Operations.GetTicket.Output {
        let actor = try RequestActor.required()
        return .ok(.init(body: .json(Self.ticket(try await tickets.ticket(input.path.ticketId, actor: actor)))))
    }

    func getTicketLetter(_ input: Operations.GetTicketLetter.Input) async throws -> Operations.GetTicketLetter.Output {
        let actor = try RequestActor.required()
        let letter = try await administration.letter(actor: actor, ticket: input.path.ticketId)
        let body = HTTPBody(letter.bytes)
        // A download, never rendered inline, never sniffed as another type (R10's letter comes from the requester).
        let headers = Operations.GetTicketLetter.Output.Ok.Headers(
            contentDisposition: Self.attachment(fileName: letter.fileName), xContentTypeOptions: "nosniff")
        switch letter.contentType {
        case .pdf: return .ok(.init(headers: headers, body: .pdf(body)))
        case .png: return .ok(.init(headers: headers, body: .png(body)))
        case .jpeg: return .ok(.init(headers: headers, body: .jpeg(body)))
        }
    }

    /// `attachment` with the file name (RFC 6266): an ASCII fallback without quotes, backslashes or control
    /// characters, and the exact name percent-encoded as `filename*`.
    static func attachment(fileName: String) -> String {
        let fallback = String(
            fileName.unicodeScalars.map { $0.isASCII && $0.value >= 0x20 && $0 != "\"" && $0 != "\\" && $0.value != 0x7F ? Character($0) : "_" })
        let allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(0x80)))
            .union(CharacterSet(charactersIn: "!#$&+-.^_`|~"))
        let encoded = fileName.addingPercentEncoding(withAllowedCharacters: allowed) ?? fallback
        return "attachment; filename=\"\(fallback)\"; filename*=UTF-8''\(encoded)"
    }

    // MARK: OMS change requests (R17)

    func listOrganisationChangeRequests(
        _ input: Operations.ListOrganisationChangeRequests.Input
    ) async throws -> Operations.ListOrganisationChangeRequests.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        let found = try await administration.changeRequests(
            actor: actor, status: input.query.status, before: before, limit: limit + 1)
        let page = Array(found.prefix(limit))
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.map(Self.changeRequest),
                        nextCursor: found.count > limit ? page.last.map { Paging.cursor(before: $0.id) } : nil))))
    }

    func createOrganisationChangeRequest(
        _ input: Operations.CreateOrganisationChangeRequest.Input
    ) async throws -> Operations.CreateOrganisationChangeRequest.Output {
        let actor = try RequestActor.required()
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        let draft = try ApprovalPolicy.validate(
            OMSChangeRequestDraft(
                name: body.name, country: body.country, city: body.city, address: body.address, justification: body.justification,
                documents: body.documents.map {
                    Upload(fileName: $0.fileName, contentType: $0.contentType, bytes: Array($0.contentBase64.data))
                })
        ).get()
        let filed = try await changeRequests.file(actor: actor, draft)
        return .created(.init(body: .json(Self.changeRequest(try await administration.changeRequest(actor: actor, id: filed.id)))))
    }

    func approveOrganisationChangeRequest(
        _ input: Operations.ApproveOrganisationChangeRequest.Input
    ) async throws -> Operations.ApproveOrganisationChangeRequest.Output {
        let actor = try RequestActor.required()
        let id = input.path.changeRequestId
        _ = try await changeRequests.decide(actor: actor, request: id, approve: true, reason: nil)
        return .ok(.init(body: .json(Self.changeRequest(try await administration.changeRequest(actor: actor, id: id)))))
    }

    func rejectOrganisationChangeRequest(
        _ input: Operations.RejectOrganisationChangeRequest.Input
    ) async throws -> Operations.RejectOrganisationChangeRequest.Output {
        let actor = try RequestActor.required()
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        let id = input.path.changeRequestId
        _ = try await changeRequests.decide(actor: actor, request: id, approve: false, reason: body.reason)
        return .ok(.init(body: .json(Self.changeRequest(try await administration.changeRequest(actor: actor, id: id)))))
    }

    static func changeRequest(_ c: AdministrationQueries.ChangeRequest) -> Components.Schemas.OrganisationChangeRequest {
        .init(
            id: c.id, requesterId: c.requester, name: c.name, country: c.country, city: c.city, address: c.address,
            justification: c.justification, status: c.status, createdAt: c.createdAt, decidedAt: c.decidedAt,
            decisionReason: c.decisionReason, organisationId: c.organisation,
            documentCount: c.documents)
    }

    // MARK: Audit trail (R15) and notification outbox (R16)

    func listAuditEvents(_ input: Operations.ListAuditEvents.Input) async throws -> Operations.ListAuditEvents.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        if let from = input.query.from, let to = input.query.to, from > to {
            throw Problem.validation("from must not be after to.", field: "from")
        }
        let found = try await administration.auditEvents(
            actor: actor, organisation: input.query.organisationId, account: input.query.accountId, from: input.query.from, to: input.query.to,
            before: before, limit: limit + 1)
        let page = Array(found.prefix(limit))
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: try page.map(Self.auditEvent),
                        nextCursor: found.count > limit ? page.last.map { Paging.cursor(before: $0.id) } : nil))))
    }

    func listNotifications(_ input: Operations.ListNotifications.Input) async throws -> Operations.ListNotifications.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        var email: String?
        var account: AccountID?
        if let recipient = input.query.recipient?.trimmingCharacters(in: .whitespacesAndNewlines) {
            if let id = AccountID(recipient) {
                account = id
            } else if Validate.isEmail(recipient) {
                email = recipient
            } else {
                throw Problem.validation("recipient must be an e-mail address or an account id.", field: "recipient")
            }
        }
        let found = try await administration.notifications(
            actor: actor, recipientEmail: email, recipientAccount: account, before: before, limit: limit + 1)
        let page = Array(found.prefix(limit))
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.map(Self.notification),
                        nextCursor: found.count > limit ? page.last.map { Paging.cursor(before: $0.id) } : nil))))
    }

    func requeueNotification(_ input: Operations.RequeueNotification.Input) async throws -> Operations.RequeueNotification.Output {
        let actor = try RequestActor.required()
        let message = try await administration.requeueNotification(actor: actor, id: input.path.notificationId)
        return .ok(.init(body: .json(Self.notification(message))))
    }

    static func notification(_ n: AdministrationQueries.Notification) -> Components.Schemas.Notification {
        let status: Components.Schemas.Notification.StatusPayload =
            switch n.status {
            case .queued: .queued
            case .sent: .sent
            case .dead: .dead
            }
        return .init(
            id: n.id, template: n.template, recipient: n.recipient, subject: n.subject, createdAt: n.createdAt,
            status: status, attempts: Int32(clamping: n.attempts), lastError: n.lastError,
            nextAttemptAt: n.status == .queued ? n.nextAttemptAt : nil, deliveredAt: n.deliveredAt, deadAt: n.deadAt)
    }

    static func auditEvent(_ e: AdministrationQueries.AuditEvent) throws -> Components.Schemas.AuditEvent {
        .init(
            id: e.id, occurredAt: e.occurredAt, actorId: e.actor, action: e.action, organisationId: e.organisation,
            subjectType: e.subjectType, subjectId: e.subjectID,
            before: try jsonObject(e.before).map { .init(additionalProperties: $0) },
            after: try jsonObject(e.after).map { .init(additionalProperties: $0) })
    }

    /// A stored JSON object (audit before/after) as a free-form JSON object; nil for SQL NULL or JSON null.
    static func jsonObject(_ text: String?) throws -> OpenAPIObjectContainer? {
        guard let text, text != "null" else { return nil }
        return try JSONDecoder().decode(OpenAPIObjectContainer.self, from: Data(text.utf8))
    }
}
