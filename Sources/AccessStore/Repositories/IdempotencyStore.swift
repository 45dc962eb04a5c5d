import AccessDomain
import Crypto
import Foundation
import Logging
import PostgresNIO

/// `Idempotency-Key`s (the convention of every mutating POST): the first use of a key claims it, its answer is
/// stored, and a retry with the same key and request within 24 hours gets that answer back. Keys belong to the
/// signed-in account (anonymous keys to nobody in particular).
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
        return try await database.transaction(optionallyAs: caller) { connection, actor in
            let owner = actor?.description ?? ""
            // Forget this key if its first use is older than 24 hours.
            try await connection.query(
                """
                DELETE FROM idempotency_keys WHERE coalesce(account_id::text, '') = \(owner) AND key = \(key)
                  AND created_at < now() - interval '24 hours'
                """, logger: logger)
            let inserted = try await connection.first(
                """
                INSERT INTO idempotency_keys (account_id, key, request_hash) VALUES (\(actor?.rawValue), \(key), \(hash))
                ON CONFLICT (coalesce(account_id::text, ''), key) DO NOTHING RETURNING id
                """, as: Int64.self, logger: logger)
            if inserted != nil { return .claimed }
            guard
                let (storedHash, status, body, contentType) = try await connection.first(
                    """
                    SELECT request_hash, status_code, response_body, response_content_type FROM idempotency_keys
                    WHERE coalesce(account_id::text, '') = \(owner) AND key = \(key)
                    """, as: (ByteBuffer, Int?, ByteBuffer?, String?).self, logger: logger)
            else { return .inProgress }
            guard storedHash == hash else { return .mismatch }
            guard let status else { return .inProgress }
            var bytes = body ?? ByteBuffer()
            return .replay(
                StoredResponse(status: status, body: bytes.readBytes(length: bytes.readableBytes) ?? [], contentType: contentType))
        }
    }

    /// Keeps the answer of a claimed key.
    public func store(key: String, caller: (any Caller)?, response: StoredResponse) async throws {
        try await database.transaction(optionallyAs: caller) { connection, actor in
            try await connection.query(
                """
                UPDATE idempotency_keys SET status_code = \(response.status), response_body = \(ByteBuffer(bytes: response.body)),
                       response_content_type = \(response.contentType)
                WHERE coalesce(account_id::text, '') = \(actor?.description ?? "") AND key = \(key)
                """, logger: logger)
        }
    }

    /// Gives a claimed key up (the request failed), so a retry runs again.
    public func release(key: String, caller: (any Caller)?) async throws {
        try await database.transaction(optionallyAs: caller) { connection, actor in
            try await connection.query(
                """
                DELETE FROM idempotency_keys
                WHERE coalesce(account_id::text, '') = \(actor?.description ?? "") AND key = \(key) AND status_code IS NULL
                """, logger: logger)
        }
    }
}
