import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// The SQL half of R4–R18: every violation below is written straight in SQL as the application role (spor_app, with
// app.account_id set by `Fixture.asApplication`), never through the stores or the Swift policy, and the database
// must refuse it with the rule's code. Stores are used only to arrange state; the owner only to inspect it (and, for
// R15/R18, to show that even the owner cannot break append-only tables).
//
// Where a correct direct-SQL change needs its audit event (R15) or outbox row (R16) to commit, the test writes them
// itself, so each test isolates the one rule it proves. Most tests also carry a positive control: the same statement,
// corrected, commits — so the refusal is due to the rule under test and not to a broken recipe.

/// What the database answered: a rule refusal (code and rule id), a named constraint (rule nil), or a bare SQLSTATE.
private struct Answer: Equatable, CustomStringConvertible {
    let code: String
    let rule: String?
    init(_ code: String, _ rule: String? = nil) {
        self.code = code
        self.rule = rule
    }

    static func sqlState(_ state: String) -> Answer { Answer("sqlstate \(state)") }
    var description: String { rule.map { "\($0) \(code)" } ?? code }
}

/// Maps an error the way the store does and reduces it to code + rule (or constraint name, or SQLSTATE).
private func answer(_ error: any Error) -> Answer {
    let mapped = StoreErrors.map(error)
    if let refusal = mapped as? Refusal { return Answer(refusal.code.rawValue, refusal.rule.rawValue) }
    if let store = mapped as? StoreError {
        switch store {
        case .ruleViolation(let code, let rule, _): return Answer(code, rule)
        case .constraintViolation(let constraint, _): return Answer(constraint)
        case .database(let state, _): return .sqlState(state)
        case .retryable: return Answer("retryable")
        }
    }
    return Answer("unexpected: \(String(reflecting: mapped))")
}

/// Runs `body` as the application role acting for `actor`; nil when the transaction committed, else the answer.
private func attempt(
    _ f: Fixture, as actor: AccountID?, _ body: @Sendable (PostgresConnection) async throws -> Void
) async -> Answer? {
    do {
        try await f.asApplication(actor: actor, body)
        return nil
    } catch {
        return answer(error)
    }
}

/// Runs one statement as the owner (only to show that even the owner cannot break append-only rules).
private func ownerAttempt(_ f: Fixture, _ query: PostgresQuery) async -> Answer? {
    do {
        try await f.owner.query(query, logger: TestDatabase.logger)
        return nil
    } catch {
        return answer(error)
    }
}

/// Collects values out of a `@Sendable` transaction body.
private final class Collected<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Value] = []
    func append(_ value: Value) { lock.withLock { storage.append(value) } }
    var values: [Value] { lock.withLock { storage } }
}

extension AccountID {
    /// The account id as a bindable uuid.
    fileprivate var pgUUID: UUID { rawValue }
}

extension PostgresConnection {
    /// Every row of a one-column text query.
    fileprivate func texts(_ query: PostgresQuery) async throws -> [String] {
        var values: [String] = []
        for try await value in try await self.query(query, logger: TestDatabase.logger).decode(String.self) { values.append(value) }
        return values
    }

    /// The single text value of a query (e.g. `RETURNING id::text`).
    fileprivate func text(_ query: PostgresQuery) async throws -> String {
        let values = try await texts(query)
        guard values.count == 1 else { throw FixtureError("expected one row, got \(values.count)") }
        return values[0]
    }

    /// R15: the audit event a change needs in its own transaction.
    fileprivate func audit(
        actor: AccountID?, organisation: OrganisationID?, action: String, subjectType: String, subjectID: String
    ) async throws {
        try await query(
            """
            INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id)
            VALUES (\(organisation?.rawValue), \(actor?.pgUUID), \(action), \(subjectType), \(subjectID))
            """, logger: TestDatabase.logger)
    }

    /// R16: the outbox row a notified change needs in its own transaction.
    fileprivate func notify(template: String, subjectType: String, subjectID: String) async throws {
        try await query(
            """
            INSERT INTO notification_outbox (recipient_email, template, subject, body, subject_type, subject_id)
            VALUES ('someone@example.com', \(template), 'subject', 'body', \(subjectType), \(subjectID))
            """, logger: TestDatabase.logger)
    }

    /// A correct organisation-role approval by `actor` with its grant, audit and notification (for positive controls).
    fileprivate func approve(
        _ request: Int64, by actor: AccountID, requester: AccountID, role: Role, organisation: OrganisationID, first: Bool
    ) async throws {
        try await query(
            "UPDATE access_requests SET status = 'approved', decided_by = \(actor.pgUUID) WHERE id = \(request)",
            logger: TestDatabase.logger)
        try await audit(
            actor: actor, organisation: organisation, action: "access-request.approved",
            subjectType: "access_request", subjectID: String(request))
        let grant = try await text(
            """
            INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user)
            VALUES (\(organisation.rawValue), \(requester.pgUUID), \(role.rawValue), 'access-request', \(request), \(first))
            RETURNING id::text
            """)
        try await audit(
            actor: actor, organisation: organisation, action: "role-assignment.granted",
            subjectType: "role_assignment", subjectID: grant)
        try await notify(template: "request-decided", subjectType: "access_request", subjectID: String(request))
    }
}

extension Fixture {
    /// A pending first-super-user request of a fresh user (through the store), optionally with its R10 ticket.
    fileprivate func firstSuperUserRequest(
        of organisation: OrganisationID, ticket: Bool
    ) async throws -> (requester: AccountID, request: Int64) {
        let requester = try await user("applicant")
        let filed = try await requests.submit(actor: requester, role: .superUser, organisation: organisation, justification: nil)
        guard filed.request.approverKind == .emaServiceDesk else { throw FixtureError("not a first-super-user request") }
        if ticket { try await openTicket(for: filed.request, by: requester) }
        return (requester, filed.request.id.rawValue)
    }

    /// A pending industry-user request of a fresh user (through the store), routed to the organisation's super users.
    fileprivate func industryRequest(of organisation: OrganisationID) async throws -> (requester: AccountID, request: Int64) {
        let requester = try await user("member")
        let filed = try await requests.submit(actor: requester, role: .industryUser, organisation: organisation, justification: nil)
        return (requester, filed.request.id.rawValue)
    }

    /// The one text value of an owner query (inspection only).
    fileprivate func ownerValue(_ query: PostgresQuery) async throws -> String {
        let values = try await ownerQuery(query)
        guard values.count == 1 else { throw FixtureError("expected one row, got \(values.count)") }
        return values[0]
    }
}

private let log = TestDatabase.logger

@Suite("SQL half of the rules (as the application role, no Swift policy)")
struct SQLRuleTests {
    // MARK: R2/R3 (the account row gates every request: r8_route_new_request trusts status and the R3 waiver)

    @Test("R2/R3: an account cannot activate itself or waive its own security questions by updating its row")
    func accountCannotUnlockItself() async throws {
        try await Fixture.with { f in
            // A registered, unverified account (R2: activated only by the e-mailed token).
            let registration = try await f.accounts.register(
                email: "pending-\(UUID().uuidString.prefix(8))@example.com".lowercased(), displayName: "pending", password: "correct horse battery")
            let pending = registration.account
            let activated = await attempt(f, as: pending) { conn in
                try await conn.query(
                    "UPDATE accounts SET status = 'active', verified_at = now() WHERE id = \(pending.pgUUID)", logger: log)
                try await conn.audit(
                    actor: pending, organisation: nil, action: "account.updated", subjectType: "account",
                    subjectID: pending.description)
            }
            #expect(activated != nil, "an unverified account activated itself without its token")
            #expect(try await f.ownerValue("SELECT status FROM accounts WHERE id = \(pending.pgUUID)") == "pending")

            // A verified account without security answers (R3: the waiver is for staff made by the administrator command).
            try await f.accounts.verify(token: registration.verificationToken)
            let waived = await attempt(f, as: pending) { conn in
                try await conn.query(
                    "UPDATE accounts SET security_questions_waived = true WHERE id = \(pending.pgUUID)", logger: log)
                try await conn.audit(
                    actor: pending, organisation: nil, action: "account.updated", subjectType: "account",
                    subjectID: pending.description)
            }
            #expect(waived != nil, "an account waived its own security questions")
            #expect(
                try await f.ownerValue(
                    "SELECT security_questions_waived::text FROM accounts WHERE id = \(pending.pgUUID)") == "false")
        }
    }

    // MARK: R4 roles

    @Test("R4: a staff role cannot be requested (r4_requestable_roles)")
    func staffRoleNotRequestable() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let user = try await f.user()
            for staffRole in StaffRole.allCases {
                let refused = await attempt(f, as: user) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (\(org.rawValue), \(user.pgUUID), \(staffRole.rawValue), 'pending', 'organisation-super-users')
                        """, logger: log)
                }
                #expect(refused == Answer("r4_requestable_roles"), "\(staffRole.rawValue)")
            }
            #expect(try await f.ownerValue("SELECT count(*)::text FROM access_requests") == "0")
        }
    }

    @Test("R4: the unaffiliated role names no organisation; an industry role names one (r8_route_new_request)")
    func unaffiliatedHasNoOrganisation() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let user = try await f.user()
            let refused = await attempt(f, as: user) { conn in
                try await conn.query(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                    VALUES (\(org.rawValue), \(user.pgUUID), 'spor-unaffiliated-user', 'approved', 'automatic')
                    """, logger: log)
            }
            #expect(refused == Answer("organisation-not-allowed", "R4"))
            let missing = await attempt(f, as: user) { conn in
                try await conn.query(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                    VALUES (NULL, \(user.pgUUID), 'spor-industry-user', 'pending', 'organisation-super-users')
                    """, logger: log)
            }
            #expect(missing == Answer("organisation-required", "R4"))
        }
    }

    @Test("R4: a role assignment needs the holder's own approved request for that role")
    func assignmentNeedsApprovedRequest() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let superUsersRequest = try #require(
                try await f.ownerQuery(
                    "SELECT id::text FROM access_requests WHERE requester_id = \(superUser.pgUUID)"
                ).first.flatMap { Int64($0) })
            let (applicant, pending) = try await f.industryRequest(of: org)

            // Granting oneself the role of one's own request while it is still pending.
            let fromPending = await attempt(f, as: applicant) { conn in
                try await conn.query(
                    """
                    INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id)
                    VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-user', 'access-request', \(pending))
                    """, logger: log)
            }
            #expect(fromPending == Answer("not-authorised", "R4"))

            // Borrowing somebody else's approved request.
            let fromOthers = await attempt(f, as: applicant) { conn in
                try await conn.query(
                    """
                    INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user)
                    VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-super-user', 'access-request', \(superUsersRequest), true)
                    """, logger: log)
            }
            #expect(fromOthers == Answer("not-authorised", "R4"))

            // A rejected request grants nothing either.
            _ = try await f.requests.decide(
                actor: superUser, request: AccessRequestID(pending), channel: .organisation,
                action: .reject(reason: "not one of ours"))
            let fromRejected = await attempt(f, as: applicant) { conn in
                try await conn.query(
                    """
                    INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id)
                    VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-user', 'access-request', \(pending))
                    """, logger: log)
            }
            #expect(fromRejected == Answer("not-authorised", "R4"))
            #expect(
                try await f.ownerValue(
                    "SELECT count(*)::text FROM role_assignments WHERE account_id = \(applicant.pgUUID)") == "0")
        }
    }

    @Test("R4: staff grants are made by an EMA administrator only")
    func staffGrantOnlyByAdmin() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let user = try await f.user()
            let desk = try await f.staff(.serviceDesk)
            let steward = try await f.staff(.dataSteward)
            let admin = try await f.staff(.admin)
            for granter in [desk, steward, user] {
                let refused = await attempt(f, as: granter) { conn in
                    try await conn.query(
                        """
                        INSERT INTO role_assignments (organisation_id, account_id, role, source, granted_by)
                        VALUES (\(org.rawValue), \(user.pgUUID), 'spor-industry-user', 'staff-grant', \(granter.pgUUID))
                        """, logger: log)
                }
                #expect(refused == Answer("not-authorised", "R4"))
            }
            // An administrator naming someone else as the granter is refused too.
            let spoofed = await attempt(f, as: admin) { conn in
                try await conn.query(
                    """
                    INSERT INTO role_assignments (organisation_id, account_id, role, source, granted_by)
                    VALUES (\(org.rawValue), \(user.pgUUID), 'spor-industry-user', 'staff-grant', \(desk.pgUUID))
                    """, logger: log)
            }
            #expect(spoofed == Answer("not-authorised", "R4"))
            // Control: the administrator's own grant commits (with its audit event).
            let granted = await attempt(f, as: admin) { conn in
                let id = try await conn.text(
                    """
                    INSERT INTO role_assignments (organisation_id, account_id, role, source, granted_by)
                    VALUES (\(org.rawValue), \(user.pgUUID), 'spor-industry-user', 'staff-grant', \(admin.pgUUID)) RETURNING id::text
                    """)
                try await conn.audit(
                    actor: admin, organisation: org, action: "role-assignment.granted",
                    subjectType: "role_assignment", subjectID: id)
            }
            #expect(granted == nil)
            #expect(
                try await f.ownerQuery(
                    "SELECT source FROM role_assignments WHERE account_id = \(user.pgUUID) AND revoked_at IS NULL") == ["staff-grant"])
        }
    }

    @Test("R4: an approved request is granted in the same transaction (grant-missing at commit)")
    func approvalWithoutGrant() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let (applicant, request) = try await f.industryRequest(of: org)
            let refused = await attempt(f, as: superUser) { conn in
                try await conn.query(
                    "UPDATE access_requests SET status = 'approved', decided_by = \(superUser.pgUUID) WHERE id = \(request)",
                    logger: log)
                try await conn.audit(
                    actor: superUser, organisation: org, action: "access-request.approved",
                    subjectType: "access_request", subjectID: String(request))
                try await conn.notify(template: "request-decided", subjectType: "access_request", subjectID: String(request))
            }
            #expect(refused == Answer("grant-missing", "R4"))
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
            // Control: the same approval with its grant commits.
            let approved = await attempt(f, as: superUser) { conn in
                try await conn.approve(request, by: superUser, requester: applicant, role: .industryUser, organisation: org, first: false)
            }
            #expect(approved == nil)
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "approved")
        }
    }

    // MARK: R5 unaffiliated role

    @Test("R5: the unaffiliated role is approved by the system at once (routing-mismatch when filed pending)")
    func unaffiliatedIsAutomatic() async throws {
        try await Fixture.with { f in
            let user = try await f.user()
            let refused = await attempt(f, as: user) { conn in
                try await conn.query(
                    """
                    INSERT INTO access_requests (requester_id, role, status, approver_kind)
                    VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'pending', 'automatic')
                    """, logger: log)
            }
            #expect(refused == Answer("routing-mismatch", "R5"))
        }
    }

    @Test("R5: the unaffiliated role becomes effective only after the activation delay")
    func unaffiliatedActivationDelay() async throws {
        try await Fixture.with { f in
            try await f.owner.query("UPDATE settings SET unaffiliated_activation_delay = '1 day'", logger: log)
            let user = try await f.user()
            let refused = await attempt(f, as: user) { conn in
                let request = try await conn.text(
                    """
                    INSERT INTO access_requests (requester_id, role, status, approver_kind)
                    VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'approved', 'automatic') RETURNING id::text
                    """)
                try await conn.query(
                    """
                    INSERT INTO role_assignments (account_id, role, source, access_request_id, effective_from)
                    VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'access-request', \(Int64(request)!), now())
                    """, logger: log)
            }
            #expect(refused == Answer("activation-delay", "R5"))
            // Control: effective from now() + the delay commits.
            let granted = await attempt(f, as: user) { conn in
                let request = try await conn.text(
                    """
                    INSERT INTO access_requests (requester_id, role, status, approver_kind)
                    VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'approved', 'automatic') RETURNING id::text
                    """)
                try await conn.audit(
                    actor: user, organisation: nil, action: "access-request.submitted",
                    subjectType: "access_request", subjectID: request)
                let grant = try await conn.text(
                    """
                    INSERT INTO role_assignments (account_id, role, source, access_request_id, effective_from)
                    VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'access-request', \(Int64(request)!), now() + interval '1 day')
                    RETURNING id::text
                    """)
                try await conn.audit(
                    actor: user, organisation: nil, action: "role-assignment.granted",
                    subjectType: "role_assignment", subjectID: grant)
            }
            #expect(granted == nil)
            #expect(
                try await f.ownerValue(
                    "SELECT (effective_from > now() + interval '23 hours')::text FROM role_assignments WHERE account_id = \(user.pgUUID)") == "true")
        }
    }

    // MARK: R6, R7

    @Test("R6: a request names an organisation that exists in OMS")
    func unknownOrganisation() async throws {
        try await Fixture.with { f in
            let user = try await f.user()
            let refused = await attempt(f, as: user) { conn in
                try await conn.query(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                    VALUES ('ORG-999999999', \(user.pgUUID), 'spor-industry-super-user', 'pending', 'ema-service-desk')
                    """, logger: log)
            }
            #expect(refused == Answer("unknown-organisation", "R6"))
        }
    }

    @Test("R7: at most one pending request per user, role and organisation")
    func duplicatePendingRequest() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let (applicant, _) = try await f.firstSuperUserRequest(of: org, ticket: false)
            let refused = await attempt(f, as: applicant) { conn in
                try await conn.query(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                    VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-super-user', 'pending', 'ema-service-desk')
                    """, logger: log)
            }
            #expect(refused == Answer("duplicate-request", "R7"))
            #expect(
                try await f.ownerValue(
                    "SELECT count(*)::text FROM access_requests WHERE requester_id = \(applicant.pgUUID)") == "1")
        }
    }

    @Test("R7: no request for a role already held")
    func requestForHeldRole() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let refused = await attempt(f, as: superUser) { conn in
                try await conn.query(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                    VALUES (\(org.rawValue), \(superUser.pgUUID), 'spor-industry-super-user', 'pending', 'organisation-super-users')
                    """, logger: log)
            }
            #expect(refused == Answer("already-held", "R7"))
        }
    }

    // MARK: R8, R9 routing

    @Test("R8: a super-user request is routed to the service desk exactly when the organisation has no super user")
    func routingAtSubmission() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let user = try await f.user()
            let toOrganisation = await attempt(f, as: user) { conn in
                try await conn.query(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                    VALUES (\(org.rawValue), \(user.pgUUID), 'spor-industry-super-user', 'pending', 'organisation-super-users')
                    """, logger: log)
            }
            #expect(toOrganisation == Answer("routing-mismatch", "R8"))

            _ = try await f.superUser(of: org)
            let other = try await f.user()
            let toServiceDesk = await attempt(f, as: other) { conn in
                try await conn.query(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                    VALUES (\(org.rawValue), \(other.pgUUID), 'spor-industry-super-user', 'pending', 'ema-service-desk')
                    """, logger: log)
            }
            #expect(toServiceDesk == Answer("routing-mismatch", "R8"))
            #expect(
                try await f.ownerValue(
                    "SELECT count(*)::text FROM access_requests WHERE requester_id IN (\(user.pgUUID), \(other.pgUUID))") == "0")
        }
    }

    @Test("R8: only the EMA service desk approves a first super user")
    func firstSuperUserNeedsEMA() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let (_, request) = try await f.firstSuperUserRequest(of: org, ticket: true)
            for role in [StaffRole.dataSteward, .admin] {
                let staff = try await f.staff(role)
                let refused = await attempt(f, as: staff) { conn in
                    try await conn.query(
                        "UPDATE access_requests SET status = 'approved', decided_by = \(staff.pgUUID) WHERE id = \(request)",
                        logger: log)
                }
                #expect(refused == Answer("first-super-user-needs-ema", "R8"), "\(role.rawValue)")
            }
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
        }
    }

    @Test("R9: an industry-user request for an organisation without a super user is refused")
    func noSuperUser() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let user = try await f.user()
            let refused = await attempt(f, as: user) { conn in
                try await conn.query(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                    VALUES (\(org.rawValue), \(user.pgUUID), 'spor-industry-user', 'pending', 'organisation-super-users')
                    """, logger: log)
            }
            #expect(refused == Answer("no-super-user", "R9"))
        }
    }

    // MARK: R10 tickets

    @Test("R10: approving a first super user needs an open service desk ticket")
    func ticketRequired() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let desk = try await f.staff(.serviceDesk)
            let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
            let refused = await attempt(f, as: desk) { conn in
                try await conn.approve(request, by: desk, requester: applicant, role: .superUser, organisation: org, first: true)
            }
            #expect(refused == Answer("ticket-required", "R10"))
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")

            // Control: once the ticket is open the same statements commit.
            let filed = try await f.requests.request(AccessRequestID(request), actor: applicant)
            try await f.openTicket(for: filed, by: applicant)
            let approved = await attempt(f, as: desk) { conn in
                try await conn.approve(request, by: desk, requester: applicant, role: .superUser, organisation: org, first: true)
            }
            #expect(approved == nil)
            #expect(
                try await f.ownerValue(
                    "SELECT first_super_user::text FROM role_assignments WHERE access_request_id = \(request)") == "true")
        }
    }

    @Test("R10: a ticket's subject names \"SPOR super user role access\" and quotes the request")
    func ticketSubject() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
            let letter = ByteBuffer(bytes: Fixture.pdf)
            @Sendable func fileTicket(subject: String, signatoryOrganisation: OrganisationID, authority: Bool) async -> Answer? {
                await attempt(f, as: applicant) { conn in
                    let document = UUID()
                    try await conn.query(
                        """
                        INSERT INTO documents (id, owner_id, file_name, content_type, bytes, sha256, size)
                        VALUES (\(document), \(applicant.pgUUID), 'affiliation.pdf', 'application/pdf', \(letter), sha256(\(letter)),
                                octet_length(\(letter)))
                        """, logger: log)
                    let ticket = try await conn.text(
                        """
                        INSERT INTO service_desk_tickets (organisation_id, access_request_id, requester_id, subject, signatory_name,
                            signatory_job_title, signatory_email, signatory_organisation_id, signatory_has_managerial_authority,
                            letter_document_id)
                        VALUES (\(org.rawValue), \(request), \(applicant.pgUUID), \(subject), 'Dr. A. Director', 'Head of Regulatory Affairs',
                                'director@example.com', \(signatoryOrganisation.rawValue), \(authority), \(document))
                        RETURNING id::text
                        """)
                    try await conn.audit(
                        actor: applicant, organisation: org, action: "service-desk-ticket.opened",
                        subjectType: "service_desk_ticket", subjectID: ticket)
                    try await conn.notify(template: "ticket-opened", subjectType: "service_desk_ticket", subjectID: ticket)
                }
            }
            let other = try await f.organisation()
            #expect(
                await fileTicket(
                    subject: "Please make me super user – request ID \(request)", signatoryOrganisation: org,
                    authority: true) == Answer("r10_subject_names_the_process"))
            #expect(
                await fileTicket(
                    subject: "SPOR super user role access – request ID 1", signatoryOrganisation: org,
                    authority: true) == Answer("r10_subject_quotes_the_request"))
            #expect(
                await fileTicket(
                    subject: "SPOR super user role access – request ID \(request)", signatoryOrganisation: other,
                    authority: true) == Answer("r10_signatory_of_the_organisation"))
            #expect(
                await fileTicket(
                    subject: "SPOR super user role access – request ID \(request)", signatoryOrganisation: org,
                    authority: false) == Answer("r10_signatory_has_authority"))
            #expect(try await f.ownerValue("SELECT count(*)::text FROM service_desk_tickets") == "0")
            // Control: a correct ticket commits, due 24 hours after it was opened.
            #expect(
                await fileTicket(
                    subject: "SPOR Super user role access – request ID \(request)", signatoryOrganisation: org,
                    authority: true) == nil)
            #expect(
                try await f.ownerValue(
                    "SELECT (due_at = opened_at + interval '24 hours')::text FROM service_desk_tickets WHERE access_request_id = \(request)")
                    == "true")
        }
    }

    @Test("R10: a document's bytes match its declared content type")
    func documentContentMatchesType() async throws {
        try await Fixture.with { f in
            let user = try await f.user()
            @Sendable func upload(_ bytes: [UInt8], as contentType: String) async -> Answer? {
                let buffer = ByteBuffer(bytes: bytes)
                return await attempt(f, as: user) { conn in
                    try await conn.query(
                        """
                        INSERT INTO documents (id, owner_id, file_name, content_type, bytes, sha256, size)
                        VALUES (\(UUID()), \(user.pgUUID), 'letter', \(contentType), \(buffer), sha256(\(buffer)), octet_length(\(buffer)))
                        """, logger: log)
                }
            }
            #expect(await upload(Array("just some text, not a PDF".utf8), as: "application/pdf") == Answer("r10_content_matches_type"))
            #expect(await upload(Fixture.pdf, as: "image/png") == Answer("r10_content_matches_type"))
            #expect(await upload(Fixture.pdf, as: "image/jpeg") == Answer("r10_content_matches_type"))
            #expect(try await f.ownerValue("SELECT count(*)::text FROM documents") == "0")
            #expect(await upload(Fixture.pdf, as: "application/pdf") == nil)
            #expect(try await f.ownerValue("SELECT count(*)::text FROM documents") == "1")
        }
    }

    // MARK: R11 routing at decision time

    @Test("R11: the service desk cannot approve once the organisation has a super user")
    func delegatedAfterFirstSuperUser() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let desk = try await f.staff(.serviceDesk)
            let (first, firstRequest) = try await f.firstSuperUserRequest(of: org, ticket: true)
            let (second, secondRequest) = try await f.firstSuperUserRequest(of: org, ticket: true)
            _ = try await f.requests.decide(actor: desk, request: AccessRequestID(firstRequest), channel: .serviceDesk, action: .approve)
            #expect(
                try await f.ownerValue(
                    "SELECT account_id::text FROM role_assignments WHERE organisation_id = \(org.rawValue)") == first.description)

            for status in ["approved", "rejected"] {
                let refused = await attempt(f, as: desk) { conn in
                    try await conn.query(
                        """
                        UPDATE access_requests SET status = \(status), decided_by = \(desk.pgUUID), decision_reason = 'no'
                        WHERE id = \(secondRequest)
                        """, logger: log)
                }
                #expect(refused == Answer("delegated-to-organisation", "R11"), "\(status)")
            }
            // The stale route cannot be used by the organisation's super user either: it must be re-routed first...
            let stale = await attempt(f, as: first) { conn in
                try await conn.query(
                    "UPDATE access_requests SET status = 'approved', decided_by = \(first.pgUUID) WHERE id = \(secondRequest)",
                    logger: log)
            }
            #expect(stale == Answer("delegated-to-organisation", "R11"))
            // ...and a pending request can only be routed to its current approvers (the organisation now).
            let back = await attempt(f, as: desk) { conn in
                try await conn.query(
                    "UPDATE access_requests SET approver_kind = 'ema-service-desk' WHERE id = \(secondRequest)", logger: log)
            }
            #expect(back == Answer("routing-mismatch", "R8"))
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(secondRequest)") == "pending")
            #expect(
                try await f.ownerValue(
                    "SELECT count(*)::text FROM role_assignments WHERE account_id = \(second.pgUUID)") == "0")
        }
    }

    @Test("R11: no second first-super-user assignment, however it is written")
    func noSecondFirstSuperUser() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let colleague = try await f.user("colleague")
            let filed = try await f.requests.submit(actor: colleague, role: .superUser, organisation: org, justification: nil)
            #expect(filed.request.approverKind == .organisationSuperUsers)
            let request = filed.request.id.rawValue
            let refused = await attempt(f, as: superUser) { conn in
                try await conn.approve(request, by: superUser, requester: colleague, role: .superUser, organisation: org, first: true)
            }
            #expect(refused == Answer("routing-mismatch", "R11"))

            let admin = try await f.staff(.admin)
            let granted = await attempt(f, as: admin) { conn in
                try await conn.query(
                    """
                    INSERT INTO role_assignments (organisation_id, account_id, role, source, granted_by, first_super_user)
                    VALUES (\(org.rawValue), \(colleague.pgUUID), 'spor-industry-super-user', 'staff-grant', \(admin.pgUUID), true)
                    """, logger: log)
            }
            #expect(granted == Answer("routing-mismatch", "R11"))
            #expect(
                try await f.ownerValue(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND first_super_user") == "1")
            // Control: the same approval as an ordinary (not first) super user commits.
            let approved = await attempt(f, as: superUser) { conn in
                try await conn.approve(request, by: superUser, requester: colleague, role: .superUser, organisation: org, first: false)
            }
            #expect(approved == nil)
        }
    }

    @Test("R11: racing service desk approvals give an organisation exactly one first super user")
    func racingFirstSuperUserApprovals() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            var arranged: [(desk: AccountID, requester: AccountID, request: Int64)] = []
            for _ in 0..<4 {
                let (requester, request) = try await f.firstSuperUserRequest(of: org, ticket: true)
                arranged.append((try await f.staff(.serviceDesk), requester, request))
            }
            let contenders = arranged
            let outcomes = await withTaskGroup(of: Answer?.self) { group in
                for contender in contenders {
                    group.addTask {
                        await attempt(f, as: contender.desk) { conn in
                            try await conn.approve(
                                contender.request, by: contender.desk, requester: contender.requester,
                                role: .superUser, organisation: org, first: true)
                        }
                    }
                }
                var all: [Answer?] = []
                for await outcome in group { all.append(outcome) }
                return all
            }
            #expect(outcomes.filter { $0 == nil }.count == 1, "\(outcomes)")
            #expect(outcomes.compactMap { $0 } == Array(repeating: Answer("delegated-to-organisation", "R11"), count: 3), "\(outcomes)")
            #expect(
                try await f.ownerValue(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user'")
                    == "1")
        }
    }

    // MARK: R12

    @Test("R12: nobody approves or rejects their own request")
    func selfApproval() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let _ = try await f.superUser(of: org)  // a second super user, so the request is decidable by someone
            let own = try await f.requests.submit(actor: superUser, role: .industryUser, organisation: org, justification: nil)
            let request = own.request.id.rawValue
            for status in ["approved", "rejected"] {
                let refused = await attempt(f, as: superUser) { conn in
                    try await conn.query(
                        """
                        UPDATE access_requests SET status = \(status), decided_by = \(superUser.pgUUID), decision_reason = 'mine'
                        WHERE id = \(request)
                        """, logger: log)
                }
                #expect(refused == Answer("self-approval", "R12"), "\(status)")
            }
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
        }
    }

    // MARK: R14 revocation

    @Test("R14: the organisation cannot remove its last super user")
    func lastSuperUser() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let colleague = try await f.superUser(of: org)
            @Sendable func revoke(_ holder: AccountID, by actor: AccountID) async -> Answer? {
                await attempt(f, as: actor) { conn in
                    let ids = try await conn.texts(
                        """
                        UPDATE role_assignments SET revoked_at = now(), revoked_by = \(actor.pgUUID)
                        WHERE account_id = \(holder.pgUUID) AND organisation_id = \(org.rawValue)
                          AND role = 'spor-industry-super-user' AND revoked_at IS NULL
                        RETURNING id::text
                        """)
                    guard ids.count == 1 else { throw FixtureError("revoked \(ids.count) assignments") }
                    try await conn.audit(
                        actor: actor, organisation: org, action: "role-assignment.revoked",
                        subjectType: "role_assignment", subjectID: ids[0])
                }
            }
            // Control: with two super users one may go.
            #expect(await revoke(colleague, by: superUser) == nil)
            // Now the remaining one cannot remove themselves.
            #expect(await revoke(superUser, by: superUser) == Answer("last-super-user", "R14"))
            #expect(
                try await f.ownerValue(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND revoked_at IS NULL") == "1")
        }
    }

    @Test("R14: the service desk may remove the last super user; the next super-user request is a first one again")
    func serviceDeskRemovesLastSuperUser() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let desk = try await f.staff(.serviceDesk)
            let revoked = await attempt(f, as: desk) { conn in
                let ids = try await conn.texts(
                    """
                    UPDATE role_assignments SET revoked_at = now(), revoked_by = \(desk.pgUUID), revoke_reason = 'left the company'
                    WHERE account_id = \(superUser.pgUUID) AND revoked_at IS NULL RETURNING id::text
                    """)
                guard ids.count == 1 else { throw FixtureError("revoked \(ids.count) assignments") }
                try await conn.audit(
                    actor: desk, organisation: org, action: "role-assignment.revoked",
                    subjectType: "role_assignment", subjectID: ids[0])
            }
            #expect(revoked == nil)
            #expect(
                try await f.ownerValue(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND revoked_at IS NULL") == "0")
            // R8 again: the next super-user request goes to the service desk.
            let next = try await f.user()
            let filed = await attempt(f, as: next) { conn in
                let id = try await conn.text(
                    """
                    INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                    VALUES (\(org.rawValue), \(next.pgUUID), 'spor-industry-super-user', 'pending', 'ema-service-desk') RETURNING id::text
                    """)
                try await conn.audit(
                    actor: next, organisation: org, action: "access-request.submitted",
                    subjectType: "access_request", subjectID: id)
            }
            #expect(filed == nil)
        }
    }

    // MARK: R15 audit

    @Test("R15: the application role cannot update, delete or truncate audit events")
    func auditNotWritableByApplication() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let before = try await f.ownerValue("SELECT count(*)::text FROM audit_events")
            #expect(before != "0")
            let statements: [PostgresQuery] = [
                "UPDATE audit_events SET action = 'nothing.happened'",
                "DELETE FROM audit_events",
                "TRUNCATE audit_events",
            ]
            for statement in statements {
                let refused = await attempt(f, as: superUser) { conn in try await conn.query(statement, logger: log) }
                #expect(refused == .sqlState("42501"), "\(statement.sql)")
            }
            #expect(try await f.ownerValue("SELECT count(*)::text FROM audit_events") == before)
        }
    }

    @Test("R15: even the owner cannot update, delete or truncate audit events (audit-immutable)")
    func auditImmutableEvenForOwner() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            let before = try await f.ownerValue("SELECT count(*)::text FROM audit_events")
            #expect(before != "0")
            #expect(await ownerAttempt(f, "UPDATE audit_events SET action = 'nothing.happened'") == Answer("audit-immutable", "R15"))
            #expect(await ownerAttempt(f, "DELETE FROM audit_events") == Answer("audit-immutable", "R15"))
            #expect(await ownerAttempt(f, "TRUNCATE audit_events") == Answer("audit-immutable", "R15"))
            #expect(try await f.ownerValue("SELECT count(*)::text FROM audit_events") == before)
        }
    }

    @Test("R15: a change without an audit event in its transaction is refused at commit")
    func auditRequired() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
            let refused = await attempt(f, as: applicant) { conn in
                try await conn.query(
                    "UPDATE access_requests SET status = 'cancelled', decided_by = \(applicant.pgUUID) WHERE id = \(request)", logger: log)
            }
            #expect(refused == Answer("audit-required", "R15"))
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
            // An event about another subject does not count.
            let unrelated = await attempt(f, as: applicant) { conn in
                try await conn.query(
                    "UPDATE access_requests SET status = 'cancelled', decided_by = \(applicant.pgUUID) WHERE id = \(request)", logger: log)
                try await conn.audit(
                    actor: applicant, organisation: org, action: "access-request.cancelled",
                    subjectType: "access_request", subjectID: String(request + 1))
            }
            #expect(unrelated == Answer("audit-required", "R15"))
            // Control: with its audit event the cancellation commits.
            let cancelled = await attempt(f, as: applicant) { conn in
                try await conn.query(
                    "UPDATE access_requests SET status = 'cancelled', decided_by = \(applicant.pgUUID) WHERE id = \(request)", logger: log)
                try await conn.audit(
                    actor: applicant, organisation: org, action: "access-request.cancelled",
                    subjectType: "access_request", subjectID: String(request))
            }
            #expect(cancelled == nil)
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "cancelled")
        }
    }

    @Test("R15: an audit event names the acting account")
    func auditActor() async throws {
        try await Fixture.with { f in
            let someone = try await f.user()
            let other = try await f.user()
            let forged = await attempt(f, as: someone) { conn in
                try await conn.audit(
                    actor: other, organisation: nil, action: "account.updated", subjectType: "account",
                    subjectID: other.description)
            }
            #expect(forged == Answer("audit-actor", "R15"))
            let anonymous = await attempt(f, as: someone) { conn in
                try await conn.audit(
                    actor: nil, organisation: nil, action: "account.updated", subjectType: "account",
                    subjectID: someone.description)
            }
            #expect(anonymous == Answer("audit-actor", "R15"))
        }
    }

    // MARK: R16 outbox

    @Test("R16: a request routed to the super users carries its notification in the same transaction")
    func notificationRequired() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            let applicant = try await f.user()
            @Sendable func file(notify: Bool) async -> Answer? {
                await attempt(f, as: applicant) { conn in
                    let id = try await conn.text(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-user', 'pending', 'organisation-super-users')
                        RETURNING id::text
                        """)
                    try await conn.audit(
                        actor: applicant, organisation: org, action: "access-request.submitted",
                        subjectType: "access_request", subjectID: id)
                    if notify { try await conn.notify(template: "request-filed", subjectType: "access_request", subjectID: id) }
                }
            }
            #expect(await file(notify: false) == Answer("notification-required", "R16"))
            #expect(
                try await f.ownerValue(
                    "SELECT count(*)::text FROM access_requests WHERE requester_id = \(applicant.pgUUID)") == "0")
            #expect(await file(notify: true) == nil)
        }
    }

    @Test("R16: a decision carries its notification to the requester")
    func decisionNotificationRequired() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let (_, request) = try await f.industryRequest(of: org)
            let refused = await attempt(f, as: superUser) { conn in
                try await conn.query(
                    """
                    UPDATE access_requests SET status = 'rejected', decided_by = \(superUser.pgUUID), decision_reason = 'unknown person'
                    WHERE id = \(request)
                    """, logger: log)
                try await conn.audit(
                    actor: superUser, organisation: org, action: "access-request.rejected",
                    subjectType: "access_request", subjectID: String(request))
            }
            #expect(refused == Answer("notification-required", "R16"))
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
        }
    }

    // MARK: R17 OMS

    @Test("R17: OMS change requests need an effective SPOR role")
    func omsChangeNeedsEffectiveRole() async throws {
        try await Fixture.with { f in
            let user = try await f.user()
            let refused = await attempt(f, as: user) { conn in
                try await conn.query(
                    "INSERT INTO oms_change_requests (requester_id, name, country, city) VALUES (\(user.pgUUID), 'Newco', 'BE', 'Ghent')",
                    logger: log)
            }
            #expect(refused == Answer("no-effective-role", "R17"))
            #expect(try await f.ownerValue("SELECT count(*)::text FROM oms_change_requests") == "0")
        }
    }

    @Test("R17: only a data steward decides an OMS change request")
    func omsDecidedByDataSteward() async throws {
        try await Fixture.with { f in
            let user = try await f.user()
            _ = try await f.requests.submit(actor: user, role: .unaffiliatedUser, organisation: nil, justification: nil)
            let change = try await f.oms.file(
                actor: user, name: "Newco Biotech", country: "BE", city: "Ghent", address: nil,
                justification: nil, documents: [])
            let id = change.id
            let desk = try await f.staff(.serviceDesk)
            let steward = try await f.staff(.dataSteward)
            // Not a data steward: row-level security hides the row from UPDATE, nothing changes.
            for actor in [user, desk] {
                let updated = Collected<String>()
                let outcome = await attempt(f, as: actor) { conn in
                    for row in try await conn.texts(
                        """
                        UPDATE oms_change_requests SET status = 'rejected', decided_by = \(actor.pgUUID), decision_reason = 'no'
                        WHERE id = \(id) RETURNING id::text
                        """)
                    { updated.append(row) }
                }
                #expect(outcome == nil)
                #expect(updated.values.isEmpty)
            }
            // A data steward deciding in somebody else's name reaches the trigger.
            let spoofed = await attempt(f, as: steward) { conn in
                try await conn.query(
                    """
                    UPDATE oms_change_requests SET status = 'rejected', decided_by = \(desk.pgUUID), decision_reason = 'no'
                    WHERE id = \(id)
                    """, logger: log)
            }
            #expect(spoofed == Answer("not-authorised", "R17"))
            #expect(try await f.ownerValue("SELECT status FROM oms_change_requests WHERE id = \(id)") == "pending")
            // Control: the steward's own rejection commits (with audit and notification).
            let rejected = await attempt(f, as: steward) { conn in
                try await conn.query(
                    """
                    UPDATE oms_change_requests SET status = 'rejected', decided_by = \(steward.pgUUID), decision_reason = 'duplicate of ORG-100000001'
                    WHERE id = \(id)
                    """, logger: log)
                try await conn.audit(
                    actor: steward, organisation: nil, action: "oms-change-request.rejected",
                    subjectType: "oms_change_request", subjectID: String(id))
                try await conn.notify(template: "oms-change-decided", subjectType: "oms_change_request", subjectID: String(id))
            }
            #expect(rejected == nil)
            #expect(try await f.ownerValue("SELECT status FROM oms_change_requests WHERE id = \(id)") == "rejected")
        }
    }

    @Test("R17: only a data steward adds an organisation to OMS (row-level security)")
    func organisationsByDataSteward() async throws {
        try await Fixture.with { f in
            let user = try await f.user()
            let desk = try await f.staff(.serviceDesk)
            let steward = try await f.staff(.dataSteward)
            @Sendable func add(as actor: AccountID) async -> Answer? {
                await attempt(f, as: actor) { conn in
                    let id = try await conn.text(
                        "INSERT INTO organisations (name, country, city) VALUES ('Newco Biotech', 'BE', 'Ghent') RETURNING id")
                    try await conn.audit(
                        actor: actor, organisation: OrganisationID(id), action: "organisation.created",
                        subjectType: "organisation", subjectID: id)
                }
            }
            #expect(await add(as: user) == .sqlState("42501"))
            #expect(await add(as: desk) == .sqlState("42501"))
            #expect(try await f.ownerValue("SELECT count(*)::text FROM organisations") == "0")
            #expect(await add(as: steward) == nil)
            #expect(try await f.ownerValue("SELECT count(*)::text FROM organisations") == "1")
        }
    }

    // MARK: R18 states

    @Test("R18: a decided request never changes again")
    func decidedRequestsAreFinal() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let (applicant, request) = try await f.industryRequest(of: org)
            _ = try await f.requests.decide(actor: superUser, request: AccessRequestID(request), channel: .organisation, action: .approve)
            let changes: [(AccountID, PostgresQuery)] = [
                (
                    superUser,
                    "UPDATE access_requests SET status = 'rejected', decided_by = \(superUser.pgUUID), decision_reason = 'oops' WHERE id = \(request)"
                ),
                (superUser, "UPDATE access_requests SET status = 'pending', decided_by = NULL, decided_at = NULL WHERE id = \(request)"),
                (applicant, "UPDATE access_requests SET status = 'cancelled', decided_by = \(applicant.pgUUID) WHERE id = \(request)"),
                (superUser, "UPDATE access_requests SET decision_reason = 'edited later' WHERE id = \(request)"),
            ]
            for (actor, change) in changes {
                let refused = await attempt(f, as: actor) { conn in try await conn.query(change, logger: log) }
                #expect(refused == Answer("not-pending", "R18"), "\(change.sql)")
            }
            #expect(try await f.ownerValue("SELECT status || coalesce(decision_reason, '') FROM access_requests WHERE id = \(request)") == "approved")
        }
    }

    @Test("R18: what was requested never changes")
    func requestedRoleIsImmutable() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
            let refused = await attempt(f, as: applicant) { conn in
                try await conn.query("UPDATE access_requests SET role = 'spor-industry-user' WHERE id = \(request)", logger: log)
            }
            #expect(refused == Answer("immutable", "R18"))
        }
    }

    @Test("R18: requests are never deleted (no privilege for the application, trigger for the owner)")
    func requestsNeverDeleted() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let (applicant, request) = try await f.industryRequest(of: org)
            for actor in [applicant, superUser] {
                let refused = await attempt(f, as: actor) { conn in
                    try await conn.query("DELETE FROM access_requests WHERE id = \(request)", logger: log)
                }
                #expect(refused == .sqlState("42501"))
            }
            let assignment = await attempt(f, as: superUser) { conn in
                try await conn.query("DELETE FROM role_assignments WHERE account_id = \(superUser.pgUUID)", logger: log)
            }
            #expect(assignment == .sqlState("42501"))
            #expect(await ownerAttempt(f, "DELETE FROM access_requests WHERE id = \(request)") == Answer("immutable", "R18"))
            #expect(await ownerAttempt(f, "DELETE FROM role_assignments") == Answer("immutable", "R18"))
            #expect(await ownerAttempt(f, "DELETE FROM service_desk_tickets") == Answer("immutable", "R18"))
            #expect(try await f.ownerValue("SELECT count(*)::text FROM access_requests WHERE id = \(request)") == "1")
        }
    }

    @Test("R18: a request expires only once its expiry time has passed")
    func noEarlyExpiry() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
            let refused = await attempt(f, as: applicant) { conn in
                try await conn.query("UPDATE access_requests SET status = 'expired' WHERE id = \(request)", logger: log)
                try await conn.audit(
                    actor: applicant, organisation: org, action: "access-request.expired",
                    subjectType: "access_request", subjectID: String(request))
                try await conn.notify(template: "request-decided", subjectType: "access_request", subjectID: String(request))
            }
            #expect(refused == Answer("not-pending", "R18"))
            #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
        }
    }

    @Test("R18: due requests expire with an audit event and a notification; overdue ones cannot be approved")
    func expiry() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            // Expiry times never move (the decision trigger refuses it), so the lifetime is shortened before filing.
            try await f.owner.query("UPDATE settings SET request_lifetime = interval '200 milliseconds'", logger: log)
            let (_, overdue) = try await f.industryRequest(of: org)
            let (requester, due) = try await f.industryRequest(of: org)
            try await Task.sleep(for: .milliseconds(400))

            let approveOverdue = await attempt(f, as: superUser) { conn in
                try await conn.query(
                    "UPDATE access_requests SET status = 'approved', decided_by = \(superUser.pgUUID) WHERE id = \(overdue)", logger: log)
            }
            #expect(approveOverdue == Answer("request-expired", "R18"))

            let swept = Collected<String>()
            let outcome = await attempt(f, as: nil) { conn in
                swept.append(try await conn.text("SELECT spor_expire_due_requests(100)::text"))
            }
            #expect(outcome == nil)
            #expect(swept.values == ["2"])
            #expect(
                try await f.ownerQuery(
                    "SELECT status FROM access_requests WHERE id IN (\(overdue), \(due)) ORDER BY id") == ["expired", "expired"])
            #expect(
                try await f.ownerQuery(
                    "SELECT action FROM audit_events WHERE subject_type = 'access_request' AND subject_id = \(String(due)) ORDER BY id")
                    == ["access-request.submitted", "access-request.expired"])
            #expect(
                try await f.ownerQuery(
                    "SELECT template || ' ' || recipient_account_id::text FROM notification_outbox WHERE subject_type = 'access_request' AND subject_id = \(String(due)) AND template = 'request-decided'"
                )
                    == ["request-decided \(requester.description)"])
            // And expired requests are final too.
            let revived = await attempt(f, as: superUser) { conn in
                try await conn.query(
                    "UPDATE access_requests SET status = 'approved', decided_by = \(superUser.pgUUID) WHERE id = \(due)", logger: log)
            }
            #expect(revived == Answer("not-pending", "R18"))
        }
    }
}
