import AccessAPI
import AccessStore
import ArgumentParser
import Foundation
import Logging

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the HTTP service (starting an embedded PostgreSQL when DATABASE_URL is not set).")

    @Option(name: .long, help: "Address to listen on. Env: SPOR_HOST. Default: 127.0.0.1")
    var host: String?

    @Option(name: .long, help: "Port to listen on. Env: SPOR_PORT. Default: 8080")
    var port: Int?

    @Option(name: .customLong("session-hours"), help: "How long a bearer token stays valid, in hours. Env: SPOR_SESSION_HOURS. Default: 8")
    var sessionHours: Double?

    @Flag(name: .customLong("no-migrate"), help: "Do not apply pending migrations on start. Env: SPOR_NO_MIGRATE=1")
    var noMigrate = false

    @Option(
        name: .customLong("reporting-database-url"),
        help:
            "PostgreSQL URL /v1/reports reads from (a replica), as the application role. Env: REPORTING_DATABASE_URL. Default: the service's own database."
    )
    var reportingDatabaseURL: String?

    @Option(name: .customLong("pool-size"), help: "Connections to PostgreSQL the service keeps at most. Env: SPOR_POOL_SIZE. Default: 20")
    var poolSize: Int?

    @Option(
        name: .customLong("pool-per-organisation"),
        help:
            "Commands of one organisation holding a pool connection at once; the others wait without one, so calls queued on one organisation's lock cannot take the whole pool. Env: SPOR_POOL_PER_ORGANISATION. Default: half the pool size"
    )
    var poolPerOrganisation: Int?

    @Option(
        name: .customLong("database-wait"),
        help:
            "Seconds a call waits for a free database connection before it is answered 503. Env: SPOR_DATABASE_WAIT_SECONDS. Default: 5"
    )
    var databaseWait: Double?

    @Option(
        name: .customLong("max-in-flight"),
        help: "API calls in progress at most; more are answered 503 at once. Env: SPOR_MAX_IN_FLIGHT. Default: 1024")
    var maxInFlight: Int?

    @Option(
        name: .customLong("shutdown-timeout"),
        help:
            "Seconds after SIGTERM or SIGINT by which the process has exited, gracefully or not (0: wait for the graceful shutdown however long it takes). Env: SPOR_SHUTDOWN_TIMEOUT_SECONDS. Default: 30"
    )
    var shutdownTimeout: Double?

    @Option(
        name: .customLong("prepared-statements"),
        help:
            "on: the request+approve pair's statements are prepared once per connection; off behind pgbouncer in transaction mode before 1.21, which does not keep prepared statements across transactions. Env: SPOR_PREPARED_STATEMENTS. Default: on"
    )
    var preparedStatements: String?

    @OptionGroup var database: DatabaseOptions

    @OptionGroup(title: "E-mail") var mail: MailOptions

    func run() async throws {
        let logger = try database.bootstrapLogging()
        let listenHost = database.value(host, "SPOR_HOST") ?? "127.0.0.1"
        let portText = database.value(port.map(String.init), "SPOR_PORT") ?? "8080"
        guard let listenPort = Int(portText), (0...65535).contains(listenPort) else {
            throw ValidationError("port '\(portText)' is not a number between 0 and 65535")
        }
        let hoursText = database.value(sessionHours.map { String($0) }, "SPOR_SESSION_HOURS") ?? "8"
        guard let hours = Double(hoursText), hours > 0, hours <= 24 * 30 else {
            throw ValidationError("session hours '\(hoursText)' must be a number above 0 and at most 720")
        }
        let poolText = database.value(poolSize.map(String.init), "SPOR_POOL_SIZE") ?? "20"
        guard let pool = Int(poolText), (1...1000).contains(pool) else {
            throw ValidationError("pool size '\(poolText)' must be a number from 1 to 1000")
        }
        let perOrganisationText = database.value(poolPerOrganisation.map(String.init), "SPOR_POOL_PER_ORGANISATION")
        let perOrganisation = try perOrganisationText.map { text in
            guard let value = Int(text), (1...pool).contains(value) else {
                throw ValidationError("pool per organisation '\(text)' must be a number from 1 to the pool size (\(pool))")
            }
            return value
        }
        let waitText = database.value(databaseWait.map { String($0) }, "SPOR_DATABASE_WAIT_SECONDS") ?? "5"
        guard let wait = Double(waitText), wait > 0, wait <= 300 else {
            throw ValidationError("database wait '\(waitText)' must be a number of seconds above 0 and at most 300")
        }
        let inFlightText = database.value(maxInFlight.map(String.init), "SPOR_MAX_IN_FLIGHT") ?? "1024"
        guard let inFlight = Int(inFlightText), (1...100_000).contains(inFlight) else {
            throw ValidationError("max in flight '\(inFlightText)' must be a number from 1 to 100000")
        }
        let shutdownText = database.value(shutdownTimeout.map { String($0) }, "SPOR_SHUTDOWN_TIMEOUT_SECONDS") ?? "30"
        guard let shutdownSeconds = Double(shutdownText), shutdownSeconds >= 0, shutdownSeconds <= 3600 else {
            throw ValidationError("shutdown timeout '\(shutdownText)' must be a number of seconds from 0 to 3600")
        }
        let preparedText = database.value(preparedStatements, "SPOR_PREPARED_STATEMENTS") ?? "on"
        guard let prepared = ["on": true, "off": false][preparedText] else {
            throw ValidationError("prepared statements '\(preparedText)' must be on or off")
        }
        let mailConfiguration = try mail.configuration(database, host: listenHost, port: listenPort)
        let reporting = try database.value(reportingDatabaseURL, "REPORTING_DATABASE_URL").map(DatabaseURL.init(parsing:))
        let migrations: MigrationSet
        let resolved: ResolvedDatabase
        do {
            migrations = try database.migrationSet()
            resolved = try await database.resolveDatabase(logger: logger)
        } catch {
            exitWithMessage(error)
        }
        do {
            // The service listens at once; it migrates (unless told not to) and opens the API once the database
            // answers, trying again with backoff while it does not (Startup.swift).
            let migrate = !(noMigrate || database.environment["SPOR_NO_MIGRATE"] == "1")
            var configuration = AppConfiguration(
                host: listenHost, port: listenPort, database: resolved.application, workerDatabase: resolved.worker,
                reportingDatabase: reporting, migrations: migrations, maximumDatabaseConnections: pool,
                sessionLifetime: .seconds(hours * 3600), mail: mailConfiguration)
            configuration.startup = .waitForDatabase(migrateWith: migrate ? resolved.owner : nil)
            configuration.connectionWait = .milliseconds(Int(wait * 1000))
            configuration.maximumRequestsInFlight = inFlight
            configuration.maximumConnectionsPerOrganisation = perOrganisation
            configuration.preparedStatements = prepared
            let app = try buildApplication(configuration, logger: logger)
            if shutdownSeconds > 0 {
                // Past the deadline nothing graceful is left to wait for: the calls in flight have been answered or
                // given up, and every committed write is in PostgreSQL. The embedded cluster is stopped (fast
                // shutdown, data safe) so that the next start finds it clean.
                ShutdownNotice.shared.limitShutdown(to: .milliseconds(Int(shutdownSeconds * 1000))) { [resolved] in
                    logger.error(
                        "the graceful shutdown did not finish in time: exiting",
                        metadata: ["shutdown-timeout-seconds": "\(shutdownSeconds)"])
                    resolved.stopEmbeddedNow()
                    exitAtOnce(1)
                }
            }
            ShutdownNotice.shared.watch()
            try await app.runService()
        } catch {
            await resolved.stopEmbedded(logger: logger)
            exitWithMessage(error)
        }
        await resolved.stopEmbedded(logger: logger)
    }
}
