import AccessStore
import Foundation
import Logging

/// Everything `buildApplication` needs; the command fills it from flags and environment, tests directly.
public struct AppConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// The service's database login (the application role, or the owner acting as it).
    public var database: DatabaseURL
    /// The login background work uses, switching to `spor_worker` per transaction (its own login, or the owner's).
    public var workerDatabase: DatabaseURL
    /// Where `/v1/reports` reads (a replica, as the application role); nil: `database`.
    public var reportingDatabase: DatabaseURL?
    /// The migrations the service expects to be applied (the readiness check compares them).
    public var migrations: MigrationSet
    public var maximumDatabaseConnections: Int
    /// Commands of one organisation holding a database connection at once; nil: half the pool (at least one). The
    /// others wait without a connection (at most `connectionWait`), so one organisation's queue cannot take the pool.
    public var maximumConnectionsPerOrganisation: Int?
    /// Largest request body accepted, in bytes; larger ones get 413.
    public var maximumBodySize: Int
    /// Deliver the notification outbox and expire due requests in the background (off in most tests).
    public var runBackgroundWorkers: Bool
    /// How long a bearer token stays valid.
    public var sessionLifetime: Duration
    /// bcrypt cost of passwords and security answers (tests lower it).
    public var bcryptCost: UInt8
    /// How the outbox is delivered: SMTP, or `.eml` files in a folder (the default).
    public var mail: MailConfiguration
    /// Serve at once, or wait for (and migrate) the database first, answering 503 `starting` meanwhile.
    public var startup: StartupMode = .immediate
    /// How long a call waits for a free database connection before it is answered 503 `database-unavailable`.
    public var connectionWait: Duration = .seconds(5)
    /// API calls in progress at most; more are answered 503 `overloaded` at once.
    public var maximumRequestsInFlight: Int = 1024
    /// Prepare the request+approve pair's statements once per connection (`Database.preparedStatements`); off
    /// behind pgbouncer in transaction mode before 1.21, which does not keep named statements across transactions.
    public var preparedStatements = true

    public init(
        host: String = "127.0.0.1",
        port: Int = 8080,
        database: DatabaseURL,
        workerDatabase: DatabaseURL? = nil,
        reportingDatabase: DatabaseURL? = nil,
        migrations: MigrationSet,
        maximumDatabaseConnections: Int = 20,
        maximumBodySize: Int = 16 * 1024 * 1024,
        runBackgroundWorkers: Bool = true,
        sessionLifetime: Duration = .seconds(8 * 3600),
        bcryptCost: UInt8 = 12,
        mail: MailConfiguration = MailConfiguration()
    ) {
        self.mail = mail
        self.sessionLifetime = sessionLifetime
        self.bcryptCost = bcryptCost
        self.runBackgroundWorkers = runBackgroundWorkers
        self.host = host
        self.port = port
        self.database = database
        self.workerDatabase = workerDatabase ?? database
        self.reportingDatabase = reportingDatabase
        self.migrations = migrations
        self.maximumDatabaseConnections = maximumDatabaseConnections
        self.maximumBodySize = maximumBodySize
    }
}
