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

    /// Self-registration (R2): a pending account and a verification e-mail in the outbox, made by the database
    /// (`spor_register`: the token is generated there and only e-mailed). An e-mail that already has an account
    /// (in any letter case) is refused with `account-exists`: the existing account is to be used.
    public func register(email: String, displayName: String, password: String) async throws -> AccountID {
        let passwordHash = try await PasswordHashing.hash(password, cost: bcryptCost)
        let lifetime = Double(verificationLifetime.components.seconds)
        return try await database.transaction { connection in
            guard
                let account = try await connection.first(
                    "SELECT spor_register(\(email), \(displayName), \(passwordHash), \(lifetime))", as: UUID.self, logger: logger)
            else { throw StoreError.ruleViolation(code: "insert-failed", rule: "R2", message: "the account was not stored") }
            return AccountID(account)
        }
    }

    /// Activates the account a verification token belongs to (R2). The database does it (`spor_verify_account`):
    /// the application role cannot change an account's status itself.
    @discardableResult
    public func verify(token: String) async throws -> AccountID {
        try await database.transaction { connection in
            let found: UUID?? = try await connection.first(
                "SELECT spor_verify_account(\(Self.sha256(token)))", as: UUID?.self, logger: logger)
            guard let row = found, let id = row else {
                throw Refusal(.validationFailed, .r2, "This verification token is unknown, used or expired.", field: "token")
            }
            return AccountID(id)
        }
    }

    /// Sets (or replaces) the caller's answers to three different security questions (R3, `ApprovalPolicy.validate`);
    /// answers are bcrypt-hashed here and stored by the database (`spor_set_security_answers`), audited.
    public func setSecurityAnswers(actor caller: any Caller, answers: [SecurityAnswer]) async throws {
        var questions: [String] = []
        var hashes: [String] = []
        for answer in try ApprovalPolicy.validate(securityAnswers: answers).get() {
            questions.append(answer.question)
            hashes.append(try await PasswordHashing.hash(answer.answer, cost: bcryptCost))
        }
        let (q, h) = (questions, hashes)
        try await database.transaction(as: caller) { connection, _ in
            try await connection.query("SELECT spor_set_security_answers(\(q), \(h))", logger: logger)
        }
    }

    /// SHA-256 of a token, as PostgreSQL bytea.
    static func sha256(_ token: String) -> ByteBuffer { ByteBuffer(bytes: SHA256.hash(data: Data(token.utf8))) }
}
