import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// An organisation's access review (R22) with its counts.
public struct AccessReview: Sendable, Equatable {
    public let id: Int64
    public let organisation: OrganisationID
    public let openedAt: Date
    public let dueAt: Date
    public let closedAt: Date?
    public let items: Int
    public let certified: Int
    public let revoked: Int
    public let undecided: Int
}

/// One role under review (R22): its decision, or what the closing of the review found.
public struct AccessReviewItem: Sendable, Equatable {
    /// What the closing job recorded for an item nobody decided.
    public enum Outcome: String, Sendable {
        case undecided
        case revokedUndecided = "revoked-undecided"
        case ended
    }

    public let id: Int64
    public let assignment: Int64
    public let account: AccountID
    public let email: String
    public let role: Role
    public let decision: ReviewDecision?
    public let decidedBy: AccountID?
    public let decidedAt: Date?
    public let comment: String?
    public let outcome: Outcome?
}

/// Access reviews (R22): each organisation's periodic review of its roles, opened and closed by the worker's job,
/// decided item by item (or many at once) by its super users, or by the service desk for an only super user's item.
///
/// A decision is one read of the facts the Swift policy decides on (`spor_review_item_facts`), the policy's verdict
/// for every item, then one call (`spor_decide_review_items`) in which the triggers decide again under the row locks,
/// audit and revoke: all the items or none.
public struct AccessReviewStore: Sendable {
    public let database: Database
    public let policy: PolicyMode

    public init(database: Database, policy: PolicyMode = .enforced) {
        self.database = database
        self.policy = policy
    }

    var logger: Logger { database.logger }

    /// One decision of a batch.
    public struct Decision: Sendable {
        public var item: Int64
        public var decision: ReviewDecision
        public var comment: String?

        public init(item: Int64, decision: ReviewDecision, comment: String? = nil) {
            self.item = item
            self.decision = decision
            self.comment = comment
        }
    }

    /// The organisation's reviews, newest first (R13: its super users and staff; anyone else: not found).
    public func reviews(actor caller: any Caller, organisation: OrganisationID) async throws -> [AccessReview] {
        try await database.rows("SELECT * FROM spor_access_reviews(\(caller.bearerToken), \(organisation.rawValue))").map { row in
            let c = try row.decode((Int64, String, Date, Date, Date?, Int64, Int64, Int64, Int64).self)
            guard let org = OrganisationID(c.1) else {
                throw StoreError.constraintViolation(constraint: "access_reviews", message: "unknown organisation")
            }
            return AccessReview(
                id: c.0, organisation: org, openedAt: c.2, dueAt: c.3, closedAt: c.4, items: Int(c.5), certified: Int(c.6),
                revoked: Int(c.7), undecided: Int(c.8))
        }
    }

    /// A review's items in id order after `after` (keyset paging), with the organisation they belong to.
    public func items(
        actor caller: any Caller, review: Int64, after: Int64?, limit: Int
    ) async throws -> [(item: AccessReviewItem, organisation: OrganisationID)] {
        try await database.rows(
            "SELECT * FROM spor_access_review_items(\(caller.bearerToken), \(review), \(after), \(Int32(clamping: limit)))"
        ).map(Self.item(_:))
    }

    /// A row of `spor_access_review_items` (and of `spor_decide_review_items`, which answers the same columns).
    static func item(_ row: PostgresRow) throws -> (item: AccessReviewItem, organisation: OrganisationID) {
        let c = try row.decode((Int64, Int64, UUID, String, String, String?, UUID?, Date?, String?, String?, String).self)
        guard let org = OrganisationID(c.10) else {
            throw StoreError.constraintViolation(constraint: "access_review_items", message: "unknown organisation")
        }
        let item = AccessReviewItem(
            id: c.0, assignment: c.1, account: AccountID(c.2), email: c.3, role: try stored(c.4, in: "access_review_items"),
            decision: try c.5.map { try stored($0, in: "access_review_items") }, decidedBy: c.6.map(AccountID.init),
            decidedAt: c.7, comment: c.8, outcome: try c.9.map { try stored($0, in: "access_review_items") })
        return (item, org)
    }

    /// Decides the items of one review, all or none (R22). `expectedOrganisation` is the organisation of the address
    /// used: a review of another one is not found (R13).
    public func decide(
        actor caller: any Caller, review: Int64, _ decisions: [Decision], expectedOrganisation: OrganisationID? = nil
    ) async throws -> [AccessReviewItem] {
        let ids = decisions.map(\.item)
        guard !ids.isEmpty, ids.count <= 500, Set(ids).count == ids.count else {
            throw Refusal(.validationFailed, .r22, "Decide 1 to 500 different items at once.", field: "decisions")
        }
        let facts = try await database.rows(
            "SELECT * FROM spor_review_item_facts(\(caller.bearerToken), \(review), \(ids))"
        ).map { try $0.decode((Int64, String, Int64, UUID, String, String?, String?, Bool, Bool, UUID, [String], Bool, Int32).self) }
        if let expectedOrganisation, facts.contains(where: { $0.1 != expectedOrganisation.rawValue }) {
            throw Refusal(.notFound, .r13, "Access review \(review) not found.")
        }
        let found = Set(facts.map(\.0))
        if let missing = ids.first(where: { !found.contains($0) }) {
            throw Refusal(.notFound, .r13, "Review item \(missing) is not part of access review \(review).")
        }
        if policy == .enforced {
            for c in facts {
                guard let organisation = OrganisationID(c.1) else { continue }
                let actor = Actor(id: AccountID(c.9), staffRoles: Set(c.10.compactMap(StaffRole.init(rawValue:))))
                try ApprovalPolicy.decideReviewItem(
                    ReviewItemFacts(
                        item: c.0, holder: AccountID(c.3), organisation: organisation, actor: actor, actorIsActiveSuperUser: c.11,
                        otherActiveSuperUsers: Int(c.12), decided: c.5 != nil || c.6 != nil, reviewOpen: c.7, assignmentActive: c.8)
                ).get()
            }
        }
        return try await database.commandRows(
            """
            SELECT * FROM spor_decide_review_items(\(caller.bearerToken), \(review), \(ids), \(decisions.map(\.decision.rawValue)),
                                                   \(decisions.map { $0.comment ?? "" }))
            """, organisation: facts.first.flatMap { OrganisationID($0.1) }
        ).map { try Self.item($0).item }
    }

    /// The reviews job (R22): opens the reviews that are due, then closes the due ones (undecided items flagged, or
    /// revoked when the settings say so), each once however many instances run it. Background work, as the worker role.
    public func runReviewJobs(batch: Int = 100) async throws -> (opened: Int, closed: Int) {
        try await database.transaction { connection in
            let opened = try await connection.first("SELECT spor_open_due_reviews(\(Int32(clamping: batch)))", as: Int.self, logger: logger)
            let closed = try await connection.first("SELECT spor_close_due_reviews(\(Int32(clamping: batch)))", as: Int.self, logger: logger)
            return (opened ?? 0, closed ?? 0)
        }
    }
}
