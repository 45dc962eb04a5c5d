import AccessDomain
import AccessStore
import HTTPTypes
import Hummingbird
import Synchronization

/// `Idempotency-Key` on mutating POSTs: the same key and body within 24 hours returns the first response and
/// creates nothing new; the same key with another body is 422; while the first is still running, 409.
/// Keys belong to the signed-in account; without one, a key is scoped to its request (another body with the same key
/// is another request), so anonymous callers can neither read nor block each other's keys. 5xx answers are not kept.
/// Sign-in (`POST /v1/sessions`) is never stored: its answer holds a bearer token, and no stored response may hold a
/// secret; a retry with a key simply signs in again (a new session, no `Idempotency-Replayed`).
struct IdempotencyMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let header = HTTPField.Name("Idempotency-Key")!
    static let replayed = HTTPField.Name("Idempotency-Replayed")!
    let keys: IdempotencyStore
    let maximumBodySize: Int
    /// Paths whose answers carry a secret (a bearer token).
    static let neverStored: Set<String> = ["/v1/sessions"]

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.method == .post, let key = request.headers[Self.header], !Self.neverStored.contains(request.uri.path) else {
            return try await next(request, context)
        }
        guard (1...200).contains(key.count), key.allSatisfy({ $0.isASCII && !$0.isWhitespace }) else {
            throw Problem.validation("Idempotency-Key must be 1 to 200 visible ASCII characters.", field: "Idempotency-Key")
        }
        var request = request
        let body = try await request.collectBody(upTo: maximumBodySize)
        let fingerprint = IdempotencyStore.fingerprint(method: request.method.rawValue, path: request.uri.path, body: body.readableBytesView)
        let caller = RequestActor.token

        switch try await keys.claim(key: key, fingerprint: fingerprint, caller: caller) {
        case .replay(let stored):
            var headers: HTTPFields = [Self.replayed: "true"]
            if let contentType = stored.contentType { headers[.contentType] = contentType }
            return Response(
                status: HTTPResponse.Status(code: stored.status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: stored.body)))
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
            try? await keys.release(key: key, fingerprint: fingerprint, caller: caller)
            throw error
        }
        guard response.status.code < 500 else {
            try? await keys.release(key: key, fingerprint: fingerprint, caller: caller)
            return response
        }
        let collected = try await Self.collect(response)
        try await keys.store(
            key: key, fingerprint: fingerprint, caller: caller,
            response: .init(status: response.status.code, body: Array(collected.readableBytesView), contentType: response.headers[.contentType]))
        var replayable = response
        replayable.body = .init(byteBuffer: collected)
        return replayable
    }

    /// The whole response body (handlers here answer small JSON documents).
    static func collect(_ response: Response) async throws -> ByteBuffer {
        let box = CollectingWriter.Box(ByteBuffer())
        try await response.body.write(CollectingWriter(box: box))
        return box.withLock { $0 }
    }

    struct CollectingWriter: ResponseBodyWriter {
        final class Box: Sendable {
            let buffer: Mutex<ByteBuffer>
            init(_ buffer: ByteBuffer) { self.buffer = Mutex(buffer) }
            func withLock<T>(_ body: (inout ByteBuffer) -> T) -> T { buffer.withLock { body(&$0) } }
        }
        let box: Box
        mutating func write(_ buffer: ByteBuffer) async throws {
            box.withLock { collected in
                var buffer = buffer
                collected.writeBuffer(&buffer)
            }
        }
        consuming func finish(_ trailingHeaders: HTTPFields?) async throws {}
    }
}
