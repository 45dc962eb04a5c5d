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
/// Each command is one read of the facts its policy decides on, the Swift policy's verdict, then one call of the
/// command's SQL function (migration 0021), which authenticates the caller's token, locks the organisation in the
/// mode the command needs, writes, audits (R15) and queues its messages (R16); the triggers decide the same rules
/// again under the lock. Two round trips, each its own implicit transaction.
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
    ///
    /// Two statements, each its own transaction: the facts the Swift policy decides on (`spor_submission_facts`),
    /// then, if it says yes, the command (`spor_file_request`), which authenticates, takes the organisation lock in
    /// shared mode, writes, audits and queues the messages, while the triggers decide again under the lock.
    public func submit(
        actor caller: any Caller, role: Role, organisation: OrganisationID?, justification: String?, accessUntil: Date? = nil
    ) async throws -> Submission {
        if policy == .enforced {
            var binds = PostgresBindings()
            binds.append(caller.bearerToken)
            binds.append(role.rawValue)
            binds.append(organisation?.rawValue)
            guard let row = try await database.call(PairSQL.SubmissionFacts.self, binds)
            else { throw Refusal(.notFound, .r13, "The signed-in account no longer exists.") }
            let (actor, active, questionsSet, organisationExists, superUsers, pending, holds, now, delay, lifetime, clock) = try row.decode(
                (UUID, Bool, Bool, Bool, Int32, Bool, Bool, Date, Double, Double, Date).self)
            _ = try ApprovalPolicy.submit(
                SubmissionFacts(
                    requester: AccountID(actor), accountActive: active, securityQuestionsSet: questionsSet, role: role,
                    organisation: organisation, organisationExists: organisationExists,
                    organisationActiveSuperUsers: Int(superUsers), hasPendingRequestForSameRole: pending, holdsRole: holds,
                    now: now, activationDelay: delay, requestLifetime: lifetime, accessUntil: accessUntil, clock: clock)
            ).get()
        }
        var binds = PostgresBindings()
        binds.append(caller.bearerToken)
        binds.append(role.rawValue)
        binds.append(organisation?.rawValue)
        binds.append(justification)
        binds.append(accessUntil)
        let outcome = try decodeOutcome(try await database.command(PairSQL.FileRequest.self, binds, organisation: organisation))
        return Submission(request: outcome.request, grant: outcome.grant)
    }

    // MARK: Decide

    /// Approves or rejects a pending request through `channel` (R8, R10–R13, R18). `expectedOrganisation` is the
    /// organisation of the address used (`/organisations/{orgId}/...`): a request of another one is not found (R13).
    /// When the organisation has gained a super user since a first-super-user request was filed, the request is
    /// re-routed to its super users (committed) and the service desk is refused (R11). An approval may end the grant
    /// at `grantUntil`, at most the end the requester asked for (R21); without it the grant ends when they asked.
    ///
    /// One read of the facts (`spor_decision_facts`), then one command (`spor_decide_request`): lock in the mode
    /// the decision needs, re-route if due, decide (the triggers again, under the lock), grant, resolve the ticket,
    /// audit, messages.
    public func decide(
        actor caller: any Caller, request id: AccessRequestID, channel: DecisionChannel, action: DecisionAction,
        comment: String? = nil, expectedOrganisation: OrganisationID? = nil, grantUntil: Date? = nil
    ) async throws -> Decision {
        // A decision races with changes of the super-user set only rarely; when the command finds the routing out of
        // date it re-routes and stops, and the decision is made again on the new facts.
        for _ in 1..<3 {
            if let decision = try await decideOnce(caller, id, channel: channel, action: action, comment: comment, expectedOrganisation, grantUntil) {
                return decision
            }
        }
        guard let decision = try await decideOnce(caller, id, channel: channel, action: action, comment: comment, expectedOrganisation, grantUntil)
        else { throw StoreError.retryable }
        return decision
    }

    /// One decision: nil when the command re-routed the request instead.
    private func decideOnce(
        _ caller: any Caller, _ id: AccessRequestID, channel: DecisionChannel, action: DecisionAction, comment: String?,
        _ expectedOrganisation: OrganisationID?, _ grantUntil: Date?
    ) async throws -> Decision? {
        let facts = try await decisionFacts(caller, id, expectedOrganisation: expectedOrganisation)
        var decision = DecisionFacts(
            request: facts.request.snapshot, actor: Actor(id: facts.actor, staffRoles: facts.staffRoles), channel: channel,
            actorIsActiveSuperUser: facts.actorIsSuperUser, organisationActiveSuperUsers: facts.superUsers,
            hasValidTicket: facts.hasOpenTicket, now: facts.now, clock: facts.clock)
        let reroute = ApprovalPolicy.rerouteNeeded(decision)
        if reroute {
            decision.request.approverKind = ApprovalPolicy.currentApproverKind(
                role: facts.request.role, organisationActiveSuperUsers: facts.superUsers)
        }
        if policy == .enforced, case .failure(let refusal) = ApprovalPolicy.decide(decision, action, grantUntil: grantUntil) {
            if reroute {  // the re-route stands, whatever the decision
                _ = try await command(facts.request.organisation, "SELECT * FROM spor_reroute_request(\(caller.bearerToken), \(id.rawValue))")
            }
            throw refusal
        }
        let (approve, reason): (Bool, String?)
        switch action {
        case .approve: (approve, reason) = (true, comment)
        case .reject(let why): (approve, reason) = (false, why)
        }
        var binds = PostgresBindings()
        binds.append(caller.bearerToken)
        binds.append(id.rawValue)
        binds.append(approve)
        binds.append(reason)
        binds.append(policy == .enforced)
        binds.append(approve ? grantUntil : nil)
        let outcome = try decodeOutcome(
            try await database.command(PairSQL.DecideRequest.self, binds, organisation: facts.request.organisation))
        if outcome.rerouted { return nil }
        return Decision(request: outcome.request, grant: outcome.grant)
    }

    // MARK: Cancel, expire

    /// Cancels one's own pending request (R18).
    public func cancel(actor caller: any Caller, request id: AccessRequestID) async throws -> AccessRequest {
        var organisation: OrganisationID?
        if policy == .enforced {
            let facts = try await decisionFacts(caller, id, expectedOrganisation: nil)
            try ApprovalPolicy.cancel(request: facts.request.snapshot, actor: facts.actor).get()
            organisation = facts.request.organisation
        }
        return try await command(organisation, "SELECT * FROM spor_cancel_request(\(caller.bearerToken), \(id.rawValue))").request
    }

    /// Expires pending requests past their expiry time (R18); returns how many.
    public func expireDue(batch: Int = 500) async throws -> Int {
        try await database.transaction { connection in
            try await connection.first("SELECT spor_expire_due_requests(\(Int32(clamping: batch)))", as: Int.self, logger: logger) ?? 0
        }
    }

    /// Sends the reminders that are due (issue 12, `spor_send_reminders`: organisation requests pending too long, to
    /// their super users; overdue tickets, to the service desk), each once however many instances run it; returns how
    /// many were sent. Background work, as the worker role.
    public func sendReminders(batch: Int = 500) async throws -> Int {
        try await database.transaction { connection in
            try await connection.first("SELECT spor_send_reminders(\(Int32(clamping: batch)))", as: Int.self, logger: logger) ?? 0
        }
    }

    /// The grants job (R21): ends every assignment past its end (`spor_end_lapsed_grants`: audited, its holder told,
    /// the service desk told when an organisation is left without a super user), then sends the notices due before
    /// an end (`spor_send_grant_notices`), each once however many instances run it. Background work, as the worker role.
    public func runGrantJobs(batch: Int = 500) async throws -> (ended: Int, notices: Int) {
        try await database.transaction { connection in
            let ended = try await connection.first("SELECT spor_end_lapsed_grants(\(Int32(clamping: batch)))", as: Int.self, logger: logger)
            let notices = try await connection.first("SELECT spor_send_grant_notices(\(Int32(clamping: batch)))", as: Int.self, logger: logger)
            return (ended ?? 0, notices ?? 0)
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
        guard let row = try await database.call("SELECT * FROM spor_revocation_facts(\(caller.bearerToken), \(id))")
        else { throw Refusal(.notFound, .r13, "Role assignment not found.") }
        let c = try row.decode((Int64, String?, UUID, String, Int64?, Bool, Date, Date?, UUID, [String], Int32, Bool, Date?, Date).self)
        let assignment = try RoleAssignment(row: (c.0, c.1, c.2, c.3, c.4, c.5, c.6, c.7, c.12))
        let actor = Actor(id: AccountID(c.8), staffRoles: Set(c.9.compactMap(StaffRole.init(rawValue:))))
        if let expectedOrganisation, assignment.organisation != expectedOrganisation {
            throw Refusal(.notFound, .r13, "Role assignment not found.")
        }
        let channel = channel ?? ApprovalPolicy.revocationChannel(actor: actor, holder: assignment.account)
        if policy == .enforced {
            try ApprovalPolicy.revoke(
                RevocationFacts(
                    assignment: assignment.snapshot(at: c.13), actor: actor, channel: channel, actorIsActiveSuperUser: c.11,
                    organisationActiveSuperUsers: Int(c.10))
            ).get()
        }
        guard
            let revoked = try await database.command(
                "SELECT * FROM spor_revoke_assignment(\(caller.bearerToken), \(id), \(reason), \(channel == .own))",
                organisation: assignment.organisation)
        else { throw Refusal(.notFound, .r13, "Role assignment not found.") }
        let r = try revoked.decode((Int64, String?, UUID, String, Int64?, Bool, Date, Date?).self)
        return try RoleAssignment(row: (r.0, r.1, r.2, r.3, r.4, r.5, r.6, r.7, assignment.endsAt))
    }

    // MARK: One statement each

    /// What `spor_decision_facts` answers: the request as the caller may see it and what the policy decides on.
    struct RequestFacts {
        let request: AccessRequest
        let actor: AccountID
        let staffRoles: Set<StaffRole>
        let superUsers: Int
        let actorIsSuperUser: Bool
        let hasOpenTicket: Bool
        let now: Date
        /// The jobs' clock, on which R21 judges a grant's end.
        let clock: Date
    }

    /// The request as the caller may see it, with what the policies decide on (one statement).
    func facts(_ caller: any Caller, _ id: AccessRequestID) async throws -> RequestFacts {
        try await decisionFacts(caller, id, expectedOrganisation: nil)
    }

    private func decisionFacts(
        _ caller: any Caller, _ id: AccessRequestID, expectedOrganisation: OrganisationID?
    ) async throws -> RequestFacts {
        var binds = PostgresBindings()
        binds.append(caller.bearerToken)
        binds.append(id.rawValue)
        guard let row = try await database.call(PairSQL.DecisionFacts.self, binds)
        else { throw Refusal(.notFound, .r13, "Access request \(id) not found.") }
        let c = try row.decode(
            (
                Int64, String?, UUID, String, String?, String, String, Date, Date?, UUID?, Date?, String?, UUID, [String], Int32, Bool, Bool,
                Date, Date?, Date
            ).self)
        let request = try AccessRequest(row: (c.0, c.1, c.2, c.3, c.4, c.5, c.6, c.7, c.8, c.9, c.10, c.11, c.18))
        if let expectedOrganisation, request.organisation != expectedOrganisation {
            throw Refusal(.notFound, .r13, "Access request \(id) not found.")
        }
        return RequestFacts(
            request: request, actor: AccountID(c.12), staffRoles: Set(c.13.compactMap(StaffRole.init(rawValue:))),
            superUsers: Int(c.14), actorIsSuperUser: c.15, hasOpenTicket: c.16, now: c.17, clock: c.19)
    }

    /// Runs a command function returning `spor_request_outcome`: the request and the grant it made, if any.
    /// `organisation`: the one whose lock it takes (under the per-organisation limit of the pool), when known.
    private func command(
        _ organisation: OrganisationID?, _ query: PostgresQuery
    ) async throws -> (request: AccessRequest, grant: RoleAssignment?, rerouted: Bool) {
        try decodeOutcome(try await database.command(query, organisation: organisation))
    }

    /// The request and the grant a command function answered (`spor_request_outcome`).
    private func decodeOutcome(_ answer: PostgresRow?) throws -> (request: AccessRequest, grant: RoleAssignment?, rerouted: Bool) {
        guard let row = answer else {
            throw StoreError.ruleViolation(code: "insert-failed", rule: "R13", message: "the command returned nothing")
        }
        let c = try row.decode(
            (
                Int64, String?, UUID, String, String?, String, String, Date, Date?, UUID?, Date?, String?,
                Int64?, String?, UUID?, String?, Int64?, Bool?, Date?, Date?, Bool?, Date?, Date?
            ).self)
        let request = try AccessRequest(row: (c.0, c.1, c.2, c.3, c.4, c.5, c.6, c.7, c.8, c.9, c.10, c.11, c.21))
        let rerouted = c.20 ?? false
        guard let grant = c.12, let account = c.14, let role = c.15, let first = c.17, let effective = c.18 else {
            return (request, nil, rerouted)
        }
        return (request, try RoleAssignment(row: (grant, c.13, account, role, c.16, first, effective, c.19, c.22)), rerouted)
    }

    // MARK: Reads

    /// A request the actor may see (R13: otherwise not found).
    public func request(_ id: AccessRequestID, actor caller: any Caller) async throws -> AccessRequest {
        try await decisionFacts(caller, id, expectedOrganisation: nil).request
    }

    // MARK: Shared with the other stores

    /// The effective staff roles of the transaction's actor, in one query (`spor_actor_staff_roles`, 0055: the
    /// application role may ask about its actor only).
    static func actorStaffRoles(_ connection: PostgresConnection, _ logger: Logger) async throws -> Set<StaffRole> {
        let names = try await connection.all("SELECT spor_actor_staff_roles()", as: String.self, logger: logger)
        return Set(names.compactMap(StaffRole.init(rawValue:)))
    }
}

/// The four statements of a request+approve pair, prepared once per connection (`Database.preparedStatements`);
/// `Benchmarks/api/pgbench_pair.sql` sends the same text.
enum PairSQL {
    enum SubmissionFacts: PreparedSQL { static let sql = "SELECT * FROM spor_submission_facts($1, $2, $3)" }
    enum FileRequest: PreparedSQL { static let sql = Database.checked("SELECT * FROM spor_file_request($1, $2, $3, $4, $5)") }
    enum DecisionFacts: PreparedSQL { static let sql = "SELECT * FROM spor_decision_facts($1, $2)" }
    enum DecideRequest: PreparedSQL {
        static let sql = Database.checked("SELECT * FROM spor_decide_request($1, $2, $3, $4, $5, $6)")
    }
}
