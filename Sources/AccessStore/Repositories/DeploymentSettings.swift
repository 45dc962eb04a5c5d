import Foundation
import Logging
import PostgresNIO

/// One column of the `settings` row: the rules' and jobs' settings of a deployment.
public enum DeploymentSetting: String, Sendable, CaseIterable {
    case unaffiliatedActivationDelay = "unaffiliated_activation_delay"
    case requestLifetime = "request_lifetime"
    case pendingReminderAfter = "pending_reminder_after"
    case grantNoticeDays = "grant_notice_days"
    case reviewIntervalMonths = "review_interval_months"
    case reviewPeriod = "review_period"
    case reviewRevokesUndecided = "review_revokes_undecided"
    case jobClockOffset = "job_clock_offset"

    /// The column's SQL type (a value is cast to it, so PostgreSQL parses it: `30 days`, `{14,3}`, `true`).
    var sqlType: String {
        switch self {
        case .unaffiliatedActivationDelay, .requestLifetime, .pendingReminderAfter, .reviewPeriod, .jobClockOffset: "interval"
        case .grantNoticeDays: "integer[]"
        case .reviewIntervalMonths: "integer"
        case .reviewRevokesUndecided: "boolean"
        }
    }

    /// What it governs, for `spor-access settings`.
    public var meaning: String {
        switch self {
        case .unaffiliatedActivationDelay: "R5: how long after its automatic approval the unaffiliated role takes effect"
        case .requestLifetime: "R18: how long a pending request lives before it expires"
        case .pendingReminderAfter: "how long an organisation request waits before its super users are reminded (once)"
        case .grantNoticeDays: "R21: days before a time-bound grant ends when its holder and super users are told"
        case .reviewIntervalMonths: "R22: months between an organisation's access reviews (1-60)"
        case .reviewPeriod: "R22: how long an access review stays open for decisions"
        case .reviewRevokesUndecided: "R22: whether items left undecided at the due date are revoked (else flagged)"
        case .jobClockOffset: "tests and rehearsals only: how far the jobs' clock runs ahead of now() (0 in production)"
        }
    }
}

/// A value the settings row refused: not of the column's type, or outside its CHECK constraint.
public struct InvalidSetting: Error, CustomStringConvertible {
    public let setting: DeploymentSetting
    public let value: String
    public let reason: String
    public var description: String { "\(setting.rawValue) = '\(value)' is refused: \(reason)" }
}

/// Reads and changes the deployment's settings (the one row of `settings`), as the owner: the application and worker
/// roles cannot write it. The next command or job round uses a new value.
public struct DeploymentSettings: Sendable {
    let database: Database
    var logger: Logger { database.logger }

    /// `ownerClient` connects as the owner role.
    public init(ownerClient: PostgresClient, logger: Logger) {
        self.database = Database(client: ownerClient, logger: logger, role: nil)
    }

    /// Every setting with its current value, as PostgreSQL prints it.
    public func all() async throws -> [(setting: DeploymentSetting, value: String)] {
        let columns = DeploymentSetting.allCases.map { "\($0.rawValue)::text" }.joined(separator: ", ")
        let values = try await database.transaction { connection in
            try await connection.first("SELECT ARRAY[\(unescaped: columns)] FROM settings", as: [String].self, logger: logger) ?? []
        }
        return Array(zip(DeploymentSetting.allCases, values)).map { (setting: $0.0, value: $0.1) }
    }

    /// Sets one setting; returns the value as stored. A value of the wrong type or outside the column's constraint is
    /// refused with `InvalidSetting`, and nothing changes.
    @discardableResult
    public func set(_ setting: DeploymentSetting, to value: String) async throws -> String {
        do {
            return try await database.transaction { connection in
                try await connection.first(
                    """
                    UPDATE settings SET \(unescaped: setting.rawValue) = \(value)::\(unescaped: setting.sqlType)
                    RETURNING \(unescaped: setting.rawValue)::text
                    """, as: String.self, logger: logger) ?? ""
            }
        } catch StoreError.database(let state, let message) where state.hasPrefix("22") {
            // Not a value of the column's type (invalid_text_representation, interval or datetime format, out of range).
            throw InvalidSetting(setting: setting, value: value, reason: message)
        } catch StoreError.constraintViolation(let constraint, let message) {
            throw InvalidSetting(setting: setting, value: value, reason: "\(message) (\(constraint))")
        }
    }
}
