import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// Whether commands ask the Swift policy before writing.
public enum PolicyMode: Sendable {
    /// Normal operation: the Swift policy decides, the database re-checks.
    case enforced
    /// Tests only: skip the Swift policy and let the database alone decide (the differential test's second verdict).
    case databaseOnly
}

/// Access requests and role assignments: submit, decide, cancel, revoke, expire (R4–R18).
///
/// Each command is one transaction: act as the caller, lock the organisation, load the facts, ask
/// `ApprovalPolicy`, write, audit (R15), notify (R16). The database's triggers re-check the same rules.
public struct AccessRequestStore: Sendable {
    public let database: Database
    public let policy: PolicyMode

    public init(database: Database, policy: PolicyMode = .enforced) {
        self.database = database
        self.policy = policy
    }

    var logger: Logger { database.logger }

    // MARK: Submit

    /// Files a request (R3–R9); the unaffiliated role is approved and granted at once (R5).
    public func submit(
        actor caller: any Caller, role: Role, organisation: OrganisationID?, justification: String?
    ) async throws -> Submission {
        try await database.transaction(as: caller) { connection, actor in
            var organisationExists = false
            var superUsers = 0
            if let organisation {
                organisationExists =
                    try await connection.first(
                        "SELECT true FROM organisations WHERE id = \(organisation.rawValue) AND status = 'active'",
                        as: Bool.self, logger: logger) != nil
                if organisationExists {
                    try await Self.lock(organisation, connection, logger)
                    superUsers = try await Self.activeSuperUsers(organisation, connection, logger)
                }
            }
            guard
                let facts = try await connection.first(
                    """
                    SELECT a.status = 'active',
                           a.security_questions_waived OR EXISTS (SELECT 1 FROM security_answers s WHERE s.account_id = a.id),
                           EXISTS (SELECT 1 FROM access_requests r WHERE r.requester_id = a.id AND r.role = \(role.rawValue)
                                   AND r.organisation_id IS NOT DISTINCT FROM \(organisation?.rawValue) AND r.status = 'pending'),
                           EXISTS (SELECT 1 FROM role_assignments g WHERE g.account_id = a.id AND g.role = \(role.rawValue)
                                   AND g.organisation_id IS NOT DISTINCT FROM \(organisation?.rawValue) AND g.revoked_at IS NULL),
                           now(),
                           extract(epoch FROM s.unaffiliated_activation_delay)::float8,
                           extract(epoch FROM s.request_lifetime)::float8
                    FROM accounts a, settings s WHERE a.id = \(actor.rawValue)
                    """,
                    as: (Bool, Bool, Bool, Bool, Date, Double, Double).self, logger: logger)
            else { throw Refusal(.notFound, .r13, "The signed-in account no longer exists.") }
            let (active, questionsSet, pending, holds, now, delay, lifetime) = facts

            let decision: SubmissionDecision
            switch policy {
            case .enforced:
                decision = try ApprovalPolicy.submit(
                    SubmissionFacts(
                        requester: actor, accountActive: active, securityQuestionsSet: questionsSet, role: role,
                        organisation: organisation, organisationExists: organisationExists,
                        organisationActiveSuperUsers: superUsers, hasPendingRequestForSameRole: pending, holdsRole: holds,
                        now: now, activationDelay: delay, requestLifetime: lifetime)
                ).get()
            case .databaseOnly:
                // What the request would be if it were valid; the triggers decide whether it is.
                let kind = ApprovalPolicy.currentApproverKind(role: role, organisationActiveSuperUsers: superUsers)
                decision =
                    role == .unaffiliatedUser
                    ? SubmissionDecision(status: .approved, approverKind: kind, expiresAt: nil, grantEffectiveFrom: now.addingTimeInterval(delay))
                    : SubmissionDecision(status: .pending, approverKind: kind, expiresAt: now.addingTimeInterval(lifetime), grantEffectiveFrom: nil)
            }

            guard
                let id = try await connection.first(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, justification, status, approver_kind,
                                                 expires_at, decided_at)
                    VALUES (\(organisation?.rawValue), \(actor.rawValue), \(role.rawValue), \(justification),
                            \(decision.status.rawValue), \(decision.approverKind.rawValue), \(decision.expiresAt),
                            \(decision.status == .approved ? now : nil))
                    RETURNING id
                    """, as: Int64.self, logger: logger)
            else { throw StoreError.ruleViolation(code: "insert-failed", rule: "R13", message: "the request was not stored") }
            let request = try await Self.load(AccessRequestID(id), connection, logger)
            try await Journal.audit(
                connection,
                actor: actor,
                organisation: organisation,
                action: .requestSubmitted,
                subject: .init(type: .accessRequest, id: String(id)),
                after: ["role": role.rawValue, "status": decision.status.rawValue, "approverKind": decision.approverKind.rawValue],
                logger: logger)
            let requesterEmail = try await Self.email(of: actor, connection, logger)

            var grant: RoleAssignment?
            if let effectiveFrom = decision.grantEffectiveFrom {
                grant = try await Self.grant(request, effectiveFrom: effectiveFrom, firstSuperUser: false, actor: actor, connection, logger)
                try await Journal.notify(
                    connection,
                    organisation: nil,
                    recipient: actor,
                    email: requesterEmail,
                    Journal.Message(
                        template: .requestDecided, subject: "Your access request \(id) is approved",
                        body:
                            "The system approved your request for the SPOR Unaffiliated User role. It is effective from \(Self.format(effectiveFrom))."
                    ),
                    about: .init(type: .accessRequest, id: String(id)),
                    logger: logger)
            } else if let organisation {
                switch decision.approverKind {
                case .emaServiceDesk:
                    try await Journal.notify(
                        connection,
                        organisation: organisation,
                        recipient: actor,
                        email: requesterEmail,
                        Journal.Message(
                            template: .requestFiledFirstSuperUser, subject: "Your access request \(id): open a service desk ticket",
                            body: """
                                Your request \(id) for the SPOR Industry Super User role of \(organisation) is approved by the EMA \
                                service desk. Open a service request with "SPOR super user role access – request ID \(id)" in the \
                                subject and attach the signed SPOR User Affiliation Template Letter.
                                """),
                        about: .init(type: .accessRequest, id: String(id)),
                        logger: logger)
                default:
                    try await Journal.notifySuperUsers(
                        connection,
                        organisation: organisation,
                        Journal.Message(
                            template: .requestFiled, subject: "New access request \(id) for \(organisation)",
                            body:
                                "\(requesterEmail) asks for the role \(role.rawValue) in \(organisation). Approve or reject it in the Account Management portal."
                        ),
                        about: .init(type: .accessRequest, id: String(id)),
                        logger: logger)
                }
            }
            return Submission(request: request, grant: grant)
        }
    }

    // MARK: Decide

    /// Approves or rejects a pending request through `channel` (R8, R10–R13, R18). `expectedOrganisation` is the
    /// organisation of the address used (`/organisations/{orgId}/...`): a request of another one is not found (R13).
    /// When the organisation has gained a super user since a first-super-user request was filed, the request is
    /// re-routed to its super users (committed) and the service desk is refused (R11).
    public func decide(
        actor caller: any Caller, request id: AccessRequestID, channel: DecisionChannel, action: DecisionAction,
        comment: String? = nil, expectedOrganisation: OrganisationID? = nil
    ) async throws -> Decision {
        let result: Result<Decision, Refusal> = try await database.transaction(as: caller) { connection, actor in
            var request = try await Self.load(id, connection, logger)
            if let expectedOrganisation, request.organisation != expectedOrganisation {
                throw Refusal(.notFound, .r13, "Access request \(id) not found.")
            }
            let (superUsers, actorIsSuperUser) = try await Self.lockedFacts(request.organisation, actor: actor, connection, logger)
            let staffRoles = try await Self.staffRoles(of: actor, connection, logger)
            let hasTicket =
                try await connection.first(
                    "SELECT true FROM service_desk_tickets WHERE access_request_id = \(id.rawValue) AND status = 'open' LIMIT 1",
                    as: Bool.self, logger: logger) ?? false
            let now = try await Self.now(connection, logger)
            var facts = DecisionFacts(
                request: request.snapshot, actor: Actor(id: actor, staffRoles: staffRoles), channel: channel,
                actorIsActiveSuperUser: actorIsSuperUser, organisationActiveSuperUsers: superUsers,
                hasValidTicket: hasTicket, now: now)

            if ApprovalPolicy.rerouteNeeded(facts), let organisation = request.organisation {
                let kind = ApprovalPolicy.currentApproverKind(role: request.role, organisationActiveSuperUsers: superUsers)
                request = try await reroute(request, organisation: organisation, to: kind, actor: actor, connection)
                facts.request = request.snapshot
            }
            let outcome: DecisionOutcome
            switch policy {
            case .enforced:
                switch ApprovalPolicy.decide(facts, action) {
                case .success(let value): outcome = value
                case .failure(let refusal): return .failure(refusal)  // commits the re-route, if any
                }
            case .databaseOnly:
                switch action {
                case .approve: outcome = .approved(grant: request.role, firstSuperUser: request.approverKind == .emaServiceDesk)
                case .reject(let reason): outcome = .rejected(reason: reason)
                }
            }
            return .success(try await write(outcome, request: request, actor: actor, comment: comment, connection))
        }
        return try result.get()
    }

    /// Records the routing decided now (R11), audits it, and tells the new approvers (or, for the EMA service desk,
    /// the requester, who must open a ticket).
    private func reroute(
        _ request: AccessRequest, organisation: OrganisationID, to kind: ApproverKind, actor: AccountID, _ connection: PostgresConnection
    ) async throws -> AccessRequest {
        try await connection.query(
            "UPDATE access_requests SET approver_kind = \(kind.rawValue) WHERE id = \(request.id.rawValue)", logger: logger)
        try await Journal.audit(
            connection,
            actor: actor,
            organisation: organisation,
            action: .requestRerouted,
            subject: .init(type: .accessRequest, id: String(request.id.rawValue)),
            before: ["approverKind": request.approverKind.rawValue],
            after: ["approverKind": kind.rawValue],
            logger: logger)
        if kind == .organisationSuperUsers {
            try await Journal.notifySuperUsers(
                connection,
                organisation: organisation,
                Journal.Message(
                    template: .requestFiled, subject: "Access request \(request.id) is now yours to decide",
                    body: "\(organisation) has a super user now, so request \(request.id) for \(request.role.rawValue) is decided by its super users."
                ),
                about: .init(type: .accessRequest, id: String(request.id.rawValue)),
                logger: logger)
        } else {
            let email = try await Self.email(of: request.requester, connection, logger)
            try await Journal.notify(
                connection,
                organisation: organisation,
                recipient: request.requester,
                email: email,
                Journal.Message(
                    template: .requestFiledFirstSuperUser, subject: "Your access request \(request.id): open a service desk ticket",
                    body: """
                        \(organisation) has no super user any more, so your request \(request.id) is approved by the EMA service desk. \
                        Open a service request with "SPOR super user role access – request ID \(request.id)" in the subject and \
                        attach the signed SPOR User Affiliation Template Letter.
                        """),
                about: .init(type: .accessRequest, id: String(request.id.rawValue)),
                logger: logger)
        }
        return try await Self.load(request.id, connection, logger)
    }

    private func write(
        _ outcome: DecisionOutcome, request: AccessRequest, actor: AccountID, comment: String?, _ connection: PostgresConnection
    ) async throws -> Decision {
        let id = request.id.rawValue
        let status: RequestStatus
        let reason: String?
        switch outcome {
        case .approved: (status, reason) = (.approved, comment)
        case .rejected(let why): (status, reason) = (.rejected, why)
        }
        try await connection.query(
            """
            UPDATE access_requests SET status = \(status.rawValue), decided_by = \(actor.rawValue), decided_at = now(),
                   decision_reason = \(reason)
            WHERE id = \(id)
            """, logger: logger)
        try await Journal.audit(
            connection,
            actor: actor,
            organisation: request.organisation,
            action: status == .approved ? .requestApproved : .requestRejected,
            subject: .init(type: .accessRequest, id: String(id)),
            before: ["status": "pending"],
            after: ["status": status.rawValue, "reason": reason ?? ""],
            logger: logger)
        let decided = try await Self.load(request.id, connection, logger)
        var grant: RoleAssignment?
        if case .approved(_, let first) = outcome {
            grant = try await Self.grant(decided, effectiveFrom: nil, firstSuperUser: first, actor: actor, connection, logger)
        }
        // A first-super-user decision resolves its open service desk ticket in the same transaction (R10).
        if request.approverKind == .emaServiceDesk {
            try await resolveTickets(of: request, resolution: status, comment: reason, actor: actor, connection)
        }
        let email = try await Self.email(of: request.requester, connection, logger)
        let place = request.organisation.map { " in \($0)" } ?? ""
        try await Journal.notify(
            connection,
            organisation: request.organisation,
            recipient: request.requester,
            email: email,
            Journal.Message(
                template: .requestDecided, subject: "Your access request \(id) is \(status.rawValue)",
                body: "Your request for the role \(request.role.rawValue)\(place) was \(status.rawValue)."
                    + (reason.map { " Comment: \($0)" } ?? "")),
            about: .init(type: .accessRequest, id: String(id)),
            logger: logger)
        return Decision(request: decided, grant: grant)
    }

    private func resolveTickets(
        of request: AccessRequest, resolution: RequestStatus, comment: String?, actor: AccountID, _ connection: PostgresConnection
    ) async throws {
        let tickets = try await connection.all(
            "SELECT id FROM service_desk_tickets WHERE access_request_id = \(request.id.rawValue) AND status = 'open'",
            as: Int64.self, logger: logger)
        let email = try await Self.email(of: request.requester, connection, logger)
        for ticket in tickets {
            try await connection.query(
                """
                UPDATE service_desk_tickets SET status = 'resolved', resolution = \(resolution.rawValue),
                       resolution_comment = \(comment), resolved_by = \(actor.rawValue), resolved_at = now()
                WHERE id = \(ticket)
                """, logger: logger)
            try await Journal.audit(
                connection,
                actor: actor,
                organisation: request.organisation,
                action: .ticketResolved,
                subject: .init(type: .serviceDeskTicket, id: String(ticket)),
                before: ["status": "open"],
                after: ["status": "resolved", "resolution": resolution.rawValue],
                logger: logger)
            try await Journal.notify(
                connection,
                organisation: request.organisation,
                recipient: request.requester,
                email: email,
                Journal.Message(
                    template: .ticketResolved, subject: "Service request \(ticket) is resolved",
                    body: "The EMA service desk resolved your service request \(ticket) for access request \(request.id): \(resolution.rawValue)."),
                about: .init(type: .serviceDeskTicket, id: String(ticket)),
                logger: logger)
        }
    }

    // MARK: Cancel, expire

    /// Cancels one's own pending request (R18).
    public func cancel(actor caller: any Caller, request id: AccessRequestID) async throws -> AccessRequest {
        try await database.transaction(as: caller) { connection, actor in
            let request = try await Self.load(id, connection, logger)
            if policy == .enforced {
                try ApprovalPolicy.cancel(request: request.snapshot, actor: actor).get()
            }
            try await connection.query(
                "UPDATE access_requests SET status = 'cancelled', decided_by = \(actor.rawValue), decided_at = now() WHERE id = \(id.rawValue)",
                logger: logger)
            try await Journal.audit(
                connection,
                actor: actor,
                organisation: request.organisation,
                action: .requestCancelled,
                subject: .init(type: .accessRequest, id: String(id.rawValue)),
                before: ["status": request.status.rawValue],
                after: ["status": "cancelled"],
                logger: logger)
            return try await Self.load(id, connection, logger)
        }
    }

    /// Expires pending requests past their expiry time (R18); returns how many.
    public func expireDue(batch: Int = 500) async throws -> Int {
        try await database.transaction { connection in
            try await connection.first("SELECT spor_expire_due_requests(\(Int32(clamping: batch)))", as: Int.self, logger: logger) ?? 0
        }
    }

    // MARK: Revoke

    /// Revokes a role assignment (R14): by its holder (`.own`), a super user of its organisation (`.organisation`),
    /// or the service desk (`.serviceDesk`, the only one who may remove an organisation's last super user); with no
    /// channel given, the caller's roles decide it (`ApprovalPolicy.revocationChannel`).
    public func revoke(
        actor caller: any Caller, assignment id: Int64, channel: RevocationChannel?, reason: String? = nil,
        expectedOrganisation: OrganisationID? = nil
    ) async throws -> RoleAssignment {
        try await database.transaction(as: caller) { connection, actor in
            var assignment = try await Self.loadAssignment(id, connection, logger)
            if let expectedOrganisation, assignment.organisation != expectedOrganisation {
                throw Refusal(.notFound, .r13, "Role assignment not found.")
            }
            let (superUsers, actorIsSuperUser) = try await Self.lockedFacts(assignment.organisation, actor: actor, connection, logger)
            if assignment.organisation != nil {
                assignment = try await Self.loadAssignment(id, connection, logger)  // as of the lock
            }
            let staffRoles = try await Self.staffRoles(of: actor, connection, logger)
            let channel =
                channel ?? ApprovalPolicy.revocationChannel(actor: Actor(id: actor, staffRoles: staffRoles), holder: assignment.account)
            if policy == .enforced {
                try ApprovalPolicy.revoke(
                    RevocationFacts(
                        assignment: assignment.snapshot, actor: Actor(id: actor, staffRoles: staffRoles), channel: channel,
                        actorIsActiveSuperUser: actorIsSuperUser, organisationActiveSuperUsers: superUsers)
                ).get()
            }
            try await connection.query(
                """
                UPDATE role_assignments SET revoked_at = now(), revoked_by = \(actor.rawValue), revoke_reason = \(reason)
                WHERE id = \(id)
                """, logger: logger)
            try await Journal.audit(
                connection,
                actor: actor,
                organisation: assignment.organisation,
                action: channel == .own ? .roleDropped : .roleRevoked,
                subject: .init(type: .roleAssignment, id: String(id)),
                before: ["role": assignment.role.rawValue, "account": assignment.account.description],
                after: ["revoked": "true"],
                logger: logger)
            return try await Self.loadAssignment(id, connection, logger)
        }
    }

    // MARK: Reads

    /// A request the actor may see (R13: otherwise not found).
    public func request(_ id: AccessRequestID, actor caller: any Caller) async throws -> AccessRequest {
        try await database.transaction(as: caller) { connection, actor in try await Self.load(id, connection, logger) }
    }

    // MARK: Helpers shared by the commands

    static func lock(_ organisation: OrganisationID, _ connection: PostgresConnection, _ logger: Logger) async throws {
        try await connection.query("SELECT spor_lock_organisation(\(organisation.rawValue))", logger: logger)
    }

    /// Takes the organisation lock (R11, R14) and then reads, under it, its active super users and whether the actor
    /// is one of them; no organisation: nothing to lock, no super users.
    static func lockedFacts(
        _ organisation: OrganisationID?, actor: AccountID, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> (superUsers: Int, actorIsSuperUser: Bool) {
        guard let organisation else { return (0, false) }
        try await lock(organisation, connection, logger)
        let superUsers = try await activeSuperUsers(organisation, connection, logger)
        let actorIsSuperUser =
            try await connection.first(
                "SELECT spor_is_active_super_user(\(actor.rawValue), \(organisation.rawValue))", as: Bool.self, logger: logger) ?? false
        return (superUsers, actorIsSuperUser)
    }

    static func activeSuperUsers(_ organisation: OrganisationID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Int {
        try await connection.first("SELECT spor_active_super_user_count(\(organisation.rawValue))", as: Int.self, logger: logger) ?? 0
    }

    static func now(_ connection: PostgresConnection, _ logger: Logger) async throws -> Date {
        try await connection.first("SELECT now()", as: Date.self, logger: logger) ?? Date()
    }

    /// The account's effective staff roles, in one query.
    static func staffRoles(of account: AccountID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Set<StaffRole> {
        let names = try await connection.all(
            "SELECT role FROM staff_roles WHERE account_id = \(account.rawValue) AND spor_has_staff_role(account_id, role)",
            as: String.self, logger: logger)
        return Set(names.compactMap(StaffRole.init(rawValue:)))
    }

    static func email(of account: AccountID, _ connection: PostgresConnection, _ logger: Logger) async throws -> String {
        guard let email = try await connection.first("SELECT email FROM accounts WHERE id = \(account.rawValue)", as: String.self, logger: logger)
        else { throw Refusal(.notFound, .r13, "Account not found.") }
        return email
    }

    static func grant(
        _ request: AccessRequest, effectiveFrom: Date?, firstSuperUser: Bool, actor: AccountID,
        _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> RoleAssignment {
        guard
            let id = try await connection.first(
                """
                INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user,
                                              effective_from)
                VALUES (\(request.organisation?.rawValue), \(request.requester.rawValue), \(request.role.rawValue), 'access-request',
                        \(request.id.rawValue), \(firstSuperUser), coalesce(\(effectiveFrom), now()))
                RETURNING id
                """, as: Int64.self, logger: logger)
        else { throw StoreError.ruleViolation(code: "insert-failed", rule: "R4", message: "the role was not granted") }
        try await Journal.audit(
            connection,
            actor: actor,
            organisation: request.organisation,
            action: .roleGranted,
            subject: .init(type: .roleAssignment, id: String(id)),
            after: ["role": request.role.rawValue, "account": request.requester.description, "accessRequest": String(request.id.rawValue)],
            logger: logger)
        return try await loadAssignment(id, connection, logger)
    }

    static func load(_ id: AccessRequestID, _ connection: PostgresConnection, _ logger: Logger) async throws -> AccessRequest {
        guard
            let row = try await connection.first(
                "SELECT \(unescaped: AccessRequest.columns) FROM access_requests WHERE id = \(id.rawValue)",
                as: AccessRequest.Row.self, logger: logger)
        else { throw Refusal(.notFound, .r13, "Access request \(id) not found.") }
        return try AccessRequest(row: row)
    }

    static func loadAssignment(_ id: Int64, _ connection: PostgresConnection, _ logger: Logger) async throws -> RoleAssignment {
        guard
            let row = try await connection.first(
                "SELECT \(unescaped: RoleAssignment.columns) FROM role_assignments WHERE id = \(id)",
                as: RoleAssignment.Row.self, logger: logger)
        else { throw Refusal(.notFound, .r13, "Role assignment not found.") }
        return try RoleAssignment(row: row)
    }

    static func format(_ date: Date) -> String { date.formatted(.iso8601) }
}
