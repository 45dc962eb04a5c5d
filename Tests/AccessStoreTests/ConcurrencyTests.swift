import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

/// Races on the rules that are decided "under the organisation lock" (R7, R11, R14): many transactions at once, each
/// on its own pooled connection, through the Swift store and straight through SQL as the application role.
///
/// The suite is serialized: each test opens up to 50 application connections of its own.
@Suite("Rules under concurrency", .serialized)
struct ConcurrencyTests {
    // MARK: R11

    @Test("R11: 50 concurrent first-super-user approvals grant exactly one first super user", .timeLimit(.minutes(2)))
    func concurrentFirstSuperUserApprovals() async throws {
        try await Fixture.with { f in
            let count = 50
            let org = try await f.organisation()
            var requests: [AccessRequest] = []
            for i in 0..<count {
                let user = try await f.user("candidate\(i)")
                let submission = try await f.requests.submit(actor: user, role: .superUser, organisation: org, justification: nil)
                try #require(submission.request.approverKind == .emaServiceDesk)
                try await f.openTicket(for: submission.request, by: user)
                requests.append(submission.request)
            }
            var agents: [AccountID] = []
            for _ in 0..<count { agents.append(try await f.staff(.serviceDesk)) }
            try await Self.warmUp(f, connections: count)

            let results = try await withThrowingTaskGroup(of: (Int, Result<Decision, any Error>).self) { group in
                for i in 0..<count {
                    let (agent, request) = (agents[i], requests[i].id)
                    group.addTask {
                        do {
                            return (
                                i,
                                .success(
                                    try await f.requests.decide(
                                        actor: agent, request: request, channel: .serviceDesk, action: .approve))
                            )
                        } catch {
                            return (i, .failure(error))
                        }
                    }
                }
                var all: [Int: Result<Decision, any Error>] = [:]
                for try await (i, result) in group { all[i] = result }
                return all
            }

            let winners = results.compactMap { i, result in (try? result.get()).map { (i, $0) } }
            try #require(winners.count == 1, "exactly one approval commits; got \(winners.count)")
            let (winner, decision) = winners[0]
            #expect(decision.request.status == .approved)
            #expect(decision.grant?.firstSuperUser == true)
            #expect(decision.grant?.role == .superUser)
            let failures = results.compactMap { i, result -> (Int, any Error)? in
                if case .failure(let error) = result { return (i, error) } else { return nil }
            }
            #expect(failures.count == count - 1)
            for (i, error) in failures {
                let refusal = error as? Refusal
                #expect(refusal?.code == .delegatedToOrganisation && refusal?.rule == .r11, "request \(requests[i].id): \(error)")
            }

            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL"
                )
                    == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND first_super_user") == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT account_id::text FROM role_assignments WHERE organisation_id = \(org.rawValue)")
                    == [requests[winner].requester.description])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM audit_events WHERE organisation_id = \(org.rawValue) AND action = 'role-assignment.granted'")
                    == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT status FROM access_requests WHERE id = \(requests[winner].id.rawValue)") == ["approved"])

            // The losers' requests stay pending, re-routed to the organisation's super users, each re-route audited once.
            let losers = failures.map { String(requests[$0.0].id.rawValue) }.sorted { Int64($0)! < Int64($1)! }
            #expect(
                try await f.ownerQuery(
                    "SELECT id::text FROM access_requests WHERE organisation_id = \(org.rawValue) AND status = 'pending' ORDER BY id")
                    == losers)
            let pending = try await f.ownerQuery(
                """
                SELECT id::text FROM access_requests WHERE organisation_id = \(org.rawValue) AND status = 'pending'
                AND approver_kind = 'organisation-super-users' ORDER BY id
                """)
            let rerouted = try await f.ownerQuery(
                """
                SELECT subject_id FROM audit_events WHERE organisation_id = \(org.rawValue) AND action = 'access-request.rerouted'
                AND subject_type = 'access_request' ORDER BY subject_id::bigint
                """)
            #expect(rerouted == pending, "every re-route is audited once, and only re-routes")
            // Every loser, whenever its transaction began, sees the winner's grant after the organisation lock.
            #expect(pending == losers)
        }
    }

    @Test(
        "R11: concurrent first-super-user approvals written directly in SQL still yield one first super user",
        .timeLimit(.minutes(2)))
    func concurrentFirstSuperUserApprovalsInSQL() async throws {
        try await Fixture.with { f in
            let count = 20
            let org = try await f.organisation()
            var requests: [AccessRequest] = []
            for i in 0..<count {
                let user = try await f.user("candidate\(i)")
                let submission = try await f.requests.submit(actor: user, role: .superUser, organisation: org, justification: nil)
                try #require(submission.request.approverKind == .emaServiceDesk)
                try await f.openTicket(for: submission.request, by: user)
                requests.append(submission.request)
            }
            var agents: [AccountID] = []
            for _ in 0..<count { agents.append(try await f.staff(.serviceDesk)) }
            try await Self.warmUp(f, connections: count)

            let results = try await withThrowingTaskGroup(of: (Int, Result<Int64, any Error>).self) { group in
                for i in 0..<count {
                    let agent = agents[i]
                    let agentID = agent.rawValue
                    let requesterID = requests[i].requester.rawValue
                    let request = requests[i].id.rawValue
                    let orgID = org.rawValue
                    group.addTask {
                        do {
                            let box = Box()
                            try await f.asApplication(actor: agent) { conn in
                                try await conn.query(
                                    "UPDATE access_requests SET status = 'approved', decided_by = \(agentID) WHERE id = \(request)",
                                    logger: TestDatabase.logger)
                                let assignment = try await Self.single(
                                    conn.query(
                                        """
                                        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user)
                                        VALUES (\(orgID), \(requesterID), 'spor-industry-super-user', 'access-request', \(request), true)
                                        RETURNING id
                                        """, logger: TestDatabase.logger))
                                try await conn.query(
                                    """
                                    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id)
                                    VALUES (\(orgID), \(agentID), 'access-request.approved', 'access_request', \(String(request)))
                                    """, logger: TestDatabase.logger)
                                try await conn.query(
                                    """
                                    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id)
                                    VALUES (\(orgID), \(agentID), 'role-assignment.granted', 'role_assignment', \(String(assignment)))
                                    """, logger: TestDatabase.logger)
                                try await conn.query(
                                    """
                                    INSERT INTO notification_outbox (recipient_email, template, subject, body, subject_type, subject_id)
                                    VALUES ('x@example.com', 'request-decided', 's', 'b', 'access_request', \(String(request)))
                                    """, logger: TestDatabase.logger)
                                await box.set(assignment)
                            }
                            return (i, .success(await box.value ?? -1))
                        } catch {
                            return (i, .failure(error))
                        }
                    }
                }
                var all: [Int: Result<Int64, any Error>] = [:]
                for try await (i, result) in group { all[i] = result }
                return all
            }

            let winners = results.filter { (try? $0.value.get()) != nil }.map(\.key)
            try #require(winners.count == 1, "exactly one transaction commits; got \(winners.count)")
            for (i, result) in results where i != winners[0] {
                if case .failure(let error) = result {
                    #expect(Self.code(of: error) == RefusalCode.delegatedToOrganisation.rawValue, "request \(requests[i].id): \(error)")
                }
            }
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL"
                )
                    == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND first_super_user") == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT account_id::text FROM role_assignments WHERE organisation_id = \(org.rawValue)")
                    == [requests[winners[0]].requester.description])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM access_requests WHERE organisation_id = \(org.rawValue) AND status = 'pending'")
                    == ["\(count - 1)"])
        }
    }

    // MARK: R14

    @Test("R14: 50 concurrent revocations never leave the organisation without a super user", .timeLimit(.minutes(2)))
    func concurrentRevocations() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            var superUsers: [AccountID] = []
            for _ in 0..<5 { superUsers.append(try await f.superUser(of: org)) }
            let assignments = try await Self.superUserAssignments(f, org: org, of: superUsers)

            // Task i: revoker su[i % 5], target su[(i % 5 + i / 5) % 5]. Every super user attempts to revoke every other one
            // twice and to drop their own role twice, so whatever the interleaving exactly one super user is left: a survivor's
            // attempts on another survivor could only fail with last-super-user, which two survivors contradict, and a
            // survivor's own drop can only fail with last-super-user. The start order is shuffled with a fixed seed.
            var rng = SplitMix64(seed: 0x5EED_0014)
            let attempts = (0..<50).map { i in (revoker: i % 5, target: (i % 5 + i / 5) % 5) }.shuffled(using: &rng)
            try await Self.warmUp(f, connections: attempts.count)

            let results = try await withThrowingTaskGroup(of: Result<RoleAssignment, any Error>.self) { group in
                for attempt in attempts {
                    let revoker = superUsers[attempt.revoker]
                    let assignment = assignments[attempt.target]
                    let channel: RevocationChannel = attempt.revoker == attempt.target ? .own : .organisation
                    group.addTask {
                        do {
                            return .success(
                                try await f.requests.revoke(
                                    actor: revoker, assignment: assignment, channel: channel, reason: "test"))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                var all: [Result<RoleAssignment, any Error>] = []
                for try await result in group { all.append(result) }
                return all
            }

            let successes = results.compactMap { try? $0.get() }
            var codes: [String: Int] = [:]
            for case .failure(let error) in results {
                #expect(error is Refusal, "\(error)")
                codes[Self.code(of: error), default: 0] += 1
            }
            #expect(Set(codes.keys).isSubset(of: [RefusalCode.lastSuperUser.rawValue, RefusalCode.notFound.rawValue]), "\(codes)")
            #expect(codes[RefusalCode.lastSuperUser.rawValue, default: 0] >= 1, "\(codes)")
            #expect(Set(successes.map(\.id)).count == successes.count, "no assignment is revoked twice")
            #expect(successes.count == 4)

            let active = try await f.ownerQuery(
                "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL"
            )
            #expect(active == ["1"])
            #expect(
                try await f.ownerQuery(
                    """
                    SELECT count(*)::text FROM audit_events WHERE organisation_id = \(org.rawValue)
                    AND action IN ('role-assignment.revoked', 'role-assignment.dropped')
                    """) == ["\(successes.count)"])
            try await Self.expectRevokersWereActive(f, org: org, superUsers: superUsers, assignments: assignments)
        }
    }

    @Test("R14: the same race in raw SQL", .timeLimit(.minutes(2)))
    func concurrentRevocationsInSQL() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            var superUsers: [AccountID] = []
            for _ in 0..<5 { superUsers.append(try await f.superUser(of: org)) }
            let assignments = try await Self.superUserAssignments(f, org: org, of: superUsers)

            // Every super user revokes every assignment, their own included: 25 attempts, one transaction each.
            var rng = SplitMix64(seed: 0x5EED_1014)
            let attempts = (0..<25).map { i in (revoker: i / 5, target: i % 5) }.shuffled(using: &rng)
            try await Self.warmUp(f, connections: attempts.count)

            let results = try await withThrowingTaskGroup(of: Result<Int64, any Error>.self) { group in
                for attempt in attempts {
                    let revoker = superUsers[attempt.revoker]
                    let revokerID = revoker.rawValue
                    let assignment = assignments[attempt.target]
                    let action = attempt.revoker == attempt.target ? "role-assignment.dropped" : "role-assignment.revoked"
                    let orgID = org.rawValue
                    group.addTask {
                        do {
                            try await f.asApplication(actor: revoker) { conn in
                                // RETURNING: a row hidden by row-level security is updated silently not at all; count it as refused.
                                let updated = try await Self.all(
                                    conn.query(
                                        "UPDATE role_assignments SET revoked_at = now(), revoked_by = \(revokerID) WHERE id = \(assignment) RETURNING id",
                                        logger: TestDatabase.logger))
                                guard updated == [assignment] else { throw NothingUpdated() }
                                try await conn.query(
                                    """
                                    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id)
                                    VALUES (\(orgID), \(revokerID), \(action), 'role_assignment', \(String(assignment)))
                                    """, logger: TestDatabase.logger)
                            }
                            return .success(assignment)
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                var all: [Result<Int64, any Error>] = []
                for try await result in group { all.append(result) }
                return all
            }

            let successes = results.compactMap { try? $0.get() }
            var codes: [String: Int] = [:]
            for case .failure(let error) in results { codes[Self.code(of: error), default: 0] += 1 }
            #expect(
                Set(codes.keys).isSubset(of: [
                    RefusalCode.lastSuperUser.rawValue, RefusalCode.notFound.rawValue, NothingUpdated.code,
                ]), "\(codes)")
            #expect(Set(successes).count == successes.count, "no assignment is revoked twice")

            let active = try await f.ownerQuery(
                "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL"
            )
            #expect(Int(active.first ?? "0")! >= 1, "the organisation keeps a super user")
            #expect(successes.count == 5 - Int(active.first ?? "0")!)
            #expect(
                try await f.ownerQuery(
                    """
                    SELECT count(*)::text FROM audit_events WHERE organisation_id = \(org.rawValue)
                    AND action IN ('role-assignment.revoked', 'role-assignment.dropped')
                    """) == ["\(successes.count)"])
            // The trigger authorises each revoker after taking the organisation lock.
            try await Self.expectRevokersWereActive(f, org: org, superUsers: superUsers, assignments: assignments)
        }
    }

    // MARK: R7

    @Test("R7: concurrent duplicate submissions store one pending request", .timeLimit(.minutes(2)))
    func concurrentDuplicateSubmissions() async throws {
        try await Fixture.with { f in
            let count = 20
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            let user = try await f.user("duplicate")
            try await Self.warmUp(f, connections: count)

            let results = try await withThrowingTaskGroup(of: Result<Submission, any Error>.self) { group in
                for _ in 0..<count {
                    group.addTask {
                        do {
                            return .success(
                                try await f.requests.submit(
                                    actor: user, role: .industryUser, organisation: org, justification: "same request"))
                        } catch {
                            return .failure(error)
                        }
                    }
                }
                var all: [Result<Submission, any Error>] = []
                for try await result in group { all.append(result) }
                return all
            }

            let successes = results.compactMap { try? $0.get() }
            #expect(successes.count == 1)
            for case .failure(let error) in results {
                let refusal = error as? Refusal
                #expect(refusal?.code == .duplicateRequest && refusal?.rule == .r7, "\(error)")
            }
            #expect(
                try await f.ownerQuery(
                    """
                    SELECT count(*)::text FROM access_requests WHERE requester_id = \(user.rawValue)
                    AND organisation_id = \(org.rawValue) AND role = 'spor-industry-user' AND status = 'pending'
                    """) == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM audit_events WHERE action = 'access-request.submitted' AND actor_id = \(user.rawValue)"
                )
                    == ["1"])
        }
    }

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
            let observer = try await f.staff(.serviceDesk)
            let (started, startedGate) = AsyncStream<Void>.makeStream()
            let (granted, grantedGate) = AsyncStream<Void>.makeStream()

            // The observer's transaction begins (fixing its now()), then waits while the desk grants the first super user.
            let observed = Task {
                let box = Box()
                try await f.asApplication(actor: observer) { conn in
                    startedGate.yield()
                    for await _ in granted { break }
                    try await conn.query("SELECT spor_lock_organisation(\(org.rawValue))", logger: TestDatabase.logger)
                    await box.set(
                        try await Self.single(
                            conn.query(
                                "SELECT spor_active_super_user_count(\(org.rawValue))::int8", logger: TestDatabase.logger)))
                }
                return await box.value
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
            var su: [AccountID] = []
            for _ in 0..<3 { su.append(try await f.superUser(of: org)) }
            let assignments = try await Self.superUserAssignments(f, org: org, of: su)
            let ids = su.map { $0.rawValue }
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

    // MARK: Helpers

    /// Opens `connections` pooled application connections at once, so the race itself does not wait for connects.
    private static func warmUp(_ f: Fixture, connections: Int) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<connections {
                group.addTask {
                    try await f.asApplication(actor: nil) { conn in
                        try await conn.query("SELECT pg_sleep(0.05)", logger: TestDatabase.logger)
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// The active super-user assignment of each account, in the same order.
    private static func superUserAssignments(_ f: Fixture, org: OrganisationID, of accounts: [AccountID]) async throws -> [Int64] {
        var ids: [Int64] = []
        for account in accounts {
            let rows = try await f.ownerQuery(
                """
                SELECT id::text FROM role_assignments WHERE organisation_id = \(org.rawValue)
                AND account_id = \(account.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL
                """)
            try #require(rows.count == 1)
            ids.append(Int64(rows[0])!)
        }
        return ids
    }

    /// Revocations commit in the order they took the organisation lock, and each writes its audit event under it, so the
    /// audit ids give that order: nobody may revoke anything after their own super-user role was revoked (R13/R14).
    private static func expectRevokersWereActive(
        _ f: Fixture, org: OrganisationID, superUsers: [AccountID], assignments: [Int64]
    ) async throws {
        let holder = Dictionary(uniqueKeysWithValues: zip(assignments.map(String.init), superUsers.map(\.description)))
        let events = try await f.ownerQuery(
            """
            SELECT actor_id::text || ' ' || subject_id FROM audit_events WHERE organisation_id = \(org.rawValue)
            AND action IN ('role-assignment.revoked', 'role-assignment.dropped') ORDER BY id
            """)
        var removed: Set<String> = []
        for event in events {
            let parts = event.split(separator: " ").map(String.init)
            let (actor, subject) = (parts[0], parts[1])
            #expect(!removed.contains(actor), "\(actor) revoked assignment \(subject) after losing their super-user role")
            if let account = holder[subject] { removed.insert(account) }
        }
    }

    /// One raw revocation as the application role, with its audit event; a row hidden by row-level security counts as refused.
    private static func revokeInSQL(_ conn: PostgresConnection, org: OrganisationID, revoker: UUID, assignment: Int64) async throws {
        let action = "role-assignment.revoked"
        let updated = try await all(
            conn.query(
                "UPDATE role_assignments SET revoked_at = now(), revoked_by = \(revoker) WHERE id = \(assignment) RETURNING id",
                logger: TestDatabase.logger))
        guard updated == [assignment] else { throw NothingUpdated() }
        try await conn.query(
            """
            INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id)
            VALUES (\(org.rawValue), \(revoker), \(action), 'role_assignment', \(String(assignment)))
            """, logger: TestDatabase.logger)
    }

    /// The stable refusal code of an error from the store or `asApplication`.
    private static func code(of error: any Error) -> String {
        if let refusal = error as? Refusal { return refusal.code.rawValue }
        if case StoreError.ruleViolation(let code, _, _) = error { return code }
        if error is NothingUpdated { return NothingUpdated.code }
        return "unexpected: \(String(reflecting: error))"
    }

    private static func all(_ rows: PostgresRowSequence) async throws -> [Int64] {
        var values: [Int64] = []
        for try await value in rows.decode(Int64.self) { values.append(value) }
        return values
    }

    private static func single(_ rows: PostgresRowSequence) async throws -> Int64 {
        let values = try await all(rows)
        guard values.count == 1 else { throw FixtureError("expected one row, got \(values.count)") }
        return values[0]
    }
}

/// The raw UPDATE matched no row (row-level security hid it from the acting account).
private struct NothingUpdated: Error {
    static let code = "nothing-updated"
}

/// Carries a value out of an `asApplication` body.
private actor Box {
    var value: Int64?
    func set(_ value: Int64) { self.value = value }
}

/// A small seeded generator, so the shuffled start orders are the same on every run.
private struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
