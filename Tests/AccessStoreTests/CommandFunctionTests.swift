import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// The one-call command functions of 0021/0022, called straight in SQL as a client holding the spor_app login would:
// they act only for the token they are given, apply R13 themselves, leave every rule to the triggers, and their
// helpers (audit, queueing, locks) are not callable on their own. And the locks fit the command: industry-user
// decisions share the organisation lock, a super user's revocation waits for them.

@Suite("One call per command, as a direct SQL client")
struct CommandFunctionTests {
    typealias Answer = SQLRuleTests.Answer
    static let log = TestDatabase.logger

    /// Runs a query and reads all its rows (a function's error arrives with its rows, not before).
    static func run(_ conn: PostgresConnection, _ query: PostgresQuery) async throws {
        for try await _ in try await conn.query(query, logger: log) {}
    }

    /// A pending industry-user request of a fresh applicant in `org`, which has the super user returned.
    static func pendingIndustryRequest(_ f: Fixture, org: OrganisationID, superUser: TestAccount) async throws -> (TestAccount, Int64) {
        let applicant = try await f.user("applicant")
        let filed = try await f.requests.submit(actor: applicant, role: .industryUser, organisation: org, justification: nil)
        return (applicant, filed.request.id.rawValue)
    }

    @Test("A command acts only for a live token; the triggers decide under the lock, with the rules' codes")
    func commandsActForTheirTokenOnly() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let other = try await f.organisation()
            let su = try await f.superUser(of: org)
            let otherSU = try await f.superUser(of: other)
            let (applicant, request) = try await Self.pendingIndustryRequest(f, org: org, superUser: su)

            // No live token: nobody.
            for token in ["forged", "", su.bearerToken + "x"] {
                let answer = await SQLRuleTests.attempt(f, as: nil) { conn in
                    try await Self.run(conn, "SELECT * FROM spor_decide_request(\(token), \(request), true, NULL)")
                }
                #expect(answer == Answer("not-authenticated", "R13"), "token \(token.prefix(8))")
            }
            // Another tenant's super user neither sees the request nor decides it (R13).
            for query: PostgresQuery in [
                "SELECT * FROM spor_decision_facts(\(otherSU.bearerToken), \(request))",
                "SELECT * FROM spor_decide_request(\(otherSU.bearerToken), \(request), true, NULL)",
            ] {
                #expect(await SQLRuleTests.attempt(f, as: nil) { try await Self.run($0, query) } == Answer("not-found", "R13"))
            }
            // The requester approving their own request: the trigger refuses it inside the call (R12).
            #expect(
                await SQLRuleTests.attempt(f, as: nil) { conn in
                    try await Self.run(conn, "SELECT * FROM spor_decide_request(\(applicant.bearerToken), \(request), true, NULL)")
                } == Answer("self-approval", "R12"))
            // A rejection without a reason (R18), decided by the trigger, not by Swift.
            #expect(
                await SQLRuleTests.attempt(f, as: nil) { conn in
                    try await Self.run(conn, "SELECT * FROM spor_decide_request(\(su.bearerToken), \(request), false, ' ')")
                } == Answer("reason-required", "R18"))
            #expect(try await f.ownerQuery("SELECT status FROM access_requests WHERE id = \(request)") == ["pending"])

            // Positive control: the super user's approval commits with its grant, audit and message in the one call.
            #expect(
                await SQLRuleTests.attempt(f, as: nil) { conn in
                    try await Self.run(conn, "SELECT * FROM spor_decide_request(\(su.bearerToken), \(request), true, NULL)")
                } == nil)
            #expect(try await f.ownerQuery("SELECT status FROM access_requests WHERE id = \(request)") == ["approved"])
            #expect(
                try await f.ownerQuery(
                    """
                    SELECT action FROM audit_events WHERE subject_id = \(String(request)) AND subject_type = 'access_request'
                    ORDER BY id
                    """) == ["access-request.submitted", "access-request.approved"])
            #expect(
                try await f.ownerQuery(
                    """
                    SELECT template || ' ' || recipient_account_id FROM notification_outbox
                    WHERE subject_id = \(String(request)) AND subject_type = 'access_request' ORDER BY id
                    """) == ["request-filed \(su.description)", "request-decided \(applicant.description)"])
        }
    }

    @Test("A refusal at COMMIT (a deferred rule trigger) reaches the caller of a command, and nothing is written")
    func commitRefusalIsReported() async throws {
        try await Fixture.with { f in
            // A table with a deferred trigger that always refuses, as R4, R15 and R16 refuse at commit.
            for statement: PostgresQuery in [
                "CREATE TABLE commit_probe (x int)",
                "CREATE FUNCTION commit_probe_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$",
                """
                CREATE CONSTRAINT TRIGGER commit_probe_refuse AFTER INSERT ON commit_probe DEFERRABLE INITIALLY DEFERRED
                FOR EACH ROW EXECUTE FUNCTION commit_probe_refuse()
                """,
            ] { _ = try await f.owner.query(statement, logger: TestDatabase.logger).collect() }
            _ = try await f.owner.query(
                "CREATE FUNCTION commit_probe_insert() RETURNS SETOF int LANGUAGE sql AS $$ INSERT INTO commit_probe VALUES (1) RETURNING x $$",
                logger: TestDatabase.logger
            ).collect()
            let database = Database(client: f.owner, logger: TestDatabase.logger, role: nil)
            await #expect(throws: (any Error).self) { _ = try await database.command("SELECT * FROM commit_probe_insert()") }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM commit_probe") == ["0"])
        }
    }

    @Test("The owner's helpers — locks, audit, queueing, routing — are not callable by spor_app")
    func helpersAreOwnerOnly() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let user = try await f.user("mallory")
            for query: PostgresQuery in [
                "SELECT spor_lock_organisation(\(org.rawValue))",
                "SELECT spor_lock_organisation_for(\(org.rawValue), true)",
                "SELECT spor_queue_to_account(\(user.pgUUID), NULL, 'request-decided', 'Your access', 'Click here', 'account', 'x')",
                "SELECT spor_queue_to_super_users(\(org.rawValue), 'request-filed', 's', 'b', 'account', 'x')",
                "SELECT spor_audit(\(user.pgUUID), NULL, 'access-request.approved', 'access_request', '1', NULL, NULL)",
                "SELECT spor_lock_and_route(1, \(user.pgUUID))",
                "SELECT spor_actor_may_see(\(user.pgUUID), NULL, \(user.pgUUID))",
            ] {
                let answer = await SQLRuleTests.attempt(f, as: user) { try await Self.run($0, query) }
                #expect(answer == .sqlState("42501"), "\(query.sql): \(answer.map(\.description) ?? "ran")")
            }
        }
    }

    @Test("Industry-user decisions share the organisation lock; revoking a super user waits for them", .timeLimit(.minutes(1)))
    func locksFitTheCommand() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let su = try await f.superUser(of: org)
            let second = try await f.superUser(of: org)
            let desk = try await f.staff(.serviceDesk)
            let (_, first) = try await Self.pendingIndustryRequest(f, org: org, superUser: su)
            let (_, other) = try await Self.pendingIndustryRequest(f, org: org, superUser: su)
            let assignment = try #require(
                try await f.ownerQuery(
                    """
                    SELECT id::text FROM role_assignments WHERE account_id = \(second.pgUUID) AND role = 'spor-industry-super-user'
                    """
                ).first)
            let (held, heldGate) = AsyncStream<Void>.makeStream()
            let (release, releaseGate) = AsyncStream<Void>.makeStream()

            // One approval's transaction stays open after its call, holding the shared lock.
            let holder = Task {
                try await f.asApplication(actor: nil) { conn in
                    try await Self.run(conn, "SELECT * FROM spor_decide_request(\(su.bearerToken), \(first), true, NULL)")
                    heldGate.yield()
                    for await _ in release { break }
                }
            }
            for await _ in held { break }
            // Another industry-user approval in the same organisation does not wait for it...
            let shared = await SQLRuleTests.attempt(f, as: nil) { conn in
                try await conn.query("SET LOCAL lock_timeout = '2s'", logger: Self.log)
                try await Self.run(conn, "SELECT * FROM spor_decide_request(\(second.bearerToken), \(other), true, NULL)")
            }
            #expect(shared == nil, "a second industry-user approval waited: \(shared.map(\.description) ?? "")")
            // ...while removing a super user does (it changes the set the approval relies on).
            let exclusive = await SQLRuleTests.attempt(f, as: nil) { conn in
                try await conn.query("SET LOCAL lock_timeout = '300ms'", logger: Self.log)
                try await Self.run(conn, "SELECT * FROM spor_revoke_assignment(\(desk.bearerToken), \(Int64(assignment)!), 'left', false)")
            }
            // 55P03 (lock_not_available), which the store reports as the database being unavailable for now (a 503).
            #expect(
                exclusive == Answer("unavailable: canceling statement due to lock timeout"),
                "the revocation did not wait: \(exclusive.map(\.description) ?? "committed")")
            releaseGate.yield()
            try await holder.value
            // Once the approval committed, the revocation goes through.
            #expect(
                await SQLRuleTests.attempt(f, as: nil) { conn in
                    try await Self.run(conn, "SELECT * FROM spor_revoke_assignment(\(desk.bearerToken), \(Int64(assignment)!), 'left', false)")
                } == nil)
        }
    }
}
