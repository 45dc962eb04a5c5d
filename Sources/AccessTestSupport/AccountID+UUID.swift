import AccessDomain
import Foundation

extension AccountID {
    /// The account id as PostgreSQL's `uuid`, to bind in queries (`\(account.pgUUID)`): the one UUID helper of the tests.
    public var pgUUID: UUID { rawValue }
}
