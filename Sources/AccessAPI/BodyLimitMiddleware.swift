import Hummingbird

/// Reads request bodies up to a limit; a larger one is a 413 problem before any handler runs. An empty body is
/// read as the empty JSON object, so `POST .../approve` or `DELETE` without a body works where the body is optional
/// (the OpenAPI transport always hands the generated code a body, and an empty one does not decode).
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let maximumSize: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maximumSize {
            throw HTTPError(.contentTooLarge, message: "The request body is larger than \(maximumSize) bytes.")
        }
        if request.uri.query?.removingPercentEncoding?.contains("\u{0}") == true {
            throw Problem.nulCharacter
        }
        if [.post, .put, .patch, .delete].contains(request.method) {
            do {
                let body = try await request.collectBody(upTo: maximumSize)
                if Self.holdsNUL(body.readableBytesView) {
                    throw Problem.nulCharacter
                }
                if body.readableBytes == 0 {
                    var head = request.head
                    head.headerFields[.contentType] = "application/json"
                    head.headerFields[.contentLength] = "2"
                    request = Request(head: head, body: .init(buffer: ByteBuffer(string: "{}")))
                }
            } catch let error as HTTPError where error.status == .contentTooLarge {
                throw HTTPError(.contentTooLarge, message: "The request body is larger than \(maximumSize) bytes.")
            }
        }
        return try await next(request, context)
    }
}

extension BodyLimitMiddleware {
    /// Whether a JSON body holds a NUL character (`\u0000`): PostgreSQL text cannot store one, so it is refused before
    /// any handler runs (base64 uploads hold no backslash, so they never match).
    static func holdsNUL(_ bytes: some Collection<UInt8>) -> Bool {
        let pattern = Array("\\u0000".utf8)
        let text = Array(bytes)
        guard text.count >= pattern.count else { return text.contains(0) }
        if text.contains(0) { return true }
        for start in 0...(text.count - pattern.count) where text[start] == 0x5C {
            if zip(text[start..<(start + pattern.count)], pattern).allSatisfy({ $0 == $1 || ($1 == 0x75 && $0 == 0x55) }) {
                return true
            }
        }
        return false
    }
}

extension Problem {
    static let nulCharacter = Problem.validation("Text may not contain NUL characters (\\u0000 or %00).")
}
