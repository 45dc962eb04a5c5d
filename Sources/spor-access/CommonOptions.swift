import AccessStore
import ArgumentParser
import EmbeddedPostgres
import Foundation
import Logging

/// Options shared by the commands that reach the database. Each flag falls back to an environment variable.
struct DatabaseOptions: ParsableArguments {
    @Option(
        name: .customLong("database-url"),
        help: "PostgreSQL URL of the owner role (runs migrations). Env: DATABASE_URL. Without it, an embedded cluster is started in --data-dir.")
    var databaseURL: String?

    @Option(
        name: .customLong("app-database-url"),
        help:
            "PostgreSQL URL of the application role the service connects as. Env: APP_DATABASE_URL. Default: the owner's URL, acting as spor_app in each transaction."
    )
    var appDatabaseURL: String?

    @Option(
        name: .customLong("worker-database-url"),
        help:
            "PostgreSQL URL background work (outbox, expiry) connects with, acting as spor_worker. Env: WORKER_DATABASE_URL. Default: the embedded cluster's spor_worker login; with --database-url, the owner's URL acting as spor_worker in each transaction."
    )
    var workerDatabaseURL: String?

    @Option(name: .customLong("data-dir"), help: "Folder of the embedded PostgreSQL cluster. Env: SPOR_DATA_DIR. Default: .data/postgres")
    var dataDirectory: String?

    @Option(
        name: .customLong("postgres-user"),
        help: "Unprivileged user the embedded cluster runs as when started by root. Env: SPOR_POSTGRES_USER. Default: postgres")
    var postgresUser: String?

    @Option(
        name: .customLong("postgres-bin"),
        help: "Folder holding initdb, pg_ctl and postgres. Env: SPOR_POSTGRES_BIN. Default: PATH, then /usr/lib/postgresql/*/bin")
    var postgresBin: String?

    @Option(name: .customLong("migrations-dir"), help: "Folder of the SQL migrations. Env: SPOR_MIGRATIONS_DIR. Default: ./SQL/migrations")
    var migrationsDirectory: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical. Env: LOG_LEVEL. Default: info")
    var logLevel: String?

    @Option(name: .customLong("log-format"), help: "text or json. Env: LOG_FORMAT. Default: text")
    var logFormat: String?

    var environment: [String: String] { ProcessInfo.processInfo.environment }

    func value(_ flag: String?, _ variable: String) -> String? {
        if let flag, !flag.isEmpty { return flag }
        if let env = environment[variable], !env.isEmpty { return env }
        return nil
    }

    func bootstrapLogging(defaultLevel: String = "info") throws -> Logger {
        let levelName = value(logLevel, "LOG_LEVEL") ?? defaultLevel
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ValidationError("log level '\(levelName)' is not one of trace, debug, info, notice, warning, error, critical")
        }
        let format = value(logFormat, "LOG_FORMAT") ?? "text"
        guard ["text", "json"].contains(format) else { throw ValidationError("log format '\(format)' is not text or json") }
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = format == "json" ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        var logger = Logger(label: "spor-access")
        logger.logLevel = level
        return logger
    }

    func migrationSet() throws -> MigrationSet {
        let directory =
            value(migrationsDirectory, "SPOR_MIGRATIONS_DIR").map { URL(fileURLWithPath: $0) }
            ?? MigrationSet.defaultDirectory(environment: environment)
        return try MigrationSet(directory: directory)
    }

    /// Where the database is: the given URLs, or an embedded cluster started (and provisioned) now.
    func resolveDatabase(logger: Logger) async throws -> ResolvedDatabase {
        if let url = value(databaseURL, "DATABASE_URL") {
            let owner = try DatabaseURL(parsing: url)
            let app = try value(appDatabaseURL, "APP_DATABASE_URL").map(DatabaseURL.init(parsing:))
            let worker = try value(workerDatabaseURL, "WORKER_DATABASE_URL").map(DatabaseURL.init(parsing:))
            return ResolvedDatabase(owner: owner, application: app ?? owner, worker: worker ?? owner, embedded: nil)
        }
        let directory = URL(fileURLWithPath: value(dataDirectory, "SPOR_DATA_DIR") ?? ".data/postgres")
        let binaries = try value(postgresBin, "SPOR_POSTGRES_BIN").map { try PostgresBinaries.locate(path: $0, installRoot: nil) }
        let cluster = try EmbeddedPostgres(
            configuration: .init(dataDirectory: directory, unprivilegedUser: value(postgresUser, "SPOR_POSTGRES_USER") ?? "postgres"),
            binaries: binaries,
            logger: logger)
        let running = try await cluster.start()
        do {
            let provisioned = try await cluster.provision(running, database: "spor_access")
            logger.info(
                "embedded PostgreSQL running",
                metadata: ["dataDirectory": "\(cluster.configuration.dataDirectory.path)", "database": "\(provisioned.owner)"])
            // A cluster another process started (a running `serve`) is used but left running.
            return ResolvedDatabase(
                owner: provisioned.owner, application: provisioned.application, worker: provisioned.worker ?? provisioned.owner,
                embedded: running.startedHere ? cluster : nil)
        } catch {
            if running.startedHere { try? await cluster.stop() }
            throw error
        }
    }
}

struct ResolvedDatabase: Sendable {
    let owner: DatabaseURL
    let application: DatabaseURL
    /// Background work's login (it switches to spor_worker per transaction).
    let worker: DatabaseURL
    let embedded: EmbeddedPostgres?

    func stopEmbedded(logger: Logger) async {
        guard let embedded else { return }
        do {
            try await embedded.stop()
            logger.info("embedded PostgreSQL stopped")
        } catch {
            logger.error("could not stop the embedded PostgreSQL", metadata: ["error": "\(error)"])
        }
    }

    /// Stops the embedded cluster without awaiting anything (when the process must end now).
    func stopEmbeddedNow() {
        embedded?.stopNow()
    }
}

/// Ends the process at once with `status`, after flushing standard output and error: no `atexit` handlers or static
/// destructors, which could wait for a lock a stuck thread holds.
func exitAtOnce(_ status: Int32) -> Never {
    fflush(nil)  // every output stream
    _exit(status)
}

/// Prints an error as one clear paragraph (no stack trace) and exits non-zero.
func exitWithMessage(_ error: any Error) -> Never {
    FileHandle.standardError.write(Data("spor-access: \(StoreErrors.describe(error))\n".utf8))
    exit(1)
}
