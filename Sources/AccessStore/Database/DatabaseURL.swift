import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// A `postgres://user:password@host:port/database` address.
public struct DatabaseURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var username: String
    public var password: String?
    public var database: String
    /// `sslmode=require` (or `verify-full`) turns TLS on; the default is off (loopback and private networks).
    public var requireTLS: Bool

    public init(host: String, port: Int = 5432, username: String, password: String?, database: String, requireTLS: Bool = false) {
        self.host = host
        self.port = port
        self.username = username
        self.password = password
        self.database = database
        self.requireTLS = requireTLS
    }

    /// Parses `postgres://` or `postgresql://` URLs; throws a message naming what is wrong.
    public init(parsing string: String) throws {
        guard let components = URLComponents(string: string),
            let scheme = components.scheme, ["postgres", "postgresql"].contains(scheme)
        else {
            throw DatabaseURLError("DATABASE_URL must look like postgres://user:password@host:5432/database (got something else)")
        }
        guard let host = components.host, !host.isEmpty else { throw DatabaseURLError("DATABASE_URL has no host") }
        guard let user = components.user, !user.isEmpty else { throw DatabaseURLError("DATABASE_URL has no user name") }
        let database = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        guard !database.isEmpty else { throw DatabaseURLError("DATABASE_URL has no database name (…/DATABASE at the end)") }
        let sslmode = components.queryItems?.first(where: { $0.name == "sslmode" })?.value ?? "disable"
        self.init(
            host: host,
            port: components.port ?? 5432,
            username: user.removingPercentEncoding ?? user,
            password: components.password.map { $0.removingPercentEncoding ?? $0 },
            database: database.removingPercentEncoding ?? database,
            requireTLS: ["require", "verify-ca", "verify-full"].contains(sslmode)
        )
    }

    /// The same server and credentials, another database.
    public func with(database: String) -> DatabaseURL {
        var copy = self
        copy.database = database
        return copy
    }

    /// The same server, another login.
    public func with(username: String, password: String?) -> DatabaseURL {
        var copy = self
        copy.username = username
        copy.password = password
        return copy
    }

    /// The URL without its password, for logs.
    public var description: String { "postgres://\(username)@\(host):\(port)/\(database)" }

    public func clientConfiguration(maximumConnections: Int = 20) throws -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: username, password: password, database: database,
            tls: requireTLS ? .require(.makeClientConfiguration()) : .disable
        )
        configuration.options.maximumConnections = maximumConnections
        return configuration
    }

    /// A client for this URL; run it (`client.run()`) in a task or hand it to a service group.
    /// `quiet` raises the background logger to errors only: a short-lived client may lease before `run()` has
    /// started, which PostgresNIO reports as a harmless warning.
    public func makeClient(logger: Logger, maximumConnections: Int = 20, quiet: Bool = false) throws -> PostgresClient {
        var background = logger
        if quiet && background.logLevel < .error { background.logLevel = .error }
        return PostgresClient(configuration: try clientConfiguration(maximumConnections: maximumConnections), backgroundLogger: background)
    }
}

extension DatabaseURL {
    /// Runs `body` on one connection of its own, opened for it and closed afterwards. Unlike a pool's lease, a
    /// server that cannot be reached fails at once with the reason (connection refused, unknown host, wrong
    /// password, starting up): what the start-up check reports.
    public func withSingleConnection<T: Sendable>(
        logger: Logger, connectTimeout: Duration = .seconds(10), _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: username, password: password, database: database,
            tls: requireTLS ? .require(try NIOSSLContext(configuration: .makeClientConfiguration())) : .disable)
        configuration.options.connectTimeout = .init(connectTimeout)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
        do {
            let value = try await body(connection)
            try? await connection.close()
            return value
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

public struct DatabaseURLError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

extension PostgresClient {
    /// Runs `body` with this client running in the background; cancels it afterwards.
    /// (Short-lived clients: make them with `DatabaseURL.makeClient(quiet: true)` to keep start-up noise out of logs.)
    public func whileRunning<T: Sendable>(_ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
        try await withThrowingTaskGroup(of: T?.self) { group in
            group.addTask {
                await self.run()
                return nil
            }
            defer { group.cancelAll() }
            return try await body(self)
        }
    }
}
