import AccessStore
import AccessTestSupport
import Foundation
import Logging
import PostgresNIO
import Testing

@Suite("Migration runner against a real PostgreSQL")
struct MigrationRunnerTests {
    let logger = TestDatabase.logger

    func runner(_ migrations: [Migration]) throws -> MigrationRunner {
        MigrationRunner(migrations: try MigrationSet(migrations), logger: logger)
    }

    static let three = [
        Migration(version: 3, name: "c", sql: "INSERT INTO log (entry) VALUES ('c');"),
        Migration(
            version: 1, name: "a", sql: "CREATE TABLE log (id serial PRIMARY KEY, entry text NOT NULL);\nINSERT INTO log (entry) VALUES ('a');"),
        Migration(version: 2, name: "b", sql: "INSERT INTO log (entry) VALUES ('b'); -- second; statement\n"),
    ]

    func entries(_ client: PostgresClient) async throws -> [String] {
        var result: [String] = []
        for try await entry in try await client.query("SELECT entry FROM log ORDER BY id").decode(String.self) { result.append(entry) }
        return result
    }

    @Test("migrations apply in version order, once, and are recorded with their checksum")
    func appliesInOrder() async throws {
        try await TestDatabase.with(migrated: false) { db in
            try await db.withOwnerClient { client in
                let runner = try runner(Self.three)
                let actual1 = try await runner.migrate(client: client)
                #expect(actual1 == [1, 2, 3])
                let actual2 = try await entries(client)
                #expect(actual2 == ["a", "b", "c"])
                let actual3 = try await runner.migrate(client: client)
                #expect(actual3 == [])
                var recorded: [String] = []
                for try await (version, checksum) in try await client.query("SELECT version, checksum FROM schema_migrations ORDER BY version")
                    .decode((Int, String).self)
                {
                    recorded.append("\(version):\(checksum)")
                }
                #expect(recorded == runner.migrations.migrations.map { "\($0.version):\($0.checksum)" })
            }
        }
    }

    @Test("an applied migration whose file changed is refused, naming the file")
    func checksumRefusal() async throws {
        try await TestDatabase.with(migrated: false) { db in
            try await db.withOwnerClient { client in
                try await runner(Self.three).migrate(client: client)
                var edited = Self.three
                edited[2] = Migration(version: 2, name: "b", sql: "INSERT INTO log (entry) VALUES ('B');")
                edited.append(Migration(version: 4, name: "d", sql: "INSERT INTO log (entry) VALUES ('d');"))
                let error = await #expect(throws: MigrationError.self) { try await runner(edited).migrate(client: client) }
                #expect(error == .checksumMismatch(file: "0002_b.sql"))
                #expect(error?.description.contains("0002_b.sql") == true)
                // Nothing after the refusal was applied.
                let actual4 = try await entries(client)
                #expect(actual4 == ["a", "b", "c"])
                let status = try await runner(edited).status(client: client)
                #expect(status.map(\.state) == [.applied, .changed, .applied, .pending])
            }
        }
    }

    @Test("a failing migration rolls back entirely and is not recorded")
    func failureRollsBack() async throws {
        try await TestDatabase.with(migrated: false) { db in
            try await db.withOwnerClient { client in
                let broken =
                    Self.three + [Migration(version: 4, name: "broken", sql: "INSERT INTO log (entry) VALUES ('d'); SELECT * FROM missing_table;")]
                await #expect(throws: MigrationError.self) { try await runner(broken).migrate(client: client) }
                let actual5 = try await entries(client)
                #expect(actual5 == ["a", "b", "c"])
                let actual6 = try await runner(broken).status(client: client).last?.state
                #expect(actual6 == .pending)
            }
        }
    }

    @Test("two runners started at once apply each migration exactly once")
    func concurrentRunners() async throws {
        try await TestDatabase.with(migrated: false) { db in
            // A slow first migration widens the window in which both runners race.
            let slow =
                [
                    Migration(
                        version: 1, name: "a",
                        sql:
                            "SELECT pg_sleep(0.3); CREATE TABLE log (id serial PRIMARY KEY, entry text NOT NULL); INSERT INTO log (entry) VALUES ('a');"
                    )
                ]
                + Self.three.filter { $0.version != 1 }
            let applied = try await withThrowingTaskGroup(of: [Int].self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        try await TestDatabase.withClient(db.owner) { client in try await runner(slow).migrate(client: client) }
                    }
                }
                var all: [[Int]] = []
                for try await result in group { all.append(result) }
                return all
            }
            #expect(applied.sorted { $0.count < $1.count } == [[], [1, 2, 3]])
            try await db.withOwnerClient { client in
                let actual7 = try await entries(client)
                #expect(actual7 == ["a", "b", "c"])
            }
        }
    }

    @Test("status lists applied and pending migrations")
    func status() async throws {
        try await TestDatabase.with(migrated: false) { db in
            try await db.withOwnerClient { client in
                let all = try runner(Self.three)
                let actual8 = try await all.status(client: client).map(\.state)
                #expect(actual8 == [.pending, .pending, .pending])
                try await runner(Array(Self.three.filter { $0.version < 3 })).migrate(client: client)
                let rows = try await all.status(client: client)
                #expect(rows.map(\.state) == [.applied, .applied, .pending])
                #expect(rows[0].appliedAt != nil && rows[2].appliedAt == nil)
                let actual9 = try await all.problem(client: client)
                #expect(actual9 == "migrations pending: 0003_c")
                let table = MigrationStatusTable.render(rows)
                #expect(table.contains("0003     pending"))
                #expect(table.hasSuffix("2 applied, 1 pending, 0 changed"))
            }
        }
    }

    @Test("the project's migrations apply cleanly to an empty database and leave nothing pending")
    func projectMigrations() async throws {
        try await TestDatabase.with(migrated: false) { db in
            try await db.withOwnerClient { client in
                let runner = MigrationRunner(migrations: db.migrations, logger: logger)
                try await runner.migrate(client: client)
                let actual10 = try await runner.problem(client: client)
                #expect(actual10 == nil)
            }
        }
    }

    @Test("migration files must be named NNNN_name.sql and versions are unique")
    func fileNames() throws {
        let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("spor-migrations-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try "SELECT 1;".write(to: directory.appendingPathComponent("0001_first.sql"), atomically: true, encoding: .utf8)
        try "not sql".write(to: directory.appendingPathComponent("README.md"), atomically: true, encoding: .utf8)
        #expect(try MigrationSet(directory: directory).migrations.map(\.fileName) == ["0001_first.sql"])
        try "SELECT 2;".write(to: directory.appendingPathComponent("first.sql"), atomically: true, encoding: .utf8)
        #expect(throws: MigrationError.badFileName("first.sql")) { try MigrationSet(directory: directory) }
        #expect(throws: MigrationError.duplicateVersion(1)) {
            try MigrationSet([Migration(version: 1, name: "a", sql: ""), Migration(version: 1, name: "b", sql: "")])
        }
    }
}
