import AccessDomain
import AccessOpenAPI
import AccessStore
import Foundation
import OpenAPIRuntime

/// Implements the generated `APIProtocol` (from `openapi.yaml`): decode, check input, call the store, encode.
/// Refusals and store errors are thrown and turned into problems in one place (`Problem.from`).
struct APIHandler: APIProtocol {
    let requests: AccessRequestStore
    let accounts: AccountStore
    let sessions: SessionStore
    let tickets: TicketStore
    let queries: Queries
    let reports: Reports
    let reviews: AccessReviewStore
    /// Largest decoded upload (the affiliation letter).
    let maximumUploadSize = TicketPolicy.maximumLetterSize

    // MARK: Public

    func searchOrganisations(_ input: Operations.SearchOrganisations.Input) async throws -> Operations.SearchOrganisations.Output {
        let limit = try Paging.limit(input.query.limit)
        let offset = try Paging.offset(input.query.cursor)
        if let country = input.query.country, !ApprovalPolicy.isCountryCode(country) {
            throw Problem.validation("country must be a two-letter ISO code such as NL.", field: "country")
        }
        if let q = input.query.q, q.count > 200 { throw Problem.validation("q is longer than 200 characters.", field: "q") }
        let found = try await queries.searchOrganisations(query: input.query.q, country: input.query.country, limit: limit + 1, offset: offset)
        let page = Array(found.prefix(limit))
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.map(Self.organisation),
                        nextCursor: found.count > limit ? Paging.cursor(offset: offset + limit) : nil))))
    }

    func getOrganisation(_ input: Operations.GetOrganisation.Input) async throws -> Operations.GetOrganisation.Output {
        .ok(.init(body: .json(Self.organisation(try await queries.organisation(input.path.orgId)))))
    }

    func register(_ input: Operations.Register.Input) async throws -> Operations.Register.Output {
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        let email = body.email.trimmingCharacters(in: .whitespacesAndNewlines)
        guard Validate.isEmail(email) else { throw Problem.validation("email is not an e-mail address.", field: "email") }
        let name = body.displayName.trimmingCharacters(in: .whitespacesAndNewlines)
        guard (1...200).contains(name.count) else { throw Problem.validation("displayName needs 1 to 200 characters.", field: "displayName") }
        guard body.password.count >= 12 else {
            throw Problem.validation("The password needs at least 12 characters.", field: "password")
        }
        guard body.password.count <= 1000 else { throw Problem.validation("The password is too long.", field: "password") }
        let account = try await accounts.register(email: email, displayName: name, password: body.password)
        return .created(
            .init(
                body: .json(
                    .init(
                        id: account, email: email, displayName: name, status: .pending))))
    }

    func verifyAccount(_ input: Operations.VerifyAccount.Input) async throws -> Operations.VerifyAccount.Output {
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        guard (1...200).contains(body.token.count) else { throw Problem.validation("token is missing or too long.", field: "token") }
        try await accounts.verify(token: body.token)
        return .ok(.init(body: .json(.init(status: .active))))
    }

    /// The link of the verification e-mail: the same as the POST.
    func verifyAccountLink(_ input: Operations.VerifyAccountLink.Input) async throws -> Operations.VerifyAccountLink.Output {
        guard (1...200).contains(input.query.token.count) else { throw Problem.validation("token is missing or too long.", field: "token") }
        try await accounts.verify(token: input.query.token)
        return .ok(.init(body: .json(.init(status: .active))))
    }

    func signIn(_ input: Operations.SignIn.Input) async throws -> Operations.SignIn.Output {
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        guard body.email.count <= 254, body.password.count <= 1000 else { throw SignInFailure.invalidCredentials }
        let session = try await sessions.signIn(email: body.email.trimmingCharacters(in: .whitespacesAndNewlines), password: body.password)
        let profile = session.profile
        return .created(
            .init(
                body: .json(
                    .init(
                        token: session.token, expiresAt: session.expiresAt,
                        account: .init(
                            id: profile.account, email: profile.email, displayName: profile.displayName,
                            securityQuestionsSet: profile.securityQuestionsSet)))))
    }

    // MARK: Signed in

    func signOut(_ input: Operations.SignOut.Input) async throws -> Operations.SignOut.Output {
        try await sessions.signOut(try RequestActor.required())
        return .noContent(.init())
    }

    func getMe(_ input: Operations.GetMe.Input) async throws -> Operations.GetMe.Output {
        let profile = try await sessions.profile(of: try RequestActor.required())
        return .ok(
            .init(
                body: .json(
                    .init(
                        account: .init(
                            id: profile.account, email: profile.email, displayName: profile.displayName, status: profile.status),
                        staffRoles: profile.staffRoles,
                        roleAssignments: profile.assignments.map(Self.assignment)))))
    }

    func setSecurityQuestions(_ input: Operations.SetSecurityQuestions.Input) async throws -> Operations.SetSecurityQuestions.Output {
        let actor = try RequestActor.required()
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        try await accounts.setSecurityAnswers(
            actor: actor, answers: body.answers.map { SecurityAnswer(question: $0.question, answer: $0.answer) })
        return .noContent(.init())
    }

    func listMyAccessRequests(_ input: Operations.ListMyAccessRequests.Input) async throws -> Operations.ListMyAccessRequests.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        let found = try await queries.myRequests(actor: actor, before: before, limit: limit + 1)
        return .ok(.init(body: .json(Self.page(found, limit: limit))))
    }

    func dropOwnRole(_ input: Operations.DropOwnRole.Input) async throws -> Operations.DropOwnRole.Output {
        let actor = try RequestActor.required()
        _ = try await requests.revoke(actor: actor, assignment: input.path.assignmentId, channel: .own)
        return .noContent(.init())
    }

    func createAccessRequest(_ input: Operations.CreateAccessRequest.Input) async throws -> Operations.CreateAccessRequest.Output {
        let actor = try RequestActor.required()
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        if let justification = body.justification, justification.count > 2000 {
            throw Problem.validation("justification has at most 2000 characters.", field: "justification")
        }
        let submission = try await requests.submit(
            actor: actor, role: body.role, organisation: body.organisationId, justification: body.justification,
            accessUntil: body.accessUntil)
        return .created(.init(body: .json(Self.request(submission.request))))
    }

    func getAccessRequest(_ input: Operations.GetAccessRequest.Input) async throws -> Operations.GetAccessRequest.Output {
        let actor = try RequestActor.required()
        return .ok(.init(body: .json(Self.request(try await requests.request(AccessRequestID(input.path.requestId), actor: actor)))))
    }

    func cancelAccessRequest(_ input: Operations.CancelAccessRequest.Input) async throws -> Operations.CancelAccessRequest.Output {
        let actor = try RequestActor.required()
        return .ok(.init(body: .json(Self.request(try await requests.cancel(actor: actor, request: AccessRequestID(input.path.requestId))))))
    }

    // MARK: Super user approval API

    func listOrganisationAccessRequests(
        _ input: Operations.ListOrganisationAccessRequests.Input
    ) async throws -> Operations.ListOrganisationAccessRequests.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let before = try Paging.before(input.query.cursor)
        let found = try await queries.organisationRequests(
            actor: actor, organisation: input.path.orgId, status: input.query.status, before: before, limit: limit + 1)
        return .ok(.init(body: .json(Self.page(found, limit: limit))))
    }

    func approveOrganisationAccessRequest(
        _ input: Operations.ApproveOrganisationAccessRequest.Input
    ) async throws -> Operations.ApproveOrganisationAccessRequest.Output {
        let actor = try RequestActor.required()
        var comment: String?
        var until: Date?
        if case .json(let body)? = input.body { (comment, until) = (body.comment, body.accessUntil) }
        let decision = try await requests.decide(
            actor: actor, request: AccessRequestID(input.path.requestId), channel: .organisation, action: .approve,
            comment: comment, expectedOrganisation: input.path.orgId, grantUntil: until)
        return .ok(.init(body: .json(Self.request(decision.request))))
    }

    func rejectOrganisationAccessRequest(
        _ input: Operations.RejectOrganisationAccessRequest.Input
    ) async throws -> Operations.RejectOrganisationAccessRequest.Output {
        let actor = try RequestActor.required()
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        let decision = try await requests.decide(
            actor: actor, request: AccessRequestID(input.path.requestId), channel: .organisation,
            action: .reject(reason: body.reason), expectedOrganisation: input.path.orgId)
        return .ok(.init(body: .json(Self.request(decision.request))))
    }

    // MARK: EMA service desk

    func openTicket(_ input: Operations.OpenTicket.Input) async throws -> Operations.OpenTicket.Output {
        let actor = try RequestActor.required()
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        guard let requestID = body.accessRequestId.map(AccessRequestID.init) ?? TicketPolicy.quotedRequestID(in: body.subject) else {
            throw Problem.validation(
                "Quote the access request id: accessRequestId, or \"request ID 10123\" in the subject.", field: "accessRequestId")
        }
        let letter = Array(body.letter.contentBase64.data)
        guard letter.count <= maximumUploadSize else {
            throw Problem.validation("The affiliation letter must be at most 10 MB.", field: "letter.contentBase64")
        }
        let ticket = try await tickets.open(
            actor: actor, request: requestID, subject: body.subject, description: body.description,
            signatory: Signatory(
                name: body.signatory.name, jobTitle: body.signatory.jobTitle, email: body.signatory.email,
                organisation: body.signatory.organisationId, hasManagerialAuthority: body.signatory.hasManagerialAuthority),
            letter: Upload(fileName: body.letter.fileName, contentType: body.letter.contentType, bytes: letter))
        return .created(.init(body: .json(Self.ticket(ticket))))
    }

    func approveTicket(_ input: Operations.ApproveTicket.Input) async throws -> Operations.ApproveTicket.Output {
        let actor = try RequestActor.required()
        var comment: String?
        var until: Date?
        if case .json(let body)? = input.body { (comment, until) = (body.comment, body.accessUntil) }
        let ticket = try await serviceDeskTicket(input.path.ticketId, actor: actor)
        if let refusal = Self.ticketDecision(ticket) { throw refusal }
        _ = try await requests.decide(
            actor: actor, request: ticket.accessRequest, channel: .serviceDesk, action: .approve, comment: comment,
            grantUntil: until)
        return .ok(.init(body: .json(Self.ticket(try await tickets.ticket(ticket.id, actor: actor)))))
    }

    func rejectTicket(_ input: Operations.RejectTicket.Input) async throws -> Operations.RejectTicket.Output {
        let actor = try RequestActor.required()
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        let ticket = try await serviceDeskTicket(input.path.ticketId, actor: actor)
        if let refusal = Self.ticketDecision(ticket) { throw refusal }
        _ = try await requests.decide(
            actor: actor, request: ticket.accessRequest, channel: .serviceDesk, action: .reject(reason: body.reason))
        return .ok(.init(body: .json(Self.ticket(try await tickets.ticket(ticket.id, actor: actor)))))
    }

    /// R10, R18, R19: whether the desk may decide the ticket now (TicketPolicy.decision).
    static func ticketDecision(_ ticket: ServiceDeskTicket) -> Refusal? {
        TicketPolicy.decision(
            ticket: ticket.id, status: ticket.status, resolution: ticket.resolution, request: ticket.accessRequest,
            organisation: ticket.organisation)
    }

    /// A ticket, for the service desk only (anyone else: not found).
    private func serviceDeskTicket(_ id: Int64, actor: BearerToken) async throws -> ServiceDeskTicket {
        let profile = try await sessions.profile(of: actor)
        guard profile.staffRoles.contains(.serviceDesk) else { throw Refusal(.notFound, .r13, "Service desk ticket \(id) not found.") }
        return try await tickets.ticket(id, actor: actor)
    }

    // MARK: Mapping

    static func organisation(_ o: Queries.Organisation) -> Components.Schemas.Organisation {
        .init(id: o.id, name: o.name, country: o.country, city: o.city, status: o.status)
    }

    static func assignment(_ a: RoleAssignment) -> Components.Schemas.RoleAssignment {
        .init(assignmentId: a.id, role: a.role, organisationId: a.organisation, effectiveFrom: a.effectiveFrom, endsAt: a.endsAt)
    }

    static func request(_ r: AccessRequest) -> Components.Schemas.AccessRequest {
        .init(
            id: r.id.rawValue, role: r.role, organisationId: r.organisation, requesterId: r.requester, justification: r.justification,
            status: r.status, approverKind: r.approverKind, createdAt: r.createdAt, expiresAt: r.expiresAt, decidedAt: r.decidedAt,
            decisionReason: r.decisionReason, accessUntil: r.accessUntil)
    }

    static func page(_ found: [AccessRequest], limit: Int) -> Components.Schemas.AccessRequestPage {
        let page = Array(found.prefix(limit))
        return .init(
            items: page.map(request),
            nextCursor: found.count > limit ? page.last.map { Paging.cursor(before: $0.id.rawValue) } : nil)
    }

    static func ticket(_ t: ServiceDeskTicket) -> Components.Schemas.Ticket {
        .init(
            id: t.id, status: t.status, resolution: t.resolution, accessRequestId: t.accessRequest.rawValue,
            organisationId: t.organisation, subject: t.subject,
            openedAt: t.openedAt, dueAt: t.dueAt, resolvedAt: t.resolvedAt)
    }
}

extension Problem {
    static let unsupportedMediaType = Problem(
        status: .unsupportedMediaType, code: "unsupported-media-type", title: "Unsupported media type",
        detail: "Send the body as application/json.")
}

/// Input checks the generated layer does not make (patterns, lengths).
enum Validate {

    static func isEmail(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return text.count <= 254 && parts.count == 2 && !parts[0].isEmpty && parts[1].contains(".")
            && !text.contains(where: \.isWhitespace)
    }
}

/// Cursor paging: opaque cursors (`o<offset>` for search, `b<id>` for keyset lists), base64url-free plain text.
enum Paging {
    static func limit(_ value: Int?) throws -> Int {
        let limit = value ?? 50
        guard (1...500).contains(limit) else { throw Problem.validation("limit must be between 1 and 500.", field: "limit") }
        return limit
    }

    static func cursor(offset: Int) -> String { "o\(offset)" }
    static func cursor(before id: Int64) -> String { "b\(id)" }
    static func cursor(after id: Int64) -> String { "a\(id)" }

    static func after(_ cursor: String?) throws -> Int64? {
        guard let cursor else { return nil }
        guard cursor.hasPrefix("a"), let value = Int64(cursor.dropFirst()), value > 0 else {
            throw Problem.validation("cursor is not one this server gave out.", field: "cursor")
        }
        return value
    }

    static func offset(_ cursor: String?) throws -> Int {
        guard let cursor else { return 0 }
        guard cursor.hasPrefix("o"), let value = Int(cursor.dropFirst()), value >= 0, value <= 1_000_000 else {
            throw Problem.validation("cursor is not one this server gave out.", field: "cursor")
        }
        return value
    }

    static func before(_ cursor: String?) throws -> Int64? {
        guard let cursor else { return nil }
        guard cursor.hasPrefix("b"), let value = Int64(cursor.dropFirst()), value > 0 else {
            throw Problem.validation("cursor is not one this server gave out.", field: "cursor")
        }
        return value
    }
}
