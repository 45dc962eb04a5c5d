import Foundation
import Hummingbird

/// An RFC 9457 problem: the one shape of every error response, with a stable `code`.
public struct Problem: Error, Sendable, Equatable {
    public var status: HTTPResponse.Status
    public var code: String
    public var title: String
    public var detail: String
    /// Extra members, e.g. the offending `field` or the `rule` id.
    public var extensions: [String: String]

    public init(status: HTTPResponse.Status, code: String, title: String, detail: String, extensions: [String: String] = [:]) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.extensions = extensions
    }

    public static func notFound(_ detail: String = "There is nothing at this address.") -> Problem {
        Problem(status: .notFound, code: "not-found", title: "Not found", detail: detail)
    }

    public static func validation(_ detail: String, field: String? = nil) -> Problem {
        Problem(
            status: .unprocessableContent, code: "validation-failed", title: "Validation failed", detail: detail,
            extensions: field.map { ["field": $0] } ?? [:])
    }

    public static let internalError = Problem(
        status: .internalServerError, code: "internal-error", title: "Internal error",
        detail: "Something went wrong on our side. It has been logged; quote the X-Request-ID header when reporting it.")

    public func response(requestID: String?) -> Response {
        var object: [String: String] = extensions
        object["type"] = "https://spor-access.example/problems/\(code)"
        object["title"] = title
        object["detail"] = detail
        object["code"] = code
        if let requestID { object["requestId"] = requestID }
        var json = Data("{\"status\":\(status.code)".utf8)
        for (key, value) in object.sorted(by: { $0.key < $1.key }) {
            json.append(contentsOf: Data(",".utf8))
            json.append(contentsOf: (try? JSONEncoder().encode(key)) ?? Data("\"\"".utf8))
            json.append(contentsOf: Data(":".utf8))
            json.append(contentsOf: (try? JSONEncoder().encode(value)) ?? Data("\"\"".utf8))
        }
        json.append(contentsOf: Data("}".utf8))
        return Response(
            status: status,
            headers: [.contentType: "application/problem+json"],
            body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }
}

/// Turns every error into a problem response: `Problem`s as they are, Hummingbird's HTTP errors by status,
/// anything else into a logged 500.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError {
            return Self.problem(for: error).response(requestID: context.requestID)
        } catch {
            if let problem = Problem.from(error) {
                return problem.response(requestID: context.requestID)
            }
            context.logger.error("unhandled error", metadata: ["error": "\(String(reflecting: error))"])
            return Problem.internalError.response(requestID: context.requestID)
        }
    }

    static func problem(for error: HTTPError) -> Problem {
        switch error.status {
        case .notFound:
            return .notFound()
        case .contentTooLarge:
            return Problem(
                status: .contentTooLarge, code: "body-too-large", title: "Request body too large",
                detail: error.body ?? "The request body is larger than this server accepts.")
        case .methodNotAllowed:
            return Problem(
                status: .methodNotAllowed, code: "method-not-allowed", title: "Method not allowed",
                detail: "This address does not accept that method.")
        case .badRequest:
            return Problem(
                status: .badRequest, code: "bad-request", title: "Bad request",
                detail: error.body ?? "The request could not be read.")
        default:
            return Problem(
                status: error.status, code: "http-\(error.status.code)", title: error.status.reasonPhrase,
                detail: error.body ?? error.status.reasonPhrase)
        }
    }
}
