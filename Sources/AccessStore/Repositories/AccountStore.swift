import AccessDomain
import Crypto
import Foundation
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
        let passwordHash = try await PasswordHashing.hash(password, cost: bcryptCost)
        let token = Self.randomToken()
        let account = AccountID(UUID())
        let lifetime = Double(verificationLifetime.components.seconds)
        return try await database.transaction(actor: nil) { connection in
            let existing: UUID?? = try await connection.first("SELECT spor_account_for_email(\(email))", as: UUID?.self, logger: logger)
            if case .some(.some) = existing {
                throw Refusal(.accountExists, .r2, "An account with this e-mail exists already: sign in with your existing EMA account.")
            }
            // The new account acts as itself while it registers.
            try await connection.query("SELECT set_config('app.account_id', \(account.description), true)", logger: logger)
            try await connection.query(
                "INSERT INTO accounts (id, email, display_name) VALUES (\(account.rawValue), \(email), \(displayName))", logger: logger)
            try await connection.query(
                "INSERT INTO credentials (account_id, password_hash) VALUES (\(account.rawValue), \(passwordHash))", logger: logger)
            try await connection.query(
                """
                INSERT INTO verification_tokens (token_hash, account_id, expires_at)
                VALUES (\(Self.sha256(token)), \(account.rawValue), now() + make_interval(secs => \(lifetime)))
                """, logger: logger)
            try await Journal.audit(
                connection,
                actor: account,
                organisation: nil,
                action: .accountRegistered,
                subject: .init(type: .account, id: account.description),
                after: ["email": email, "status": "pending"],
                logger: logger)
            try await Journal.notify(
                connection,
                organisation: nil,
                recipient: account,
                email: email,
                Journal.Message(
                    template: .verifyEmail, subject: "Confirm your e-mail address for the EMA Account Management portal",
                    body: "Welcome, \(displayName). Confirm your e-mail address with this verification token: \(token)"),
                about: .init(type: .account, id: account.description),
                logger: logger)
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

    /// Sets (or replaces) the answers to three different security questions (R3, `ApprovalPolicy.validate`);
    /// answers are bcrypt-hashed.
    public func setSecurityAnswers(actor: AccountID, answers: [SecurityAnswer]) async throws {
        var hashes: [(question: String, hash: String)] = []
        for answer in try ApprovalPolicy.validate(securityAnswers: answers).get() {
            hashes.append((answer.question, try await PasswordHashing.hash(answer.answer, cost: bcryptCost)))
        }
        let hashed = hashes
        try await database.transaction(actor: actor) { connection in
            try await connection.query("DELETE FROM security_answers WHERE account_id = \(actor.rawValue)", logger: logger)
            for (question, hash) in hashed {
                try await connection.query(
                    "INSERT INTO security_answers (account_id, question, answer_hash) VALUES (\(actor.rawValue), \(question), \(hash))",
                    logger: logger)
            }
            try await Journal.audit(
                connection,
                actor: actor,
                organisation: nil,
                action: .securityQuestionsSet,
                subject: .init(type: .account, id: actor.description),
                logger: logger)
        }
    }

    static func randomToken() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0...255, using: &generator)) }.joined()
    }

    /// SHA-256 of a token, as PostgreSQL bytea.
    static func sha256(_ token: String) -> ByteBuffer { ByteBuffer(bytes: SHA256.hash(data: Data(token.utf8))) }
}
