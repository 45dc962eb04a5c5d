import AccessDomain
import Crypto
import Foundation
import HummingbirdBcrypt
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

/// Sessions: sign-in with bcrypt, bearer tokens stored as SHA-256, expiry, sign-out.
public struct SessionStore: Sendable {
    public let database: Database
    public let lifetime: Duration
    /// A valid bcrypt hash to verify against when the e-mail is unknown, so both failures take as long.
    static let decoyHash = Bcrypt.hash("decoy password for timing", cost: 12)

    public init(database: Database, lifetime: Duration = .seconds(8 * 3600)) {
        self.database = database
        self.lifetime = lifetime
    }

    var logger: Logger { database.logger }

    public func signIn(email: String, password: String) async throws -> SignedIn {
        // One look-up: the account, its password hash, and whether sign-in is throttled.
        let candidate = try await database.transaction(actor: nil) { connection in
            try await connection.first(
                """
                SELECT account_id, status, password_hash, spor_login_blocked_until(account_id)
                FROM spor_login_candidate(\(email))
                """,
                as: (UUID, String, String, Date?).self, logger: logger)
        }
        guard let (id, status, hash, blockedUntil) = candidate else {
            _ = await PasswordHashing.verify(password, hash: Self.decoyHash)
            throw SignInFailure.invalidCredentials
        }
        let account = AccountID(id)
        if let until = blockedUntil { throw SignInFailure.tooManyAttempts(until: until) }
        guard await PasswordHashing.verify(password, hash: hash) else {
            try await database.transaction(actor: nil) { connection in
                try await connection.query("SELECT spor_record_login_failure(\(id))", logger: logger)
            }
            throw SignInFailure.invalidCredentials
        }
        switch try stored(status, in: "accounts") as AccountStatus {
        case .pending: throw SignInFailure.accountPending
        case .active: break
        case .disabled: throw SignInFailure.accountDisabled
        }
        let token = AccountStore.randomToken()
        let seconds = Double(lifetime.components.seconds)
        let expiresAt = try await database.transaction(actor: account) { connection in
            guard
                let expiresAt = try await connection.first(
                    """
                    INSERT INTO sessions (token_hash, account_id, expires_at)
                    VALUES (\(AccountStore.sha256(token)), \(account.rawValue), now() + make_interval(secs => \(seconds)))
                    RETURNING expires_at
                    """, as: Date.self, logger: logger)
            else { throw StoreError.ruleViolation(code: "insert-failed", rule: "R13", message: "the session was not stored") }
            return expiresAt
        }
        return SignedIn(token: token, expiresAt: expiresAt, profile: try await profile(of: account))
    }

    /// The account of a live session, or nil.
    public func authenticate(token: String) async throws -> AccountID? {
        try await database.transaction(actor: nil) { connection in
            let found: UUID?? = try await connection.first(
                "SELECT spor_session_account(\(AccountStore.sha256(token)))", as: UUID?.self, logger: logger)
            guard let row = found, let id = row else { return nil }
            return AccountID(id)
        }
    }

    public func signOut(actor: AccountID, token: String) async throws {
        try await database.transaction(actor: actor) { connection in
            try await connection.query(
                "UPDATE sessions SET revoked_at = now() WHERE token_hash = \(AccountStore.sha256(token)) AND revoked_at IS NULL",
                logger: logger)
        }
    }

    public func profile(of account: AccountID) async throws -> Profile {
        try await database.transaction(actor: account) { connection in
            guard
                let (email, name, status, questions) = try await connection.first(
                    """
                    SELECT email, display_name, status,
                           security_questions_waived OR EXISTS (SELECT 1 FROM security_answers s WHERE s.account_id = a.id)
                    FROM accounts a WHERE id = \(account.rawValue)
                    """, as: (String, String, String, Bool).self, logger: logger)
            else { throw Refusal(.notFound, .r13, "Account not found.") }
            let staff = try await AccessRequestStore.staffRoles(of: account, connection, logger).sorted { $0.rawValue < $1.rawValue }
            let assignments = try await connection.all(
                """
                SELECT \(unescaped: RoleAssignment.columns) FROM role_assignments
                WHERE account_id = \(account.rawValue) AND revoked_at IS NULL ORDER BY id
                """, as: RoleAssignment.Row.self, logger: logger
            ).map(RoleAssignment.init(row:))
            return Profile(
                account: account, email: email, displayName: name, status: try stored(status, in: "accounts"), securityQuestionsSet: questions,
                staffRoles: staff, assignments: assignments)
        }
    }
}
