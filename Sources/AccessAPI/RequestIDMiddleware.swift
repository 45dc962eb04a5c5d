import Foundation
import HTTPTypes
import Hummingbird

/// Gives each request an id (the caller's `X-Request-ID` when it is sane, else a new one), puts it in the
/// logger's metadata (`hb.request.id`) and echoes it in the response.
struct RequestIDMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    static let header = HTTPField.Name("X-Request-ID")!

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        let supplied = request.headers[Self.header].flatMap { value in
            value.count <= 128 && value.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) } ? value : nil
        }
        let id = supplied ?? UUID().uuidString.lowercased()
        context.requestID = id
        // Hummingbird names every request in its logger as `hb.request.id` (and `context.id` reads it back): that
        // one key carries our id, so a log line has one request id, the one the caller sees in X-Request-ID.
        context.logger[metadataKey: "hb.request.id"] = .string(id)
        // ProblemMiddleware runs inside this one, so errors arrive here as responses and carry the id too.
        var response = try await next(request, context)
        response.headers[Self.header] = id
        return response
    }
}
