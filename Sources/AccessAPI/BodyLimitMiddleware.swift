import Hummingbird

/// Reads request bodies up to a limit; a larger one is a 413 problem before any handler runs.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let maximumSize: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var request = request
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maximumSize {
            throw HTTPError(.contentTooLarge, message: "The request body is larger than \(maximumSize) bytes.")
        }
        if [.post, .put, .patch].contains(request.method) {
            do {
                _ = try await request.collectBody(upTo: maximumSize)
            } catch let error as HTTPError where error.status == .contentTooLarge {
                throw HTTPError(.contentTooLarge, message: "The request body is larger than \(maximumSize) bytes.")
            }
        }
        return try await next(request, context)
    }
}
