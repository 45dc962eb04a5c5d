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
    // One file per race: +FirstSuperUser (R11), +Revocation (R14), +DuplicateRequests (R7), and +Interleavings (the
    // interleavings behind the races, forced step by step). Here: what they share.

    // MARK: Helpers

    /// Opens `connections` pooled application connections at once, so the race itself does not wait for connects.
    static func warmUp(_ f: Fixture, connections: Int) async throws {
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
    static func superUserAssignments(_ f: Fixture, org: OrganisationID, of accounts: [TestAccount]) async throws -> [Int64] {
        var ids: [Int64] = []
        for account in accounts {
            let rows = try await f.ownerQuery(
                """
                SELECT id::text FROM role_assignments WHERE organisation_id = \(org.rawValue)
                AND account_id = \(account.pgUUID) AND role = 'spor-industry-super-user' AND revoked_at IS NULL
                """)
            try #require(rows.count == 1)
            ids.append(Int64(rows[0])!)
        }
        return ids
    }

    /// Revocations commit in the order they took the organisation lock, and each writes its audit event under it, so the
    /// audit ids give that order: nobody may revoke anything after their own super-user role was revoked (R13/R14).
    static func expectRevokersWereActive(
        _ f: Fixture, org: OrganisationID, superUsers: [TestAccount], assignments: [Int64]
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
    static func revokeInSQL(_ conn: PostgresConnection, org: OrganisationID, revoker: UUID, assignment: Int64) async throws {
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
    static func code(of error: any Error) -> String {
        if let refusal = error as? Refusal { return refusal.code.rawValue }
        if case StoreError.ruleViolation(let code, _, _) = error { return code }
        if error is NothingUpdated { return NothingUpdated.code }
        return "unexpected: \(String(reflecting: error))"
    }

    static func all(_ rows: PostgresRowSequence) async throws -> [Int64] {
        var values: [Int64] = []
        for try await value in rows.decode(Int64.self) { values.append(value) }
        return values
    }

    static func single(_ rows: PostgresRowSequence) async throws -> Int64 {
        let values = try await all(rows)
        guard values.count == 1 else { throw FixtureError("expected one row, got \(values.count)") }
        return values[0]
    }
}

extension ConcurrencyTests {
    /// The raw UPDATE matched no row (row-level security hid it from the acting account).
    struct NothingUpdated: Error {
        static let code = "nothing-updated"
    }

    /// Carries a value out of an `asApplication` body.
    actor Box {
        var value: Int64?
        func set(_ value: Int64) { self.value = value }
    }
}
