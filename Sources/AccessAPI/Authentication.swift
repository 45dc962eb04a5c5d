import AccessDomain
import AccessStore
import HTTPTypes
import Hummingbird

/// Who is calling, for the generated handlers (which do not see Hummingbird's request context).
enum RequestActor {
    @TaskLocal static var account: AccountID?
    @TaskLocal static var token: String?

    /// The signed-in account, or a 401 problem.
    static func required() throws -> AccountID {
        guard let account else {
            throw Problem(
                status: .unauthorized, code: "unauthenticated", title: "Sign in first",
                detail: "This needs a bearer token from POST /v1/sessions (Authorization: Bearer <token>).")
        }
        return account
    }
}

/// Reads `Authorization: Bearer <token>`, looks the session up, and runs the rest of the request as that account.
/// A token that is unknown, expired or signed out is a 401 at once; no token leaves the request anonymous (public
/// endpoints work, the others answer 401).
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let sessions: SessionStore

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            return try await next(request, context)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "bearer", parts[1].count <= 200 else {
            throw Problem(
                status: .unauthorized, code: "unauthenticated", title: "Malformed authorization",
                detail: "Use Authorization: Bearer <token>.")
        }
        let token = String(parts[1])
        guard let account = try await sessions.authenticate(token: token) else {
            throw Problem(
                status: .unauthorized, code: "unauthenticated", title: "Session not valid",
                detail: "The token is unknown, expired or signed out; sign in again.")
        }
        var context = context
        context.logger[metadataKey: "account"] = .string(account.description)
        return try await RequestActor.$account.withValue(account) {
            try await RequestActor.$token.withValue(token) {
                try await next(request, context)
            }
        }
    }
}
