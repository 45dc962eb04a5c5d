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
    /// Seconds after which the client may try again: sent as `Retry-After` (503 and 429 answers).
    public var retryAfter: Int?

    public init(
        status: HTTPResponse.Status, code: String, title: String, detail: String, extensions: [String: String] = [:],
        retryAfter: Int? = nil
    ) {
        self.status = status
        self.code = code
        self.title = title
        self.detail = detail
        self.extensions = extensions
        self.retryAfter = retryAfter
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

    /// The database is away or out of time (`StoreError.unavailable`): nothing the client was told of changed.
    public static func databaseUnavailable(_ reason: String) -> Problem {
        Problem(
            status: .serviceUnavailable, code: "database-unavailable", title: "Database unavailable",
            detail: "The database could not be reached or did not answer in time (\(reason)). Nothing was changed; try again in a moment.",
            retryAfter: 2)
    }

    /// The RFC 9457 document: the standard members, `code`, the request id, and the extensions as string members.
    struct Document: Encodable {
        let problem: Problem
        let requestID: String?

        struct Key: CodingKey {
            let stringValue: String
            init(_ name: String) { stringValue = name }
            init?(stringValue: String) { self.stringValue = stringValue }
            var intValue: Int? { nil }
            init?(intValue: Int) { nil }
        }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: Key.self)
            for (name, value) in problem.extensions { try container.encode(value, forKey: Key(name)) }
            try container.encode(problem.status.code, forKey: Key("status"))
            try container.encode("https://spor-access.example/problems/\(problem.code)", forKey: Key("type"))
            try container.encode(problem.title, forKey: Key("title"))
            try container.encode(problem.detail, forKey: Key("detail"))
            try container.encode(problem.code, forKey: Key("code"))
            try container.encodeIfPresent(requestID, forKey: Key("requestId"))
        }
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }()

    public func response(requestID: String?) -> Response {
        let json = (try? Self.encoder.encode(Document(problem: self, requestID: requestID))) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: json)))
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
