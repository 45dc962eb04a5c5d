import AccessDomain
import Foundation
import Testing

@Suite("R21: time-bound grants in the Swift policy")
struct GrantPolicyTests {
    let now = Date(timeIntervalSince1970: 1_800_000_000)
    let org = OrganisationID("ORG-100000001")!
    var inTenDays: Date { now.addingTimeInterval(10 * 86_400) }
    var inThirtyDays: Date { now.addingTimeInterval(30 * 86_400) }

    func submission(role: Role, until: Date?, holds: Bool = false) -> SubmissionFacts {
        SubmissionFacts(
            requester: AccountID(UUID()), accountActive: true, securityQuestionsSet: true, role: role,
            organisation: role.needsOrganisation ? org : nil, organisationExists: true, organisationActiveSuperUsers: 1,
            hasPendingRequestForSameRole: false, holdsRole: holds, now: now, activationDelay: 0, requestLifetime: 30 * 86_400,
            accessUntil: until)
    }

    @Test("R21: a requested end is in the future and only for organisation roles")
    func requestedEnd() throws {
        #expect(throws: Never.self) { try ApprovalPolicy.submit(submission(role: .industryUser, until: inTenDays)).get() }
        let past = ApprovalPolicy.submit(submission(role: .industryUser, until: now))
        #expect(past.failure?.code == .grantEndInPast && past.failure?.rule == .r21 && past.failure?.field == "accessUntil")
        let unaffiliated = ApprovalPolicy.submit(submission(role: .unaffiliatedUser, until: inTenDays))
        #expect(unaffiliated.failure?.code == .validationFailed && unaffiliated.failure?.rule == .r21)
    }

    @Test("R7, R21: a role held until a date may be renewed; one held without an end may not be asked for again")
    func renewal() {
        // The store reports holdsRole only for a role held without an end (spor_submission_facts).
        #expect(ApprovalPolicy.submit(submission(role: .industryUser, until: inThirtyDays, holds: false)).failure == nil)
        #expect(ApprovalPolicy.submit(submission(role: .industryUser, until: nil, holds: true)).failure?.code == .alreadyHeld)
    }

    @Test("R21: the approver may shorten the end asked for, never lengthen it, and not into the past")
    func grantedEnd() {
        #expect(ApprovalPolicy.grantEnd(requested: inThirtyDays, chosen: nil, now: now).success == inThirtyDays)
        #expect(ApprovalPolicy.grantEnd(requested: inThirtyDays, chosen: inTenDays, now: now).success == inTenDays)
        #expect(
            ApprovalPolicy.grantEnd(requested: nil, chosen: inTenDays, now: now).success == inTenDays, "an open-ended request may be given an end")
        #expect(ApprovalPolicy.grantEnd(requested: nil, chosen: nil, now: now).success == .some(nil))
        #expect(ApprovalPolicy.grantEnd(requested: inTenDays, chosen: inThirtyDays, now: now).failure?.code == .grantLengthened)
        #expect(ApprovalPolicy.grantEnd(requested: inTenDays, chosen: now, now: now).failure?.code == .grantEndInPast)
    }

    @Test("R21: a decision refuses an approval that lengthens the end; a rejection ignores it")
    func decision() {
        let request = RequestSnapshot(
            id: AccessRequestID(1), requester: AccountID(UUID()), role: .industryUser, organisation: org, status: .pending,
            approverKind: .organisationSuperUsers, expiresAt: inThirtyDays, accessUntil: inTenDays)
        let facts = DecisionFacts(
            request: request, actor: Actor(id: AccountID(UUID()), staffRoles: []), channel: .organisation,
            actorIsActiveSuperUser: true, organisationActiveSuperUsers: 1, hasValidTicket: false, now: now)
        #expect(ApprovalPolicy.decide(facts, .approve, grantUntil: inThirtyDays).failure?.code == .grantLengthened)
        #expect(ApprovalPolicy.decide(facts, .approve, grantUntil: now.addingTimeInterval(86_400)).failure == nil)
        #expect(ApprovalPolicy.decide(facts, .reject(reason: "no"), grantUntil: inThirtyDays).failure == nil)
    }

    @Test("R8, R9, R13, R14: an assignment is active until its end, and not at or after it")
    func activeUntilTheEnd() {
        #expect(ApprovalPolicy.isActive(revokedAt: nil, endsAt: nil, now: now))
        #expect(ApprovalPolicy.isActive(revokedAt: nil, endsAt: inTenDays, now: now))
        #expect(!ApprovalPolicy.isActive(revokedAt: nil, endsAt: now, now: now))
        #expect(!ApprovalPolicy.isActive(revokedAt: now, endsAt: nil, now: now))
    }
}

extension Result {
    var failure: Failure? {
        if case .failure(let f) = self { return f }
        return nil
    }
    var success: Success? {
        if case .success(let s) = self { return s }
        return nil
    }
}
