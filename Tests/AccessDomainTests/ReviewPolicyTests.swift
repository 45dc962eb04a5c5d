import AccessDomain
import Foundation
import Testing

@Suite("R22: who decides an access review item, in the Swift policy")
struct ReviewPolicyTests {
    let org = OrganisationID("ORG-100000001")!
    let holder = AccountID(UUID())

    func facts(
        actor: Actor, superUser: Bool, others: Int = 1, decided: Bool = false, open: Bool = true, active: Bool = true
    ) -> ReviewItemFacts {
        ReviewItemFacts(
            item: 7, holder: holder, organisation: org, actor: actor, actorIsActiveSuperUser: superUser, otherActiveSuperUsers: others,
            decided: decided, reviewOpen: open, assignmentActive: active)
    }

    @Test("R22: a super user decides another's item, once, while the review is open and the role active")
    func superUser() {
        let su = Actor(id: AccountID(UUID()), staffRoles: [])
        #expect(ApprovalPolicy.decideReviewItem(facts(actor: su, superUser: true)).failure == nil)
        #expect(ApprovalPolicy.decideReviewItem(facts(actor: su, superUser: true, decided: true)).failure?.code == .notPending)
        #expect(ApprovalPolicy.decideReviewItem(facts(actor: su, superUser: true, open: false)).failure?.code == .notPending)
        #expect(ApprovalPolicy.decideReviewItem(facts(actor: su, superUser: true, active: false)).failure?.code == .notPending)
    }

    @Test("R22: nobody decides their own item; the desk decides only an only super user's; anyone else finds nothing")
    func whoDecides() {
        let own = ApprovalPolicy.decideReviewItem(facts(actor: Actor(id: holder, staffRoles: []), superUser: true))
        #expect(own.failure?.code == .selfApproval && own.failure?.rule == .r22)
        let desk = Actor(id: AccountID(UUID()), staffRoles: [.serviceDesk])
        #expect(ApprovalPolicy.decideReviewItem(facts(actor: desk, superUser: false, others: 0)).failure == nil)
        #expect(ApprovalPolicy.decideReviewItem(facts(actor: desk, superUser: false, others: 1)).failure?.code == .delegatedToOrganisation)
        let admin = Actor(id: AccountID(UUID()), staffRoles: [.admin])
        #expect(ApprovalPolicy.decideReviewItem(facts(actor: admin, superUser: false, others: 0)).failure?.code == .notFound)
        let stranger = Actor(id: AccountID(UUID()), staffRoles: [])
        #expect(ApprovalPolicy.decideReviewItem(facts(actor: stranger, superUser: false)).failure?.code == .notFound)
    }
}
