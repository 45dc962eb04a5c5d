import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension ConcurrencyTests {
    // MARK: R14

    @Test("R14: 50 concurrent revocations never leave the organisation without a super user", .timeLimit(.minutes(2)))
    func concurrentRevocations() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            var superUsers: [TestAccount] = []
            for _ in 0..<5 { superUsers.append(try await f.superUser(of: org)) }
            let assignments = try await Self.superUserAssignments(f, org: org, of: superUsers)

            // Task i: revoker su[i % 5], target su[(i % 5 + i / 5) % 5]. Every super user attempts to revoke every other one
            // twice and to drop their own role twice, so whatever the interleaving exactly one super user is left: a survivor's
            // attempts on another survivor could only fail with last-super-user, which two survivors contradict, and a
            // survivor's own drop can only fail with last-super-user. The start order is shuffled with a fixed seed.
            var rng = try #require(SeededRandom(seed: "aEMuQWgsd64yLM1SRcBg3z5Yg11klpX2d5rAgb5TWMU="))
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
            var superUsers: [TestAccount] = []
            for _ in 0..<5 { superUsers.append(try await f.superUser(of: org)) }
            let assignments = try await Self.superUserAssignments(f, org: org, of: superUsers)

            // Every super user revokes every assignment, their own included: 25 attempts, one transaction each.
            var rng = try #require(SeededRandom(seed: "tL9ziFPTrszxDBPXVCzW9/64YZchlgdmIbQ+KlV04ys="))
            let attempts = (0..<25).map { i in (revoker: i / 5, target: i % 5) }.shuffled(using: &rng)
            try await Self.warmUp(f, connections: attempts.count)

            let results = try await withThrowingTaskGroup(of: Result<Int64, any Error>.self) { group in
                for attempt in attempts {
                    let revoker = superUsers[attempt.revoker]
                    let revokerID = revoker.pgUUID
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
}
