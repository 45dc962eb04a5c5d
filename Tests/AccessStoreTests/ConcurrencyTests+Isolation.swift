import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension ConcurrencyTests {
    /// Runs `statements` on one connection of the application role, in a transaction at `isolation`, reading every row
    /// of each; the SQLSTATE of the first failure (after which it rolls back), or nil when COMMIT succeeded.
    static func repeatableReadTransaction(
        _ connection: PostgresConnection, _ steps: [PostgresQuery], commit: Bool = true
    ) async -> String? {
        do {
            for step in steps { _ = try await connection.query(step, logger: TestDatabase.logger).collect() }
            if commit { _ = try await connection.query("COMMIT", logger: TestDatabase.logger).collect() }
            return nil
        } catch let error as PSQLError {
            _ = try? await connection.query("ROLLBACK", logger: TestDatabase.logger).collect()
            return error.serverInfo?[.sqlState] ?? "\(String(reflecting: error))"
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: TestDatabase.logger).collect()
            return "\(error)"
        }
    }

    @Test(
        "R14 at REPEATABLE READ: two super users revoking each other from old snapshots leave one, not none (the later one must retry)",
        .timeLimit(.minutes(1)))
    func revocationsAtRepeatableRead() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let a = try await f.superUser(of: org)
            let b = try await f.superUser(of: org)
            let assignments = try await Self.superUserAssignments(f, org: org, of: [a, b])
            try await f.app.withConnection { first in
                try await f.app.withConnection { second in
                    // Both transactions take their snapshot while both super users are active ...
                    for (connection, actor) in [(first, a), (second, b)] {
                        _ = try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ", logger: TestDatabase.logger).collect()
                        _ = try await connection.query("SELECT spor_authenticate(\(actor.bearerToken))", logger: TestDatabase.logger).collect()
                    }
                    // ... A removes B and commits; then B, from its old snapshot, removes A.
                    let revokeB: PostgresQuery = "SELECT id FROM spor_revoke_assignment(\(a.bearerToken), \(assignments[1]), 'gone', false)"
                    let revokeA: PostgresQuery = "SELECT id FROM spor_revoke_assignment(\(b.bearerToken), \(assignments[0]), 'gone', false)"
                    #expect(await Self.repeatableReadTransaction(first, [revokeB]) == nil)
                    let second = await Self.repeatableReadTransaction(second, [revokeA])
                    // Refused: a serialization failure (the service retries it, and then it is last-super-user).
                    #expect(second == "40001", "\(second ?? "committed")")
                }
            }
            let active = try await f.ownerQuery(
                """
                SELECT count(*)::text FROM role_assignments
                WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL
                """)
            #expect(active == ["1"])
        }
    }

    @Test(
        "R9 at REPEATABLE READ: an industry-user request from a snapshot older than the last super user's removal is refused",
        .timeLimit(.minutes(1)))
    func requestAtRepeatableReadAfterLastSuperUserLeft() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let only = try await f.superUser(of: org)
            let desk = try await f.staff(.serviceDesk)
            let applicant = try await f.user("late")
            let assignment = try #require(try await Self.superUserAssignments(f, org: org, of: [only]).first)
            try await f.app.withConnection { connection in
                _ = try await connection.query("BEGIN ISOLATION LEVEL REPEATABLE READ", logger: TestDatabase.logger).collect()
                _ = try await connection.query("SELECT spor_authenticate(\(applicant.bearerToken))", logger: TestDatabase.logger).collect()
                // The service desk removes the organisation's only super user, and that commits ...
                _ = try await f.requests.revoke(actor: desk, assignment: assignment, channel: .serviceDesk, reason: "left the company")
                // ... then the applicant, from the older snapshot, files a request for the super users to decide.
                let filed = await Self.repeatableReadTransaction(
                    connection,
                    ["SELECT id FROM spor_file_request(\(applicant.bearerToken), 'spor-industry-user', \(org.rawValue), NULL)"])
                #expect(filed == "40001", "\(filed ?? "committed")")
            }
            #expect(
                try await f.ownerQuery("SELECT count(*)::text FROM access_requests WHERE requester_id = \(applicant.pgUUID)") == ["0"])
        }
    }
}
