import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// Why a sign-in failed. Unknown e-mail and wrong password are the same failure on purpose.
public enum SignInFailure: Error, Equatable {
    case invalidCredentials
    case accountPending
    case accountDisabled
    /// 5 failed sign-ins within 15 minutes: refused until `until`.
    case tooManyAttempts(until: Date)
}

/// A new session: the bearer token (shown once, stored only as SHA-256) and who it belongs to.
public struct SignedIn: Sendable {
    public let token: String
    public let expiresAt: Date
    public let profile: Profile
}

/// The signed-in account as `GET /v1/me` shows it.
public struct Profile: Sendable {
    public let account: AccountID
    public let email: String
    public let displayName: String
    public let status: AccountStatus
    public let securityQuestionsSet: Bool
    public let staffRoles: [StaffRole]
    public let assignments: [RoleAssignment]
}

/// Sessions: sign-in, sign-out and the signed-in profile. The database checks the password (bcrypt through
/// pgcrypto) and the throttle, makes the token and stores only its SHA-256 (`spor_sign_in`); the application role
/// never sees a password hash.
public struct SessionStore: Sendable {
    public let database: Database
    public let lifetime: Duration

    public init(database: Database, lifetime: Duration = .seconds(8 * 3600)) {
        self.database = database
        self.lifetime = lifetime
    }

    var logger: Logger { database.logger }

    public func signIn(email: String, password: String) async throws -> SignedIn {
        let seconds = Double(lifetime.components.seconds)
        // The outcome is returned, not thrown, inside the transaction: a failed attempt is recorded by the database
        // and must be committed to count for the throttle.
        let outcome: Result<SignedIn, SignInFailure> = try await database.transaction { connection in
            guard
                let (outcome, account, token, expiresAt, blockedUntil) = try await connection.first(
                    "SELECT outcome, account_id, token, expires_at, blocked_until FROM spor_sign_in(\(email), \(password), \(seconds))",
                    as: (String, UUID?, String?, Date?, Date?).self, logger: logger)
            else { return .failure(.invalidCredentials) }
            switch outcome {
            case "signed-in":
                guard let account, let token, let expiresAt else { return .failure(.invalidCredentials) }
                let profile = try await Self.profile(of: AccountID(account), connection, logger)
                return .success(SignedIn(token: token, expiresAt: expiresAt, profile: profile))
            case "too-many-attempts": return .failure(.tooManyAttempts(until: blockedUntil ?? Date()))
            case "account-pending": return .failure(.accountPending)
            case "account-disabled": return .failure(.accountDisabled)
            default: return .failure(.invalidCredentials)
            }
        }
        return try outcome.get()
    }

    /// Ends the caller's session.
    public func signOut(_ caller: any Caller) async throws {
        try await database.transaction(as: caller) { connection, _ in
            try await connection.query("SELECT spor_sign_out(\(caller.bearerToken))", logger: logger)
        }
    }

    /// The caller's own profile.
    public func profile(of caller: any Caller) async throws -> Profile {
        try await database.transaction(as: caller) { connection, actor in try await Self.profile(of: actor, connection, logger) }
    }

    static func profile(of account: AccountID, _ connection: PostgresConnection, _ logger: Logger) async throws -> Profile {
        guard
            let (email, name, status, questions) = try await connection.first(
                """
                SELECT email, display_name, status,
                       security_questions_waived OR EXISTS (SELECT 1 FROM security_answers s WHERE s.account_id = a.id)
                FROM accounts a WHERE id = \(account.rawValue)
                """, as: (String, String, String, Bool).self, logger: logger)
        else { throw Refusal(.notFound, .r13, "Account not found.") }
        // `account` is the transaction's actor (bound by sign-in or by the caller's token), whose roles these are.
        let staff = try await AccessRequestStore.actorStaffRoles(connection, logger).sorted { $0.rawValue < $1.rawValue }
        let assignments = try await connection.all(
            """
            SELECT \(unescaped: RoleAssignment.columns) FROM role_assignments
            WHERE account_id = \(account.rawValue) AND revoked_at IS NULL AND (ends_at IS NULL OR ends_at > spor_job_now()) ORDER BY id
            """, as: RoleAssignment.Row.self, logger: logger
        ).map(RoleAssignment.init(row:))
        return Profile(
            account: account, email: email, displayName: name, status: try stored(status, in: "accounts"), securityQuestionsSet: questions,
            staffRoles: staff, assignments: assignments)
    }
}
