import AccessDomain
import Foundation

extension AccountID {
    /// The account id as PostgreSQL's `uuid`, to bind in queries (`\(account.pgUUID)`).
    ///
    /// The one UUID helper of the tests. Account ids in tests come from the database, so one that is not a UUID is a
    /// defect of the test itself: it stops the test process, naming the id.
    public var pgUUID: UUID {
        guard let uuid = UUID(uuidString: rawValue) else { preconditionFailure("account id \(rawValue) is not a UUID") }
        return uuid
    }
}
