import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// The store's handle on PostgreSQL: runs each command in one transaction as the application role, with the
/// acting account set for row-level security, and retries serialization failures and deadlocks.
public struct Database: Sendable {
    public let client: PostgresClient
    public let logger: Logger
    /// Attempts per command when PostgreSQL reports a serialization failure or deadlock.
    public var maximumAttempts: Int = 5
    /// Tests only: roll back instead of committing (after firing the deferred rule triggers).
    public var dryRun: Bool = false

    public init(client: PostgresClient, logger: Logger) {
        self.client = client
        self.logger = logger
    }

    /// Runs `body` in a transaction acting as `actor` (nil: nobody, e.g. sign-in or registration before the account
    /// exists). The actor and the role are transaction-local settings, so nothing leaks through the pool.
    public func transaction<T: Sendable>(
        actor: AccountID?, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        var attempt = 1
        while true {
            do {
                return try await client.withConnection { connection in
                    try await self.run(on: connection, actor: actor, body)
                }
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

    private func run<T: Sendable>(
        on connection: PostgresConnection, actor: AccountID?, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        try await connection.query("BEGIN", logger: logger)
        do {
            try await connection.query(
                "SELECT set_config('role', 'spor_app', true), set_config('app.account_id', \(actor?.rawValue ?? ""), true)",
                logger: logger)
            let value = try await body(connection)
            if dryRun {
                try await connection.query("SET CONSTRAINTS ALL IMMEDIATE", logger: logger)
                try await connection.query("ROLLBACK", logger: logger)
            } else {
                try await connection.query("COMMIT", logger: logger)
            }
            return value
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }
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
    /// Any other database error, with PostgreSQL's own words (PSQLError hides them from `description`).
    case database(sqlState: String, message: String)

    public var description: String {
        switch self {
        case .ruleViolation(let code, let rule, let message): "\(rule) \(code): \(message)"
        case .constraintViolation(let constraint, let message): "\(constraint): \(message)"
        case .retryable: "serialization failure"
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

    /// "code: message" as raised by spor_refuse → the message with a capital letter and a full stop.
    static func humanMessage(_ message: String, code: String) -> String {
        var text = message.hasPrefix(code + ": ") ? String(message.dropFirst(code.count + 2)) : message
        if let first = text.first { text = first.uppercased() + text.dropFirst() }
        return text.hasSuffix(".") ? text : text + "."
    }
}

extension PostgresConnection {
    /// Runs a query and decodes every row.
    public func all<each T: PostgresDecodable>(
        _ query: PostgresQuery, as types: (repeat each T).Type, logger: Logger
    ) async throws -> [(repeat each T)] {
        var rows: [(repeat each T)] = []
        for try await row in try await self.query(query, logger: logger).decode((repeat each T).self) {
            rows.append(row)
        }
        return rows
    }

    /// Runs a query and decodes the first row, if any.
    public func first<each T: PostgresDecodable>(
        _ query: PostgresQuery, as types: (repeat each T).Type, logger: Logger
    ) async throws -> (repeat each T)? {
        for try await row in try await self.query(query, logger: logger).decode((repeat each T).self) {
            return row
        }
        return nil
    }
}

extension AccountID {
    /// The account id as PostgreSQL's uuid.
    var uuid: UUID { UUID(uuidString: rawValue) ?? UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)) }
    init(_ uuid: UUID) { self.init(uuid.uuidString.lowercased()) }
}
