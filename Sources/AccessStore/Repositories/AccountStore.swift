import AccessDomain
import Crypto
import Foundation
import HummingbirdBcrypt
import Logging
import PostgresNIO

/// Accounts: self-registration with e-mail verification (R2) and security questions (R3).
public struct AccountStore: Sendable {
    public let database: Database
    /// bcrypt cost for passwords and security answers (tests lower it; production keeps 12).
    public let bcryptCost: UInt8
    /// How long a verification token stays valid.
    public let verificationLifetime: Duration

    public init(database: Database, bcryptCost: UInt8 = 12, verificationLifetime: Duration = .seconds(7 * 24 * 3600)) {
        self.database = database
        self.bcryptCost = bcryptCost
        self.verificationLifetime = verificationLifetime
    }

    var logger: Logger { database.logger }

    /// A registered, not yet verified account and the token e-mailed to verify it.
    public struct Registration: Sendable {
        public let account: AccountID
        public let verificationToken: String
    }

    /// Self-registration (R2): a pending account and a verification e-mail in the outbox. An e-mail that already has
    /// an account (in any letter case) is refused with `account-exists`: the existing account is to be used.
    public func register(email: String, displayName: String, password: String) async throws -> Registration {
        let passwordHash = Bcrypt.hash(password, cost: bcryptCost)
        let token = Self.randomToken()
        let account = AccountID(UUID())
        let lifetime = Double(verificationLifetime.components.seconds)
        return try await database.transaction(actor: nil) { connection in
            let existing: UUID?? = try await connection.first("SELECT spor_account_for_email(\(email))", as: UUID?.self, logger: logger)
            if case .some(.some) = existing {
                throw Refusal(.accountExists, .r2, "An account with this e-mail exists already: sign in with your existing EMA account.")
            }
            // The new account acts as itself while it registers.
            try await connection.query("SELECT set_config('app.account_id', \(account.rawValue), true)", logger: logger)
            try await connection.query(
                "INSERT INTO accounts (id, email, display_name) VALUES (\(account.uuid), \(email), \(displayName))", logger: logger)
            try await connection.query(
                "INSERT INTO credentials (account_id, password_hash) VALUES (\(account.uuid), \(passwordHash))", logger: logger)
            try await connection.query(
                """
                INSERT INTO verification_tokens (token_hash, account_id, expires_at)
                VALUES (\(Self.sha256(token)), \(account.uuid), now() + make_interval(secs => \(lifetime)))
                """, logger: logger)
            try await Journal.audit(
                connection, actor: account, organisation: nil, action: "account.registered", subjectType: "account",
                subjectID: account.rawValue, after: ["email": email, "status": "pending"], logger: logger)
            try await Journal.notify(
                connection, organisation: nil, recipient: account, email: email, template: "verify-email",
                subject: "Confirm your e-mail address for the EMA Account Management portal",
                body: "Welcome, \(displayName). Confirm your e-mail address with this verification token: \(token)",
                subjectType: "account", subjectID: account.rawValue, logger: logger)
            return Registration(account: account, verificationToken: token)
        }
    }

    /// Activates the account a verification token belongs to (R2). The database does it (`spor_verify_account`):
    /// the application role cannot change an account's status itself.
    @discardableResult
    public func verify(token: String) async throws -> AccountID {
        try await database.transaction(actor: nil) { connection in
            let found: UUID?? = try await connection.first(
                "SELECT spor_verify_account(\(Self.sha256(token)))", as: UUID?.self, logger: logger)
            guard let row = found, let id = row else {
                throw Refusal(.validationFailed, .r2, "This verification token is unknown, used or expired.", field: "token")
            }
            return AccountID(id)
        }
    }

    /// Sets (or replaces) the answers to three different security questions (R3); answers are bcrypt-hashed.
    public func setSecurityAnswers(actor: AccountID, answers: [(question: String, answer: String)]) async throws {
        let questions = Set(answers.map { $0.question.trimmingCharacters(in: .whitespacesAndNewlines).lowercased() })
        guard answers.count == 3, questions.count == 3, !questions.contains("") else {
            throw Refusal(.validationFailed, .r3, "Answer three different security questions.", field: "answers")
        }
        guard answers.allSatisfy({ !$0.answer.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty }) else {
            throw Refusal(.validationFailed, .r3, "Security answers cannot be empty.", field: "answers")
        }
        let hashed = answers.map { (question: $0.question, hash: Bcrypt.hash($0.answer.lowercased(), cost: bcryptCost)) }
        try await database.transaction(actor: actor) { connection in
            try await connection.query("DELETE FROM security_answers WHERE account_id = \(actor.uuid)", logger: logger)
            for (question, hash) in hashed {
                try await connection.query(
                    "INSERT INTO security_answers (account_id, question, answer_hash) VALUES (\(actor.uuid), \(question), \(hash))",
                    logger: logger)
            }
            try await Journal.audit(
                connection, actor: actor, organisation: nil, action: "account.security-questions-set", subjectType: "account",
                subjectID: actor.rawValue, logger: logger)
        }
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// SHA-256 of a token, as PostgreSQL bytea.
    static func sha256(_ token: String) -> ByteBuffer { ByteBuffer(bytes: SHA256.hash(data: Data(token.utf8))) }
}
