import AccessStore
import EmbeddedPostgres
import Foundation
import Logging
import PostgresNIO

#if canImport(Glibc)
    import Glibc
#endif

/// A database of its own for one test: created from a migrated template (or empty), dropped afterwards.
///
/// The server is `TEST_DATABASE_URL` (a superuser URL) when set; otherwise a throwaway cluster started once per
/// test process through the same `EmbeddedPostgres` code that `serve` uses, stopped when the process exits.
public struct TestDatabase: Sendable {
    public let name: String
    /// Connects as the owner role (the one that runs migrations).
    public let owner: DatabaseURL
    /// Connects as the application role: row-level security and the rule triggers apply.
    public let application: DatabaseURL
    public let migrations: MigrationSet

    public static let logger: Logger = {
        var logger = Logger(label: "spor-access.tests")
        logger.logLevel = ProcessInfo.processInfo.environment["TEST_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return logger
    }()

    /// Runs `body` with a fresh database (migrated unless `migrated` is false) and drops it afterwards.
    public static func with<T: Sendable>(
        migrated: Bool = true, _ body: @Sendable (TestDatabase) async throws -> T
    ) async throws -> T {
        let database = try await TestServer.shared.makeDatabase(migrated: migrated)
        do {
            let result = try await body(database)
            try await TestServer.shared.drop(database.name)
            return result
        } catch {
            try? await TestServer.shared.drop(database.name)
            throw error
        }
    }

    /// Runs `body` with a running client for `url`.
    public static func withClient<T: Sendable>(
        _ url: DatabaseURL, maximumConnections: Int = 20, _ body: @Sendable (PostgresClient) async throws -> T
    ) async throws -> T {
        try await url.makeClient(logger: logger, maximumConnections: maximumConnections, quiet: true).whileRunning(body)
    }

    public func withOwnerClient<T: Sendable>(_ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        try await Self.withClient(owner, body)
    }

    public func withApplicationClient<T: Sendable>(
        maximumConnections: Int = 20, _ body: @Sendable (PostgresClient) async throws -> T
    ) async throws -> T {
        try await Self.withClient(application, maximumConnections: maximumConnections, body)
    }
}

/// The PostgreSQL server of this test process.
actor TestServer {
    static let shared = TestServer()

    struct Ready {
        let superuser: DatabaseURL
        let provisioned: ProvisionedDatabase
        let migrations: MigrationSet
        let template: String
    }

    private var ready: Ready?
    /// Started once: the actor is re-entrant across awaits, so concurrent first callers share one start.
    private var starting: Task<Ready, any Error>?
    private var counter = 0

    func makeDatabase(migrated: Bool) async throws -> TestDatabase {
        let ready = try await start()
        counter += 1
        let name = "test_\(getpid())_\(counter)"
        let logger = TestDatabase.logger
        _ = try await DatabaseURLClient.with(ready.superuser.with(database: "postgres")) { client in
            try await ClusterProvisioning.createDatabase(
                named: name, template: migrated ? ready.template : "template0", connection: client, logger: logger)
        }
        return TestDatabase(
            name: name, owner: ready.provisioned.owner.with(database: name),
            application: ready.provisioned.application.with(database: name), migrations: ready.migrations)
    }

    func drop(_ name: String) async throws {
        guard let ready else { return }
        _ = try await DatabaseURLClient.with(ready.superuser.with(database: "postgres")) { client in
            try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(name) WITH (FORCE)"), logger: TestDatabase.logger)
        }
    }

    private func start() async throws -> Ready {
        if let ready { return ready }
        if let starting { return try await starting.value }
        let task = Task { try await Self.startServer() }
        starting = task
        let value = try await task.value
        ready = value
        return value
    }

    private static func startServer() async throws -> Ready {
        let logger = TestDatabase.logger
        let migrations = try MigrationSet(directory: MigrationSet.defaultDirectory())
        let superuser: DatabaseURL
        let provisioned: ProvisionedDatabase
        if let external = ProcessInfo.processInfo.environment["TEST_DATABASE_URL"], !external.isEmpty {
            superuser = try DatabaseURL(parsing: external)
            let ownerPassword = "0123456789abcdef0123456789abcdef"
            let appPassword = "fedcba9876543210fedcba9876543210"
            try await ClusterProvisioning.ensureRolesAndDatabase(
                superuser: superuser, database: nil, ownerPassword: ownerPassword, appPassword: appPassword, logger: logger)
            provisioned = ProvisionedDatabase(
                owner: superuser.with(username: DatabaseRole.owner, password: ownerPassword),
                application: superuser.with(username: DatabaseRole.application, password: appPassword))
        } else {
            let directory = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("spor-access-tests-\(getpid())")
            let cluster = try EmbeddedPostgres(
                configuration: .init(
                    dataDirectory: directory,
                    settings: ["fsync": "off", "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "300"]),
                logger: logger)
            let running = try await cluster.start()
            TestClusterCleanup.register(cluster)
            superuser = running.url(user: running.superuser, password: running.superuserPassword, database: "postgres")
            provisioned = try await cluster.provision(running, database: "postgres")
        }
        // One migrated template per process; each test database is a cheap copy of it.
        let template = "spor_template_\(getpid())"
        _ = try await DatabaseURLClient.with(superuser.with(database: "postgres")) { client in
            try await client.query(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \(template) WITH (FORCE)"), logger: logger)
            try await ClusterProvisioning.createDatabase(named: template, template: "template0", connection: client, logger: logger)
        }
        _ = try await DatabaseURLClient.with(provisioned.owner.with(database: template)) { client in
            try await MigrationRunner(migrations: migrations, logger: logger).migrate(client: client)
        }
        return Ready(superuser: superuser, provisioned: provisioned, migrations: migrations, template: template)
    }
}

enum DatabaseURLClient {
    @discardableResult
    static func with<T: Sendable>(_ url: DatabaseURL, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        try await url.makeClient(logger: TestDatabase.logger, maximumConnections: 2, quiet: true).whileRunning(body)
    }
}

/// Stops the throwaway cluster and removes its folder when the test process exits.
enum TestClusterCleanup {
    nonisolated(unsafe) private static var cluster: EmbeddedPostgres?

    static func register(_ value: EmbeddedPostgres) {
        cluster = value
        atexit {
            guard let cluster = TestClusterCleanup.cluster else { return }
            cluster.stopNow()
            try? FileManager.default.removeItem(at: cluster.configuration.dataDirectory)
        }
    }
}
