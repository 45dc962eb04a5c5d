import AccessDomain

/// Who calls a command: the bearer token of a session. The database authenticates it at the start of every
/// transaction (`spor_authenticate`) and makes its account the actor; the store trusts nothing else, and the
/// account the database names is the one the Swift policy decides for.
public protocol Caller: Sendable {
    var bearerToken: String { get }
}

/// A bearer token as the HTTP layer received it.
public struct BearerToken: Caller, Hashable {
    public let bearerToken: String
    public init(_ token: String) { self.bearerToken = token }
}
