import AccessDomain
import Foundation
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle

/// The store's handle on PostgreSQL: runs each command in one transaction as a database role (the application
/// role unless told otherwise), with the acting account set for row-level security, and retries serialization
/// failures and deadlocks.
public struct Database: Sendable {
    /// The connection pool. Only AccessStore and the test support reach it: everything else goes through commands.
    package let client: PostgresClient
    public let logger: Logger
    /// The role each transaction switches to (`SET LOCAL ROLE`); nil keeps the login's own role (the owner's
    /// administrator commands).
    public let role: String?
    /// Attempts per command when PostgreSQL reports a serialization failure or deadlock.
    public var maximumAttempts: Int = 5
    /// Tests only: roll back instead of committing (after firing the deferred rule triggers).
    package var dryRun: Bool = false
    /// How long a call waits for a free connection of the pool (all busy, or PostgreSQL away and the pool
    /// reconnecting) before it gives up with `StoreError.unavailable`: a bounded wait, never a hang.
    public var connectionWait: Duration = .seconds(5)
    /// How many commands of one organisation may hold a connection at once (nil: no limit); the others wait for a
    /// slot, holding nothing, for at most `connectionWait` (`TenantAdmission`).
    public var admission: TenantAdmission?
    /// Whether the statements of `PreparedSQL` types are prepared once per connection (named statements, so that
    /// PostgreSQL parses and plans them once, not on every call). Off behind a pooler that does not keep named
    /// statements across transactions (pgbouncer in transaction mode before 1.21); they are then sent as any other.
    public var preparedStatements = true

    public init(client: PostgresClient, logger: Logger, role: String? = DatabaseRole.application) {
        self.client = client
        self.logger = logger
        self.role = role
    }

    /// A pool of up to `maximumConnections` to `url`; it connects once its `service` runs.
    public static func connect(
        to url: DatabaseURL, logger: Logger, maximumConnections: Int = 20, role: String = DatabaseRole.application
    ) throws -> Database {
        Database(client: try url.makeClient(logger: logger, maximumConnections: maximumConnections), logger: logger, role: role)
    }

    /// The pool as a service of the application: it runs while the service runs and closes its connections on shutdown.
    public var service: any Service { client }

    /// Runs `body` in a transaction with nobody acting (sign-in, registration, public reads, background work).
    package func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await run(caller: nil) { connection, _ in try await body(connection) }
    }

    /// Runs `body` in a transaction acting as the account of `caller`'s session: the first statement authenticates
    /// the token in the database (`spor_authenticate`), which answers with the account; an unknown, expired or
    /// signed-out token is `not-authenticated` before anything else runs.
    package func transaction<T: Sendable>(
        as caller: any Caller, _ body: @escaping @Sendable (PostgresConnection, AccountID) async throws -> T
    ) async throws -> T {
        try await run(caller: caller) { connection, actor in
            guard let actor else { throw Refusal(.notAuthenticated, .r13, "Sign in first.") }
            return try await body(connection, actor)
        }
    }

    /// Runs `body` acting as `caller` when there is one, as nobody otherwise.
    package func transaction<T: Sendable>(
        optionallyAs caller: (any Caller)?, _ body: @escaping @Sendable (PostgresConnection, AccountID?) async throws -> T
    ) async throws -> T {
        try await run(caller: caller, body)
    }

    /// Runs one read on its own, in the implicit transaction of that statement: one round trip. For the facts and
    /// read functions, which authenticate the caller's token themselves and are SECURITY DEFINER, so they run as
    /// their owner whatever the login (no role switch is needed, or made). Returns the first row. Serialization
    /// failures and deadlocks are retried as in `transaction`; in dry-run mode the statement runs in a transaction
    /// that is rolled back.
    ///
    /// Not for writes: a deferred rule trigger (R4, R15, R16) refuses at commit, and the commit of an implicit
    /// transaction comes after the statement's result, where PostgresNIO does not report its error (the rows arrive,
    /// the transaction is rolled back, and nobody is told). Commands go through `command`.
    package func call(_ query: PostgresQuery) async throws -> PostgresRow? {
        try await rows(query).first
    }

    /// Runs one command function (`SELECT * FROM spor_…(…)`) as one statement, with the deferred rule checks (R4,
    /// R15, R16) run inside it: the statement becomes
    /// `SELECT * FROM (<query>) AS command WHERE spor_check_deferred_rules()` (0029), so a refusal at what would
    /// have been COMMIT is an error of the statement, reported like any other, and no lock outlives the statement.
    /// Returns the first row.
    ///
    /// `organisation`: the organisation whose lock the command takes, when it takes one; the command then runs under
    /// `admission`'s limit for it, so that calls queued on one organisation's lock cannot take the whole pool.
    package func command(_ query: PostgresQuery, organisation: OrganisationID? = nil) async throws -> PostgresRow? {
        try await commandRows(query, organisation: organisation).first
    }

    /// Like `command`, every row (a command deciding several things at once).
    package func commandRows(_ query: PostgresQuery, organisation: OrganisationID? = nil) async throws -> [PostgresRow] {
        var checked = query
        checked.sql = Self.checked(query.sql)
        guard let admission, let organisation else { return try await rows(checked) }
        return try await admission.run(for: organisation.rawValue, wait: connectionWait) { try await rows(checked) }
    }

    /// A command's statement with the deferred rule checks run inside it (see `command`).
    package static func checked(_ sql: String) -> String {
        "SELECT * FROM (\(sql)) AS command WHERE spor_check_deferred_rules()"
    }

    /// `call` of a statement sent on every request+approve pair, prepared once per connection when
    /// `preparedStatements` is on.
    package func call<Text: PreparedSQL>(_ text: Text.Type, _ binds: PostgresBindings) async throws -> PostgresRow? {
        try await rows(text, binds).first
    }

    /// `command` of a prepared statement: `Text.sql` is the command already wrapped by `checked`.
    package func command<Text: PreparedSQL>(
        _ text: Text.Type, _ binds: PostgresBindings, organisation: OrganisationID?
    ) async throws -> PostgresRow? {
        guard let admission, let organisation else { return try await rows(text, binds).first }
        return try await admission.run(for: organisation.rawValue, wait: connectionWait) { try await rows(text, binds).first }
    }

    private func rows<Text: PreparedSQL>(_ text: Text.Type, _ binds: PostgresBindings) async throws -> [PostgresRow] {
        guard preparedStatements, !dryRun else { return try await rows(PostgresQuery(unsafeSQL: Text.sql, binds: binds)) }
        return try await retrying {
            try await withConnection { connection in
                var rows: [PostgresRow] = []
                for try await row in try await connection.execute(Prepared<Text>(binds: binds), logger: logger) { rows.append(row) }
                return rows
            }
        }
    }

    /// Like `call`, every row (a read function's page).
    package func rows(_ query: PostgresQuery) async throws -> [PostgresRow] {
        @Sendable func collect(_ connection: PostgresConnection) async throws -> [PostgresRow] {
            var rows: [PostgresRow] = []
            for try await row in try await connection.query(query, logger: logger) { rows.append(row) }
            return rows
        }
        if dryRun { return try await transaction(collect) }
        return try await retrying { try await withConnection(collect) }
    }

    private func run<T: Sendable>(
        caller: (any Caller)?, _ body: @escaping @Sendable (PostgresConnection, AccountID?) async throws -> T
    ) async throws -> T {
        try await retrying {
            try await withConnection { connection in
                try await Self.transaction(on: connection, role: role, caller: caller, dryRun: dryRun, logger: logger, body)
            }
        }
    }

    /// `client.withConnection`, waiting at most `connectionWait` for the connection, and watched for the connection
    /// being lost under the call (ConnectionWatch). Once a connection is leased the body runs to its end (a statement
    /// is never abandoned half-way: its answer decides what the client is told), unless PostgreSQL closed the
    /// connection; when the wait runs out first, the lease request is cancelled and the body never runs.
    private func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await ConnectionWatch.shared.run(on: client, wait: connectionWait, logger: logger, body)
    }

    /// Runs `work`, again (up to `maximumAttempts`) when PostgreSQL reports a serialization failure or deadlock;
    /// errors come out mapped (`StoreErrors.map`).
    private func retrying<T: Sendable>(_ work: () async throws -> T) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await work()
            } catch {
                let mapped = StoreErrors.map(error)
                if case StoreError.retryable = mapped, attempt < maximumAttempts {
                    attempt += 1
                    logger.debug("retrying after a serialization failure", metadata: ["attempt": "\(attempt)"])
                    try await Task.sleep(for: .milliseconds(Int.random(in: 1...(10 * attempt))))
                    continue
                }
                throw mapped
            }
        }
    }

    /// The one way AccessStore runs a transaction: PostgresNIO's `withTransaction` on `connection`, first switching
    /// to `role` and authenticating `caller` in the same statement; errors come out unwrapped and mapped
    /// (`StoreErrors.map`).
    package static func transaction<T: Sendable>(
        on connection: PostgresConnection, role: String?, caller: (any Caller)?, dryRun: Bool = false, logger: Logger,
        _ body: (PostgresConnection, AccountID?) async throws -> T
    ) async throws -> T {
        do {
            return try await connection.withTransaction(logger: logger) { connection in
                var actor: AccountID?
                switch (role, caller) {
                case (let role?, let caller?):
                    let rows = try await connection.query(
                        "SELECT set_config('role', \(role), true), spor_authenticate(\(caller.bearerToken))", logger: logger)
                    for try await (_, account) in rows.decode((String, UUID).self) { actor = AccountID(account) }
                case (let role?, nil):
                    try await connection.query("SELECT set_config('role', \(role), true)", logger: logger)
                case (nil, let caller?):
                    actor = try await connection.first(
                        "SELECT spor_authenticate(\(caller.bearerToken))", as: UUID.self, logger: logger
                    ).map(AccountID.init)
                case (nil, nil):
                    break
                }
                let value = try await body(connection, actor)
                if dryRun {
                    try await connection.query("SET CONSTRAINTS ALL IMMEDIATE", logger: logger)
                    throw DryRun(value: value)
                }
                return value
            }
        } catch {
            if let transaction = error as? PostgresTransactionError, let dry = transaction.closureError as? DryRun<T> {
                return dry.value
            }
            throw StoreErrors.map(error)
        }
    }

    /// Thrown to roll a dry-run transaction back, carrying the value the body returned.
    private struct DryRun<T: Sendable>: Error { let value: T }

    /// Whether the database answers and every migration of `migrations` is applied unchanged, within `timeout`.
    public func readiness(of migrations: MigrationSet, timeout: Duration = .seconds(3)) async -> Readiness {
        let runner = MigrationRunner(migrations: migrations, logger: logger)
        do {
            let problem = try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask { try await runner.problem(client: client) }
                group.addTask {
                    try await Task.sleep(for: timeout)
                    throw ReadinessTimeout()
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            return problem.map(Readiness.migrationsNotCurrent) ?? .ready
        } catch is ReadinessTimeout {
            return .unreachable("no answer within \(timeout.components.seconds) seconds")
        } catch {
            return .unreachable(StoreErrors.describe(error))
        }
    }

    private struct ReadinessTimeout: Error {}
}

/// What `Database.readiness` found.
public enum Readiness: Sendable, Equatable {
    case ready
    /// The database answers, but migrations are pending or changed (the text says which).
    case migrationsNotCurrent(String)
    /// The database did not answer (the text says why).
    case unreachable(String)
}

/// Errors of the store that are not rule refusals.
public enum StoreError: Error, Equatable, CustomStringConvertible {
    /// A rule the database enforces refused the change with a code the Swift policy does not produce
    /// (the Swift half missed something, or someone wrote straight to the database).
    case ruleViolation(code: String, rule: String, message: String)
    /// A constraint refused the data (column check, foreign key).
    case constraintViolation(constraint: String, message: String)
    /// Serialization failure or deadlock: the command may be retried.
    case retryable
    /// PostgreSQL cannot be reached or is going away (connection refused or lost, shutting down, starting up, too
    /// many connections), no pooled connection became free in time, or a lock or statement ran out of time: nothing
    /// was changed that the client was told of, and the call may be tried again in a moment (503).
    case unavailable(String)
    /// Any other database error, with PostgreSQL's own words (PSQLError hides them from `description`).
    case database(sqlState: String, message: String)

    public var description: String {
        switch self {
        case .ruleViolation(let code, let rule, let message): "\(rule) \(code): \(message)"
        case .constraintViolation(let constraint, let message): "\(constraint): \(message)"
        case .retryable: "serialization failure"
        case .unavailable(let reason): "database unavailable: \(reason)"
        case .database(let state, let message): "PostgreSQL \(state): \(message)"
        }
    }
}

/// One place that turns PostgreSQL errors into the typed refusals the Swift policy returns.
public enum StoreErrors {
    public static func map(_ error: any Error) -> any Error {
        if let transaction = error as? PostgresTransactionError {
            return map(transaction.closureError ?? transaction.commitError ?? transaction.beginError ?? error)
        }
        if let reason = unavailability(error) { return StoreError.unavailable(reason) }
        guard let psql = error as? PSQLError, let state = psql.serverInfo?[.sqlState] else { return error }
        let message = psql.serverInfo?[.message] ?? ""
        if state.hasPrefix("SP") {
            let code = psql.serverInfo?[.detail] ?? "unknown"
            let rule = psql.serverInfo?[.hint] ?? "R" + String(Int(state.dropFirst(2)) ?? 0)
            if let refusalCode = RefusalCode(rawValue: code), let ruleID = RuleID(rawValue: rule) {
                return Refusal(refusalCode, ruleID, Self.humanMessage(message, code: code))
            }
            return StoreError.ruleViolation(code: code, rule: rule, message: message)
        }
        let constraint = psql.serverInfo?[.constraintName] ?? ""
        switch (state, constraint) {
        case ("40001", _), ("40P01", _):
            return StoreError.retryable
        case ("23505", "r7_one_pending_request"):
            return Refusal(.duplicateRequest, .r7, "A request for this role is already pending.")
        case ("23505", "r7_one_active_assignment"):
            return Refusal(.alreadyHeld, .r7, "The role is already held.")
        case ("23505", "r11_one_first_super_user"):
            return Refusal(.delegatedToOrganisation, .r11, "The organisation already has its first super user.")
        case ("23505", "r2_accounts_email_unique"):
            return Refusal(.accountExists, .r2, "An account with this e-mail exists already: sign in with it.")
        case ("23503", let name) where name.contains("organisation_id"):
            return Refusal(.unknownOrganisation, .r6, "The organisation is not in OMS.")
        case (let state, let name) where state.hasPrefix("23"):
            return StoreError.constraintViolation(constraint: name, message: message)
        default:
            return StoreError.database(sqlState: state, message: message)
        }
    }

    /// Why `error` means the database is away or out of time, or nil when it means something else. Connection
    /// errors (refused, reset, closed by the server), PostgreSQL going down or starting up (57P01–57P03), too many
    /// connections (53300), connection exceptions (class 08), a lock wait past `lock_timeout` (55P03) and a statement
    /// past `statement_timeout` (57014).
    public static func unavailability(_ error: any Error) -> String? {
        if case StoreError.unavailable(let reason) = error { return reason }
        if let transaction = error as? PostgresTransactionError {
            return (transaction.closureError ?? transaction.beginError ?? transaction.commitError).flatMap(unavailability)
        }
        if let psql = error as? PSQLError {
            if let state = psql.serverInfo?[.sqlState] {
                let message = psql.serverInfo?[.message] ?? state
                switch state {
                case "57P01", "57P02", "57P03", "53300", "55P03", "57014": return message
                case let state where state.hasPrefix("08"): return message
                default: return nil
                }
            }
            switch psql.code {
            case .connectionError, .serverClosedConnection, .uncleanShutdown, .poolClosed, .clientClosedConnection:
                return psql.underlying.map { "\($0)" } ?? "the connection to PostgreSQL was lost"
            default: return nil
            }
        }
        if error is ChannelError || error is IOError { return "\(error)" }
        return nil
    }

    /// An error as an operator reads it: PostgreSQL's own message and detail (PSQLError's description hides them).
    public static func describe(_ error: any Error) -> String {
        var error = error
        if let transaction = error as? PostgresTransactionError {
            error = transaction.closureError ?? transaction.beginError ?? transaction.commitError ?? error
        }
        if let psql = error as? PSQLError {
            guard let message = psql.serverInfo?[.message] else {
                // A connection-level error: what NIO said (refused, reset, timed out), not just the code's name.
                return psql.underlying.map { "\(psql.code): \($0)" } ?? "\(psql.code)"
            }
            return message + (psql.serverInfo?[.detail].map { " (\($0))" } ?? "")
        }
        return "\(error)"
    }

    /// "code: message" as raised by spor_refuse → the message with a capital letter and a full stop.
    static func humanMessage(_ message: String, code: String) -> String {
        var text = message.hasPrefix(code + ": ") ? String(message.dropFirst(code.count + 2)) : message
        if let first = text.first { text = first.uppercased() + text.dropFirst() }
        return text.hasSuffix(".") ? text : text + "."
    }
}

extension PostgresConnection {
    /// Runs a query and decodes every row.
    package func all<each T: PostgresDecodable>(
        _ query: PostgresQuery, as types: (repeat each T).Type, logger: Logger
    ) async throws -> [(repeat each T)] {
        var rows: [(repeat each T)] = []
        for try await row in try await self.query(query, logger: logger).decode((repeat each T).self) {
            rows.append(row)
        }
        return rows
    }

    /// Runs a query and decodes the first row, if any.
    package func first<each T: PostgresDecodable>(
        _ query: PostgresQuery, as types: (repeat each T).Type, logger: Logger
    ) async throws -> (repeat each T)? {
        for try await row in try await self.query(query, logger: logger).decode((repeat each T).self) {
            return row
        }
        return nil
    }
}

/// The text of a statement the store sends on every request+approve pair (issue 10: planning is not paid per call).
/// PostgresNIO prepares it on a connection the first time it runs there, as a named statement named after the type.
package protocol PreparedSQL: Sendable {
    static var sql: String { get }
}

/// A `PreparedSQL` as PostgresNIO's prepared statement, answering its rows as they come.
struct Prepared<Text: PreparedSQL>: PostgresPreparedStatement {
    typealias Row = PostgresRow
    static var sql: String { Text.sql }
    static var name: String { "spor." + String(describing: Text.self) }
    let binds: PostgresBindings
    func makeBindings() -> PostgresBindings { binds }
    func decodeRow(_ row: PostgresRow) -> PostgresRow { row }
}
