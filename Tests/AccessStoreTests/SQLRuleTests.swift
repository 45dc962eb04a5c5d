import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// The SQL half of R4–R22: every violation below is written straight in SQL as the application role (spor_app, with
// app.account_id set by `Fixture.asApplication`), never through the stores or the Swift policy, and the database
// must refuse it with the rule's code. Stores are used only to arrange state; the owner only to inspect it (and, for
// R15/R18, to show that even the owner cannot break append-only tables).
//
// Where a correct direct-SQL change needs its audit event (R15) or outbox row (R16) to commit, the test writes them
// itself, so each test isolates the one rule it proves. Most tests also carry a positive control: the same statement,
// corrected, commits — so the refusal is due to the rule under test and not to a broken recipe.
//
// One suite per rule family, each in its own file: SQLRuleTests+Accounts (R2, R3), +Requests (R4–R7, R9), +Routing
// (R8, R11, R12), +Tickets (R10), +Revocation (R14, R20), +Audit (R15), +Outbox (R16), +OMS (R17), +Lifecycle (R18),
// +Grants (R21), +Reviews (R22).
// This file holds what they share.

@Suite("SQL half of the rules (as the application role, no Swift policy)")
struct SQLRuleTests {}

extension SQLRuleTests {
    /// What the database answered: a rule refusal (code and rule id), a named constraint (rule nil), or a bare SQLSTATE.
    struct Answer: Equatable, CustomStringConvertible {
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
    static func answer(_ error: any Error) -> Answer {
        let mapped = StoreErrors.map(error)
        if let refusal = mapped as? Refusal { return Answer(refusal.code.rawValue, refusal.rule.rawValue) }
        if let store = mapped as? StoreError {
            switch store {
            case .ruleViolation(let code, let rule, _): return Answer(code, rule)
            case .constraintViolation(let constraint, _): return Answer(constraint)
            case .database(let state, _): return .sqlState(state)
            case .retryable: return Answer("retryable")
            case .unavailable(let reason): return Answer("unavailable: \(reason)")
            }
        }
        return Answer("unexpected: \(String(reflecting: mapped))")
    }

    /// Runs `body` as the application role acting for `actor`; nil when the transaction committed, else the answer.
    static func attempt(
        _ f: Fixture, as actor: TestAccount?, _ body: @escaping @Sendable (PostgresConnection) async throws -> Void
    ) async -> Answer? {
        do {
            try await f.asApplication(actor: actor, body)
            return nil
        } catch {
            return answer(error)
        }
    }

    /// Runs one statement as the owner (only to show that even the owner cannot break append-only rules).
    static func ownerAttempt(_ f: Fixture, _ query: PostgresQuery) async -> Answer? {
        do {
            try await f.owner.query(query, logger: TestDatabase.logger)
            return nil
        } catch {
            return answer(error)
        }
    }

    static let log = TestDatabase.logger
}

extension PostgresConnection {
    /// The single text value of a query (e.g. `RETURNING id::text`).
    func text(_ query: PostgresQuery) async throws -> String {
        let values = try await texts(query)
        guard values.count == 1 else { throw FixtureError("expected one row, got \(values.count)") }
        return values[0]
    }

    /// R15: the audit event a change needs in its own transaction.
    func audit(
        actor: TestAccount?, organisation: OrganisationID?, action: String, subjectType: String, subjectID: String
    ) async throws {
        try await query(
            """
            INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id)
            VALUES (\(organisation?.rawValue), \(actor?.pgUUID), \(action), \(subjectType), \(subjectID))
            """, logger: TestDatabase.logger)
    }

    /// R16: the message a notified change needs in its own transaction, asked of the database (`spor_notify`: since
    /// 0027 the application role writes no outbox rows; the rule picks the recipients and the text).
    func notify(template: String, subjectType: String, subjectID: String) async throws {
        _ = try await text("SELECT spor_notify(\(subjectType), \(subjectID), \(template))::text")
    }

    /// A correct organisation-role approval by `actor` with its grant, audit and notification (for positive controls).
    func approve(
        _ request: Int64, by actor: TestAccount, requester: TestAccount, role: Role, organisation: OrganisationID, first: Bool
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
    func firstSuperUserRequest(
        of organisation: OrganisationID, ticket: Bool
    ) async throws -> (requester: TestAccount, request: Int64) {
        let requester = try await user("applicant")
        let filed = try await requests.submit(actor: requester, role: .superUser, organisation: organisation, justification: nil)
        guard filed.request.approverKind == .emaServiceDesk else { throw FixtureError("not a first-super-user request") }
        if ticket { try await openTicket(for: filed.request, by: requester) }
        return (requester, filed.request.id.rawValue)
    }

    /// A pending industry-user request of a fresh user (through the store), routed to the organisation's super users.
    func industryRequest(of organisation: OrganisationID) async throws -> (requester: TestAccount, request: Int64) {
        let requester = try await user("member")
        let filed = try await requests.submit(actor: requester, role: .industryUser, organisation: organisation, justification: nil)
        return (requester, filed.request.id.rawValue)
    }

    /// The one text value of an owner query (inspection only).
    func ownerValue(_ query: PostgresQuery) async throws -> String {
        let values = try await ownerQuery(query)
        guard values.count == 1 else { throw FixtureError("expected one row, got \(values.count)") }
        return values[0]
    }
}
