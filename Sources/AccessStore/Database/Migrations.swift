import Crypto
import Foundation
import Logging
import PostgresNIO

/// One SQL file of `SQL/migrations`, named `NNNN_name.sql`.
public struct Migration: Sendable, Equatable {
    public let version: Int
    public let name: String
    public let sql: String
    /// Hex SHA-256 of the file's bytes: an applied migration whose file changed is refused.
    public let checksum: String

    public init(version: Int, name: String, sql: String) {
        self.version = version
        self.name = name
        self.sql = sql
        self.checksum = SHA256.hash(data: Data(sql.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    public var fileName: String { String(format: "%04d_%@.sql", version, name) }
}

/// The ordered migrations of a folder.
public struct MigrationSet: Sendable {
    public let migrations: [Migration]

    public init(_ migrations: [Migration]) throws {
        self.migrations = migrations.sorted { $0.version < $1.version }
        var seen = Set<Int>()
        for migration in self.migrations where !seen.insert(migration.version).inserted {
            throw MigrationError.duplicateVersion(migration.version)
        }
    }

    /// Reads every `NNNN_name.sql` of `directory`; other files are ignored.
    public init(directory: URL) throws {
        let names: [String]
        do {
            names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
        } catch {
            throw MigrationError.folderMissing(directory.path)
        }
        var migrations: [Migration] = []
        for fileName in names where fileName.hasSuffix(".sql") {
            let stem = fileName.dropLast(4)
            guard let underscore = stem.firstIndex(of: "_"), let version = Int(stem[..<underscore]) else {
                throw MigrationError.badFileName(fileName)
            }
            let sql = try String(contentsOf: directory.appendingPathComponent(fileName), encoding: .utf8)
            migrations.append(Migration(version: version, name: String(stem[stem.index(after: underscore)...]), sql: sql))
        }
        try self.init(migrations)
    }

    /// The folder of the project's migrations: `SPOR_MIGRATIONS_DIR`, else `./SQL/migrations`, else the one beside
    /// these sources (a development checkout).
    public static func defaultDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL {
        if let configured = environment["SPOR_MIGRATIONS_DIR"], !configured.isEmpty {
            return URL(fileURLWithPath: configured)
        }
        let local = URL(fileURLWithPath: FileManager.default.currentDirectoryPath).appendingPathComponent("SQL/migrations")
        if FileManager.default.fileExists(atPath: local.path) { return local }
        return URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SQL/migrations")
    }
}

public enum MigrationError: Error, CustomStringConvertible, Equatable {
    case folderMissing(String)
    case badFileName(String)
    case duplicateVersion(Int)
    case checksumMismatch(file: String)
    case failed(file: String, statement: String, message: String)

    public var description: String {
        switch self {
        case .folderMissing(let path):
            return "the migrations folder \(path) does not exist (set SPOR_MIGRATIONS_DIR or run from the repository root)"
        case .badFileName(let name):
            return "migration file \(name) is not named NNNN_name.sql"
        case .duplicateVersion(let version):
            return "two migration files have version \(version)"
        case .checksumMismatch(let file):
            return "migration \(file) was already applied but the file has changed since; "
                + "applied migrations are immutable: restore the file and put the change in a new migration"
        case .failed(let file, let statement, let message):
            return "migration \(file) failed: \(message)\n  in: \(statement.prefix(300))"
        }
    }
}

/// What `migrate --status` shows for one migration.
public struct MigrationStatus: Sendable, Equatable {
    public enum State: String, Sendable { case applied, pending, changed }
    public let version: Int
    public let name: String
    public let state: State
    public let appliedAt: Date?
}

/// Applies migrations in order, each in its own transaction, under an advisory lock so that concurrent runners
/// (two instances starting at once) apply each migration exactly once.
public struct MigrationRunner: Sendable {
    public let migrations: MigrationSet
    let logger: Logger
    /// Arbitrary constant: the advisory lock key of the migration runner ("spor").
    static let lockKey: Int64 = 0x73_70_6F_72

    public init(migrations: MigrationSet, logger: Logger) {
        self.migrations = migrations
        self.logger = logger
    }

    /// Applies what is pending; returns the versions this call applied.
    @discardableResult
    public func migrate(client: PostgresClient) async throws -> [Int] {
        try await client.withConnection { connection in
            try await self.migrate(connection: connection)
        }
    }

    @discardableResult
    public func migrate(connection: PostgresConnection) async throws -> [Int] {
        // The lock comes first: even CREATE TABLE IF NOT EXISTS races when two runners start at once.
        try await connection.query("SELECT pg_advisory_lock(\(Self.lockKey))", logger: logger)
        do {
            try await connection.query(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version integer PRIMARY KEY,
                    name text NOT NULL,
                    checksum text NOT NULL,
                    applied_at timestamptz NOT NULL DEFAULT now()
                )
                """, logger: logger)
            let applied = try await appliedChecksums(connection: connection)
            try verify(applied: applied)
            var done: [Int] = []
            for migration in migrations.migrations where applied[migration.version] == nil {
                try await apply(migration, connection: connection)
                done.append(migration.version)
            }
            try await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            return done
        } catch {
            _ = try? await connection.query("SELECT pg_advisory_unlock(\(Self.lockKey))", logger: logger)
            throw error
        }
    }

    /// Applied, pending and changed migrations, in order.
    public func status(client: PostgresClient) async throws -> [MigrationStatus] {
        let rows = try await appliedRows(client: client)
        return migrations.migrations.map { migration in
            guard let row = rows[migration.version] else {
                return MigrationStatus(version: migration.version, name: migration.name, state: .pending, appliedAt: nil)
            }
            return MigrationStatus(
                version: migration.version, name: migration.name,
                state: row.checksum == migration.checksum ? .applied : .changed, appliedAt: row.appliedAt)
        }
    }

    /// Nil when every migration is applied with its current checksum; otherwise what is wrong.
    public func problem(client: PostgresClient) async throws -> String? {
        let status = try await status(client: client)
        let pending = status.filter { $0.state == .pending }.map { String(format: "%04d_%@", $0.version, $0.name) }
        let changed = status.filter { $0.state == .changed }.map { String(format: "%04d_%@", $0.version, $0.name) }
        if !changed.isEmpty { return "applied migrations changed since: \(changed.joined(separator: ", "))" }
        if !pending.isEmpty { return "migrations pending: \(pending.joined(separator: ", "))" }
        return nil
    }

    private func verify(applied: [Int: String]) throws {
        for migration in migrations.migrations {
            if let checksum = applied[migration.version], checksum != migration.checksum {
                throw MigrationError.checksumMismatch(file: migration.fileName)
            }
        }
    }

    /// Applies one migration in its own transaction. A migration that changes cluster-wide catalog rows (`ALTER ROLE
    /// ... SET`, 0014, 0016, 0037) can collide with another database's runner doing the same at that moment
    /// ("tuple concurrently updated": the advisory lock above is per database); the transaction was rolled back
    /// whole, so it is tried again, up to 5 times.
    private func apply(_ migration: Migration, connection: PostgresConnection) async throws {
        var attempt = 1
        while true {
            do {
                return try await applyOnce(migration, connection: connection)
            } catch MigrationError.failed(_, _, let message) where message.contains("tuple concurrently updated") && attempt < 5 {
                attempt += 1
                logger.info("migration collided with a concurrent catalog update; trying again", metadata: ["migration": "\(migration.fileName)"])
                try await Task.sleep(for: .milliseconds(Int.random(in: 20...200)))
            }
        }
    }

    private func applyOnce(_ migration: Migration, connection: PostgresConnection) async throws {
        logger.info("applying migration", metadata: ["migration": "\(migration.fileName)"])
        try await Database.transaction(on: connection, role: nil, caller: nil, logger: logger) { connection, _ in
            for statement in SQLScript.statements(in: migration.sql) {
                do {
                    try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
                } catch let error as PSQLError {
                    throw MigrationError.failed(
                        file: migration.fileName, statement: statement,
                        message: error.serverInfo?[.message] ?? String(reflecting: error))
                }
            }
            try await connection.query(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (\(migration.version), \(migration.name), \(migration.checksum))",
                logger: logger)
        }
    }

    private func appliedChecksums(connection: PostgresConnection) async throws -> [Int: String] {
        var result: [Int: String] = [:]
        let rows = try await connection.query("SELECT version, checksum FROM schema_migrations", logger: logger)
        for try await (version, checksum) in rows.decode((Int, String).self) { result[version] = checksum }
        return result
    }

    private func appliedRows(client: PostgresClient) async throws -> [Int: (checksum: String, appliedAt: Date)] {
        var result: [Int: (checksum: String, appliedAt: Date)] = [:]
        let exists = try await client.query("SELECT to_regclass('schema_migrations') IS NOT NULL", logger: logger)
        for try await present in exists.decode(Bool.self) where !present { return [:] }
        let rows = try await client.query("SELECT version, checksum, applied_at FROM schema_migrations", logger: logger)
        for try await (version, checksum, appliedAt) in rows.decode((Int, String, Date).self) {
            result[version] = (checksum, appliedAt)
        }
        return result
    }
}
