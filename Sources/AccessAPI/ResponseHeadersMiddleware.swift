import Foundation
import HTTPTypes
import Hummingbird
import ServiceLifecycle

/// Headers every response gets, and the one the generated layer cannot write.
///
/// - `X-Content-Type-Options: nosniff` on every response: a browser never reads a body as another type than the
///   one declared (the affiliation letter is a file the requester uploaded; R10).
/// - `Content-Disposition` as written: swift-openapi-runtime sends header values URI-encoded (the "simple" style of
///   OpenAPI parameters), and `attachment; filename="…"` must not be; the handler's value is percent-decoded here
///   (it holds no line breaks: `APIHandler.attachment` builds it from printable characters only).
/// - `Connection: close` once the service is shutting down (SIGTERM): the calls in progress are answered, and
///   their clients learn that this connection ends there, instead of finding out with their next call. From the
///   moment the signal arrives (`ShutdownNotice`), not only once the shutdown task has run.
struct ResponseHeadersMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let noSniff = HTTPField.Name("X-Content-Type-Options")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var response = try await next(request, context)
        response.headers[Self.noSniff] = "nosniff"
        if Task.isShuttingDownGracefully || ShutdownNotice.shared.hasBegun { response.headers[.connection] = "close" }
        if let disposition = response.headers[.contentDisposition], let decoded = disposition.removingPercentEncoding,
            !decoded.contains(where: { $0 == "\r" || $0 == "\n" })
        {
            response.headers[.contentDisposition] = decoded
        }
        return response
    }
}
