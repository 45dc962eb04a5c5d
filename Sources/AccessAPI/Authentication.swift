import AccessDomain
import AccessStore
import HTTPTypes
import Hummingbird

/// Who is calling, for the generated handlers (which do not see Hummingbird's request context): the bearer token
/// of `Authorization: Bearer <token>`. Nothing here decides who that is: each command's transaction starts by
/// authenticating the token in the database (`spor_authenticate`), so there is no separate look-up to trust.
enum RequestActor {
    @TaskLocal static var token: BearerToken?

    /// The caller's token, or a 401 problem.
    static func required() throws -> BearerToken {
        guard let token else { throw Problem.unauthenticated }
        return token
    }
}

extension Problem {
    static let unauthenticated = Problem(
        status: .unauthorized, code: "unauthenticated", title: "Sign in first",
        detail: "This needs a bearer token from POST /v1/sessions (Authorization: Bearer <token>).")

    static let sessionNotValid = Problem(
        status: .unauthorized, code: "unauthenticated", title: "Session not valid",
        detail: "The token is unknown, expired or signed out; sign in again.")
}

/// Reads `Authorization: Bearer <token>` and runs the rest of the request with it. A malformed header is a 401 at
/// once; no header leaves the request anonymous (public endpoints work, the others answer 401). Whether the token
/// is live is the database's answer, given in the command's own transaction (a 401 when it is not).
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            return try await next(request, context)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", (1...200).contains(parts[1].count) else {
            throw Problem(
                status: .unauthorized, code: "unauthenticated", title: "Malformed authorization",
                detail: "Use Authorization: Bearer <token>.")
        }
        return try await RequestActor.$token.withValue(BearerToken(String(parts[1]))) {
            try await next(request, context)
        }
    }
}
