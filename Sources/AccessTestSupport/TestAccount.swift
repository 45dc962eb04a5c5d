import AccessDomain
import AccessStore
import Foundation

/// An account a test acts as: its id and the bearer token of a live session. Store commands take it as their
/// caller, so every test acts through `spor_authenticate`, exactly as the service does.
public struct TestAccount: Caller, Hashable, Sendable, CustomStringConvertible {
    public let id: AccountID
    public let bearerToken: String

    public init(id: AccountID, bearerToken: String) {
        self.id = id
        self.bearerToken = bearerToken
    }

    /// The account id in lower case, as the database and the API print it.
    public var description: String { id.description }
    /// The account id as PostgreSQL's `uuid`, to bind in queries.
    public var pgUUID: UUID { id.rawValue }
    public var rawValue: UUID { id.rawValue }

    public static func == (lhs: AccountID, rhs: TestAccount) -> Bool { lhs == rhs.id }
    public static func == (lhs: TestAccount, rhs: AccountID) -> Bool { lhs.id == rhs }
    public static func == (lhs: AccountID?, rhs: TestAccount) -> Bool { lhs == rhs.id }
    public static func != (lhs: AccountID, rhs: TestAccount) -> Bool { lhs != rhs.id }
    public static func != (lhs: AccountID?, rhs: TestAccount) -> Bool { lhs != rhs.id }
    public static func != (lhs: TestAccount, rhs: AccountID) -> Bool { lhs.id != rhs }
}
