import AccessDomain
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
        let organisation = try Validate.organisation(input.path.orgId, field: "orgId")
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        let found = try await administration.members(actor: actor, organisation: organisation, before: before, limit: limit + 1)
        let page = Array(found.prefix(limit))
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.map { member in
                            .init(
                                accountId: member.account.rawValue, email: member.email, displayName: member.displayName,
                                roles: member.assignments.map { assignment in
                                    .init(
                                        assignmentId: assignment.id, role: .init(rawValue: assignment.role.rawValue) ?? .sporIndustryUser,
                                        effectiveFrom: assignment.effectiveFrom)
                                })
                        },
                        nextCursor: found.count > limit ? page.last.map { Paging.cursor(before: $0.cursorKey) } : nil))))
    }

    func revokeMemberRole(_ input: Operations.RevokeMemberRole.Input) async throws -> Operations.RevokeMemberRole.Output {
        let actor = try RequestActor.required()
        let organisation = try Validate.organisation(input.path.orgId, field: "orgId")
        let account = try Validate.account(input.path.accountId, field: "accountId")
        guard let role = Role(rawValue: input.path.role.rawValue), role.needsOrganisation else {
            throw Problem.validation("role must be an organisation role.", field: "role")
        }
        var reason: String?
        if case .json(let body)? = input.body { reason = body.reason }
        if let text = reason, text.count > 2000 {
            throw Problem.validation("reason has at most 2000 characters.", field: "reason")
        }
        let assignment = try await administration.activeAssignment(
            actor: actor, account: account, role: role, organisation: organisation)
        let channel: RevocationChannel
        if try await administration.staffRoles(of: actor).contains(.serviceDesk) {
            channel = .serviceDesk
        } else if account == actor {
            channel = .own
        } else {
            channel = .organisation
        }
        _ = try await requests.revoke(
            actor: actor, assignment: assignment, channel: channel, reason: reason, expectedOrganisation: organisation)
        return .noContent(.init())
    }

    // MARK: EMA service desk: the queue and the letters (R10)

    func listTickets(_ input: Operations.ListTickets.Input) async throws -> Operations.ListTickets.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        let found = try await administration.tickets(
            actor: actor, status: input.query.status?.rawValue, overdue: input.query.overdue, before: before, limit: limit + 1)
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
        switch letter.contentType {
        case "application/pdf": return .ok(.init(body: .pdf(body)))
        case "image/png": return .ok(.init(body: .png(body)))
        case "image/jpeg": return .ok(.init(body: .jpeg(body)))
        default: throw Problem.notFound("The letter of ticket \(input.path.ticketId) has a type this server does not serve.")
        }
    }

    // MARK: OMS change requests (R17)

    func listOrganisationChangeRequests(
        _ input: Operations.ListOrganisationChangeRequests.Input
    ) async throws -> Operations.ListOrganisationChangeRequests.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        let found = try await administration.changeRequests(
            actor: actor, status: input.query.status?.rawValue, before: before, limit: limit + 1)
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
        let name = body.name.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...300).contains(name.count) else { throw Problem.validation("name needs 1 to 300 characters.", field: "name") }
        guard Validate.isCountry(body.country) else {
            throw Problem.validation("country must be a two-letter ISO code such as NL.", field: "country")
        }
        let city = body.city.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(city.count) else { throw Problem.validation("city needs 1 to 200 characters.", field: "city") }
        if let address = body.address, address.count > 500 {
            throw Problem.validation("address has at most 500 characters.", field: "address")
        }
        if let justification = body.justification, justification.count > 2000 {
            throw Problem.validation("justification has at most 2000 characters.", field: "justification")
        }
        guard (1...10).contains(body.documents.count) else {
            throw Problem.validation("Attach 1 to 10 supporting documents.", field: "documents")
        }
        var documents: [Upload] = []
        for (index, document) in body.documents.enumerated() {
            let field = "documents[\(index)]"
            let fileName = document.fileName.trimmingCharacters(in: .whitespacesAndNewlines)
            guard (1...255).contains(fileName.count) else {
                throw Problem.validation("\(field).fileName needs 1 to 255 characters.", field: "\(field).fileName")
            }
            let bytes = Array(document.contentBase64.data)
            guard !bytes.isEmpty, bytes.count <= maximumUploadSize else {
                throw Problem.validation("\(field) must hold 1 byte to 10 MB.", field: "\(field).contentBase64")
            }
            guard Self.matchesMagicBytes(bytes, contentType: document.contentType.rawValue) else {
                throw Problem.validation(
                    "\(field) is not a \(document.contentType.rawValue) file.", field: "\(field).contentBase64")
            }
            documents.append(Upload(fileName: fileName, contentType: document.contentType.rawValue, bytes: bytes))
        }
        let filed = try await changeRequests.file(
            actor: actor, name: name, country: body.country, city: city, address: body.address,
            justification: body.justification, documents: documents)
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
        guard body.reason.count <= 2000 else { throw Problem.validation("reason has at most 2000 characters.", field: "reason") }
        let id = input.path.changeRequestId
        _ = try await changeRequests.decide(actor: actor, request: id, approve: false, reason: body.reason)
        return .ok(.init(body: .json(Self.changeRequest(try await administration.changeRequest(actor: actor, id: id)))))
    }

    static func changeRequest(_ c: AdministrationQueries.ChangeRequest) -> Components.Schemas.OrganisationChangeRequest {
        .init(
            id: c.id, requesterId: c.requester.rawValue, name: c.name, country: c.country, city: c.city, address: c.address,
            justification: c.justification, status: .init(rawValue: c.status) ?? .pending, createdAt: c.createdAt,
            decidedAt: c.decidedAt, decisionReason: c.decisionReason, organisationId: c.organisation?.rawValue,
            documentCount: c.documents)
    }

    /// Whether the bytes start like the declared type (the documents table checks the same).
    static func matchesMagicBytes(_ bytes: [UInt8], contentType: String) -> Bool {
        let magic: [UInt8]
        switch contentType {
        case "application/pdf": magic = Array("%PDF-".utf8)
        case "image/png": magic = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        case "image/jpeg": magic = [0xFF, 0xD8, 0xFF]
        default: return false
        }
        return bytes.starts(with: magic)
    }

    // MARK: Audit trail (R15) and notification outbox (R16)

    func listAuditEvents(_ input: Operations.ListAuditEvents.Input) async throws -> Operations.ListAuditEvents.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        let organisation = try input.query.organisationId.map { try Validate.organisation($0, field: "organisationId") }
        let account = try input.query.accountId.map { try Validate.account($0, field: "accountId") }
        if let from = input.query.from, let to = input.query.to, from > to {
            throw Problem.validation("from must not be after to.", field: "from")
        }
        let found = try await administration.auditEvents(
            actor: actor, organisation: organisation, account: account, from: input.query.from, to: input.query.to,
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
            if UUID(uuidString: recipient) != nil {
                account = try Validate.account(recipient, field: "recipient")
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
                        items: page.map {
                            .init(
                                id: $0.id, template: $0.template, recipient: $0.recipient, subject: $0.subject, body: $0.body,
                                createdAt: $0.createdAt, deliveredAt: $0.deliveredAt)
                        },
                        nextCursor: found.count > limit ? page.last.map { Paging.cursor(before: $0.id) } : nil))))
    }

    static func auditEvent(_ e: AdministrationQueries.AuditEvent) throws -> Components.Schemas.AuditEvent {
        .init(
            id: e.id, occurredAt: e.occurredAt, actorId: e.actor?.rawValue, action: e.action, organisationId: e.organisation,
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

extension Validate {
    /// An account id (a UUID), normalised to lower case as the store writes it.
    static func account(_ text: String, field: String) throws -> AccountID {
        guard text.count <= 36, let uuid = UUID(uuidString: text) else {
            throw Problem.validation("\(field) must be an account id (a UUID).", field: field)
        }
        return AccountID(uuid.uuidString.lowercased())
    }
}
