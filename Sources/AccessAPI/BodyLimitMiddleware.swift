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
        if [.post, .put, .patch, .delete].contains(request.method) {
            do {
                let body = try await request.collectBody(upTo: maximumSize)
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
