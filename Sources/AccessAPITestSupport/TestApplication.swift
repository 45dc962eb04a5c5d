import AccessAPI
import AccessStore
import AccessTestSupport
import Foundation
import Hummingbird

/// The service as the API tests build it: the one wiring (`buildApplication`) on a test database.
public enum TestApplication {
    /// The service on `db`'s application role, background workers off, bcrypt cost 4; `configure` changes the rest.
    public static func build(
        _ db: TestDatabase, metrics: HTTPMetrics = HTTPMetrics(), configure: (inout AppConfiguration) -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        try build(database: db.application, migrations: db.migrations, metrics: metrics) { configuration in
            configuration.workerDatabase = db.owner  // the owner switches to spor_worker, as `serve` does by default
            configure(&configuration)
        }
    }

    /// The same on any database (one that is unreachable, say).
    public static func build(
        database: DatabaseURL, migrations: MigrationSet, metrics: HTTPMetrics = HTTPMetrics(),
        configure: (inout AppConfiguration) -> Void = { _ in }
    ) throws -> some ApplicationProtocol {
        var configuration = AppConfiguration(
            port: 0, database: database, migrations: migrations, runBackgroundWorkers: false, bcryptCost: 4)
        // A loaded test machine may take seconds to open a pool's first connections; FaultTests set a short wait.
        configuration.connectionWait = .seconds(60)
        // With workers on, messages go to a folder of the test's own, not the checkout's .data/mail.
        configuration.mail.transport = .drop(
            directory: FileManager.default.temporaryDirectory.appendingPathComponent("spor-test-mail-\(UUID().uuidString)").path)
        configure(&configuration)
        return try buildApplication(configuration, metrics: metrics, logger: TestDatabase.logger)
    }
}
