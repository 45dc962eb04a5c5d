import Foundation

/// R22: what a reviewer decides about one item of an access review; raw values as stored in
/// `access_review_items.decision`.
public enum ReviewDecision: String, Sendable, Codable, CaseIterable {
    case certified
    case revoked
}

/// What the store knows when someone decides an item of an access review (R13, R22).
public struct ReviewItemFacts: Sendable {
    public var item: Int64
    public var holder: AccountID
    public var organisation: OrganisationID
    public var actor: Actor
    /// The actor is an active super user of the organisation.
    public var actorIsActiveSuperUser: Bool
    /// Active super users of the organisation other than the item's holder.
    public var otherActiveSuperUsers: Int
    /// The item is decided already, or its review closed with it undecided.
    public var decided: Bool
    /// The review is open and not past its due date.
    public var reviewOpen: Bool
    /// The role under review is still active (not revoked, not past its end).
    public var assignmentActive: Bool

    /// Creates the facts of one review decision.
    public init(
        item: Int64, holder: AccountID, organisation: OrganisationID, actor: Actor, actorIsActiveSuperUser: Bool,
        otherActiveSuperUsers: Int, decided: Bool, reviewOpen: Bool, assignmentActive: Bool
    ) {
        self.item = item
        self.holder = holder
        self.organisation = organisation
        self.actor = actor
        self.actorIsActiveSuperUser = actorIsActiveSuperUser
        self.otherActiveSuperUsers = otherActiveSuperUsers
        self.decided = decided
        self.reviewOpen = reviewOpen
        self.assignmentActive = assignmentActive
    }
}

extension ApprovalPolicy {
    /// Whether the actor may certify or revoke a review item (R22): once, while the review is open and the role
    /// active; by a super user of the organisation who is not the holder, or by the EMA service desk when the holder
    /// is the organisation's only super user (nobody else in the organisation could decide it).
    public static func decideReviewItem(_ facts: ReviewItemFacts) -> Result<Void, Refusal> {
        let isDesk = facts.actor.staffRoles.contains(.serviceDesk)
        guard facts.actorIsActiveSuperUser || !facts.actor.staffRoles.isEmpty else {
            return .failure(Refusal(.notFound, .r13, "Review item \(facts.item) not found."))
        }
        guard !facts.decided else {
            return .failure(Refusal(.notPending, .r22, "Review item \(facts.item) is decided; decisions never change."))
        }
        guard facts.reviewOpen else {
            return .failure(Refusal(.notPending, .r22, "This access review is closed; its undecided items were flagged."))
        }
        guard facts.assignmentActive else {
            return .failure(Refusal(.notPending, .r22, "The role of review item \(facts.item) has ended or was revoked already."))
        }
        guard facts.actor.id != facts.holder else {
            return .failure(
                Refusal(.selfApproval, .r22, "Nobody reviews their own access: another super user, or the EMA service desk, decides it."))
        }
        if facts.actorIsActiveSuperUser { return .success(()) }
        guard isDesk else { return .failure(Refusal(.notFound, .r13, "Review item \(facts.item) not found.")) }
        guard facts.otherActiveSuperUsers == 0 else {
            return .failure(
                Refusal(
                    .delegatedToOrganisation, .r22,
                    "\(facts.organisation) has another super user; its super users decide this item."))
        }
        return .success(())
    }
}
