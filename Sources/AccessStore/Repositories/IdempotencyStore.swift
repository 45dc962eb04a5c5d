import AccessDomain
import Crypto
import Foundation
import Logging
import PostgresNIO

/// `Idempotency-Key`s (the convention of every mutating POST): the first use of a key claims it, its answer is
/// stored, and a retry with the same key and request within 24 hours gets that answer back. Keys belong to the
/// signed-in account; an anonymous key is scoped to its request (the database's `spor_idempotency_*` functions:
/// the application role cannot read or write the table).
public struct IdempotencyStore: Sendable {
    let database: Database
    var logger: Logger { database.logger }

    public init(database: Database) { self.database = database }

    /// A stored answer.
    public struct StoredResponse: Sendable, Equatable {
        public let status: Int
        public let body: [UInt8]
        public let contentType: String?

        public init(status: Int, body: [UInt8], contentType: String?) {
            self.status = status
            self.body = body
            self.contentType = contentType
        }
    }

    /// What claiming a key found.
    public enum Claim: Sendable, Equatable {
        /// The key is new: go ahead, then `store` the answer (or `release` the key).
        case claimed
        /// The first request with this key is still running.
        case inProgress
        /// The key was used with another request.
        case mismatch
        /// The first request's answer.
        case replay(StoredResponse)
    }

    /// The fingerprint of a request: SHA-256 of method, path and body.
    public static func fingerprint(method: String, path: String, body: some Sequence<UInt8>) -> [UInt8] {
        var digest = SHA256()
        digest.update(data: Data("\(method) \(path)\n".utf8))
        digest.update(data: Data(body))
        return Array(digest.finalize())
    }

    public func claim(key: String, fingerprint: [UInt8], caller: (any Caller)?) async throws -> Claim {
        let hash = ByteBuffer(bytes: fingerprint)
        return try await database.transaction(optionallyAs: caller) { connection, _ in
            guard
                let (outcome, status, body, contentType) = try await connection.first(
                    """
                    SELECT outcome, status_code, response_body, response_content_type FROM spor_idempotency_claim(\(key), \(hash))
                    """, as: (String, Int?, ByteBuffer?, String?).self, logger: logger)
            else { return .inProgress }
            switch outcome {
            case "claimed": return .claimed
            case "mismatch": return .mismatch
            case "replay":
                guard let status else { return .inProgress }
                var bytes = body ?? ByteBuffer()
                return .replay(
                    StoredResponse(status: status, body: bytes.readBytes(length: bytes.readableBytes) ?? [], contentType: contentType))
            default: return .inProgress
            }
        }
    }

    /// Keeps the answer of a claimed key.
    public func store(key: String, fingerprint: [UInt8], caller: (any Caller)?, response: StoredResponse) async throws {
        try await database.transaction(optionallyAs: caller) { connection, _ in
            try await connection.query(
                """
                SELECT spor_idempotency_store(\(key), \(ByteBuffer(bytes: fingerprint)), \(Int32(clamping: response.status)),
                                              \(ByteBuffer(bytes: response.body)), \(response.contentType))
                """, logger: logger)
        }
    }

    /// Gives a claimed key up (the request failed), so a retry runs again.
    public func release(key: String, fingerprint: [UInt8], caller: (any Caller)?) async throws {
        try await database.transaction(optionallyAs: caller) { connection, _ in
            try await connection.query("SELECT spor_idempotency_release(\(key), \(ByteBuffer(bytes: fingerprint)))", logger: logger)
        }
    }
}
