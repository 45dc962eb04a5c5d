import AccessDomain
import AccessStore
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import NIOConcurrencyHelpers
import PostgresNIO

/// `Idempotency-Key` on mutating POSTs: the same key and body within 24 hours returns the first response and
/// creates nothing new; the same key with another body is 422; while the first is still running, 409.
/// Keys belong to the signed-in account (anonymous keys to nobody in particular). 5xx answers are not kept.
struct IdempotencyMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let header = HTTPField.Name("Idempotency-Key")!
    static let replayed = HTTPField.Name("Idempotency-Replayed")!
    let database: Database
    let maximumBodySize: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, let key = request.headers[Self.header] else {
            return try await next(request, context)
        }
        guard (1...200).contains(key.count), key.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw Problem.validation("Idempotency-Key must be 1 to 200 visible ASCII characters.", field: "Idempotency-Key")
        }
        var request = request
        let body = try await request.collectBody(upTo: maximumSize)
        var digest = SHA256()
        digest.update(data: Data("\(request.method.rawValue) \(request.uri.path)\n".utf8))
        digest.update(data: Data(body.readableBytesView))
        let hash = ByteBuffer(bytes: digest.finalize())
        let actor = RequestActor.account

        switch try await claim(key: key, hash: hash, actor: actor) {
        case .replay(let response):
            return response
        case .mismatch:
            throw Problem(
                status: .unprocessableContent, code: "idempotency-key-reused", title: "Idempotency key reused",
                detail: "This Idempotency-Key was used with a different request in the last 24 hours.")
        case .inProgress:
            throw Problem(
                status: .conflict, code: "idempotency-in-progress", title: "Request in progress",
                detail: "A request with this Idempotency-Key is still being processed; retry shortly.")
        case .claimed:
            break
        }
        let response: Response
        do {
            response = try await next(request, context)
        } catch {
            try? await release(key: key, actor: actor)
            throw error
        }
        guard response.status.code < 500 else {
            try? await release(key: key, actor: actor)
            return response
        }
        let collected = try await Self.collect(response)
        try await store(key: key, actor: actor, status: response.status.code, body: collected, contentType: response.headers[.contentType])
        var replayable = response
        replayable.body = .init(byteBuffer: collected)
        return replayable
    }

    var maximumSize: Int { maximumBodySize }

    enum Claim {
        case claimed, inProgress, mismatch
        case replay(Response)
    }

    private func claim(key: String, hash: ByteBuffer, actor: AccountID?) async throws -> Claim {
        try await database.transaction(actor: actor) { connection in
            // Forget this key if its first use is older than 24 hours.
            try await connection.query(
                """
                DELETE FROM idempotency_keys WHERE coalesce(account_id::text, '') = \(actor?.rawValue ?? "") AND key = \(key)
                  AND created_at < now() - interval '24 hours'
                """, logger: database.logger)
            let inserted = try await connection.first(
                """
                INSERT INTO idempotency_keys (account_id, key, request_hash) VALUES (\(actor.map { UUID(uuidString: $0.rawValue) } ?? nil), \(key), \(hash))
                ON CONFLICT (coalesce(account_id::text, ''), key) DO NOTHING RETURNING id
                """, as: Int64.self, logger: database.logger)
            if inserted != nil { return .claimed }
            guard
                let (storedHash, status, body, contentType) = try await connection.first(
                    """
                    SELECT request_hash, status_code, response_body, response_content_type FROM idempotency_keys
                    WHERE coalesce(account_id::text, '') = \(actor?.rawValue ?? "") AND key = \(key)
                    """, as: (ByteBuffer, Int?, ByteBuffer?, String?).self, logger: database.logger)
            else { return .inProgress }
            guard storedHash == hash else { return .mismatch }
            guard let status else { return .inProgress }
            var headers: HTTPFields = [Self.replayed: "true"]
            if let contentType { headers[.contentType] = contentType }
            return .replay(
                Response(
                    status: HTTPResponse.Status(code: status), headers: headers, body: .init(byteBuffer: body ?? ByteBuffer())))
        }
    }

    private func store(key: String, actor: AccountID?, status: Int, body: ByteBuffer, contentType: String?) async throws {
        try await database.transaction(actor: actor) { connection in
            try await connection.query(
                """
                UPDATE idempotency_keys SET status_code = \(status), response_body = \(body), response_content_type = \(contentType)
                WHERE coalesce(account_id::text, '') = \(actor?.rawValue ?? "") AND key = \(key)
                """, logger: database.logger)
        }
    }

    private func release(key: String, actor: AccountID?) async throws {
        try await database.transaction(actor: actor) { connection in
            try await connection.query(
                "DELETE FROM idempotency_keys WHERE coalesce(account_id::text, '') = \(actor?.rawValue ?? "") AND key = \(key) AND status_code IS NULL",
                logger: database.logger)
        }
    }

    /// The whole response body (handlers here answer small JSON documents).
    static func collect(_ response: Response) async throws -> ByteBuffer {
        let box = NIOLockedValueBox(ByteBuffer())
        try await response.body.write(CollectingWriter(box: box))
        return box.withLockedValue { $0 }
    }

    struct CollectingWriter: ResponseBodyWriter {
        let box: NIOLockedValueBox<ByteBuffer>
        mutating func write(_ buffer: ByteBuffer) async throws {
            box.withLockedValue { collected in
                var buffer = buffer
                collected.writeBuffer(&buffer)
            }
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
