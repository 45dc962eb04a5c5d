import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension ConcurrencyTests {
    // MARK: The interleavings behind the races, forced step by step

    @Test(
        "R11: a decision whose transaction began before a concurrent first grant committed counts that super user",
        .timeLimit(.minutes(1)))
    func staleActivityCheck() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let alice = try await f.user("alice")
            let filed = try await f.requests.submit(actor: alice, role: .superUser, organisation: org, justification: nil)
            try await f.openTicket(for: filed.request, by: alice)
            let desk = try await f.staff(.serviceDesk)
            let (started, startedGate) = AsyncStream<Void>.makeStream()
            let (granted, grantedGate) = AsyncStream<Void>.makeStream()

            // The observer's transaction begins (fixing its now()), then waits while the desk grants the first super user.
            // The count is the owner's helper since 0055 (the command functions call it), so the observer is the owner.
            let observed = Task {
                try await f.owner.withConnection { conn in
                    try await conn.query("BEGIN", logger: TestDatabase.logger)
                    _ = try await conn.query("SELECT now()", logger: TestDatabase.logger).collect()
                    startedGate.yield()
                    for await _ in granted { break }
                    // (Since 0021 only the owner's functions take the organisation lock; the grant has committed here.)
                    let count = try await Self.single(
                        conn.query("SELECT spor_active_super_user_count(\(org.rawValue))::int8", logger: TestDatabase.logger))
                    try await conn.query("COMMIT", logger: TestDatabase.logger)
                    return count
                }
            }
            for await _ in started { break }
            try await Task.sleep(for: .milliseconds(20))
            _ = try await f.requests.decide(actor: desk, request: filed.request.id, channel: .serviceDesk, action: .approve)
            grantedGate.yield()
            let count = try await observed.value

            // Regression: the checks once compared effective_from with now(), the observer's transaction start.
            #expect(count == 1, "under the organisation lock, after the grant committed, the count must include it")
        }
    }

    @Test("R14: a super user revoked while their revocation waits for the organisation lock is refused", .timeLimit(.minutes(1)))
    func revokerLosesRoleWhileWaiting() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            var su: [TestAccount] = []
            for _ in 0..<3 { su.append(try await f.superUser(of: org)) }
            let assignments = try await Self.superUserAssignments(f, org: org, of: su)
            let ids = su.map(\.pgUUID)
            let (held, heldGate) = AsyncStream<Void>.makeStream()
            let (release, releaseGate) = AsyncStream<Void>.makeStream()

            // su[1] revokes su[0] and keeps the organisation lock until released.
            let first = Task {
                try await f.asApplication(actor: su[1]) { conn in
                    try await Self.revokeInSQL(conn, org: org, revoker: ids[1], assignment: assignments[0])
                    heldGate.yield()
                    for await _ in release { break }
                }
            }
            for await _ in held { break }
            // Meanwhile su[0] (about to lose the role) revokes su[2]: it passes the trigger's authorisation check, then waits.
            let second = Task {
                try await f.asApplication(actor: su[0]) { conn in
                    try await Self.revokeInSQL(conn, org: org, revoker: ids[0], assignment: assignments[2])
                }
            }
            var waiting = false
            for _ in 0..<250 where !waiting {
                waiting =
                    try await f.ownerQuery(
                        "SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'") == ["1"]
                if !waiting { try await Task.sleep(for: .milliseconds(20)) }
            }
            try #require(waiting, "the second revocation waits for the first")
            releaseGate.yield()
            try await first.value
            let outcome: Result<Void, any Error>
            do { outcome = .success(try await second.value) } catch { outcome = .failure(error) }

            // Regression: r14_revoke_assignment once authorised the revoker before taking the organisation lock.
            if case .failure(let error) = outcome {
                #expect(Self.code(of: error) == RefusalCode.notFound.rawValue, "\(error)")
            } else {
                Issue.record("a revoked super user revoked another super user's role")
            }
        }
    }
}
