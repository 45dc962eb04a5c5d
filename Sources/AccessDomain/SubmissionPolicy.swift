import Foundation

/// What the store knows when someone files an access request (R2–R9, R18).
public struct SubmissionFacts: Sendable {
    public var requester: AccountID
    public var accountActive: Bool
    public var securityQuestionsSet: Bool
    public var role: Role
    public var organisation: OrganisationID?
    public var organisationExists: Bool
    /// Count of active (effective, unrevoked) super users of the organisation.
    public var organisationActiveSuperUsers: Int
    /// A pending request for the same (requester, role, organisation) exists.
    public var hasPendingRequestForSameRole: Bool
    /// The requester already holds this role (in this organisation) without an end; a role held until a date may be
    /// renewed by a new request (R21).
    public var holdsRole: Bool
    public var now: Date
    /// R5: delay before an automatic grant becomes effective.
    public var activationDelay: TimeInterval
    /// R18: how long a pending request lives before it expires.
    public var requestLifetime: TimeInterval
    /// R21: the end of access the requester asks for (nil: no end).
    public var accessUntil: Date?
    /// R21: the clock on which an end is judged (the jobs' clock, `now` in production); nil: `now`.
    public var clock: Date?

    /// Creates the facts of one submission.
    public init(
        requester: AccountID, accountActive: Bool, securityQuestionsSet: Bool, role: Role,
        organisation: OrganisationID?, organisationExists: Bool, organisationActiveSuperUsers: Int,
        hasPendingRequestForSameRole: Bool, holdsRole: Bool, now: Date, activationDelay: TimeInterval,
        requestLifetime: TimeInterval, accessUntil: Date? = nil, clock: Date? = nil
    ) {
        self.requester = requester
        self.accountActive = accountActive
        self.securityQuestionsSet = securityQuestionsSet
        self.role = role
        self.organisation = organisation
        self.organisationExists = organisationExists
        self.organisationActiveSuperUsers = organisationActiveSuperUsers
        self.hasPendingRequestForSameRole = hasPendingRequestForSameRole
        self.holdsRole = holdsRole
        self.now = now
        self.activationDelay = activationDelay
        self.requestLifetime = requestLifetime
        self.accessUntil = accessUntil
        self.clock = clock
    }
}

/// How a new request starts: its status, who decides it, when it expires and when an automatic grant takes effect.
public struct SubmissionDecision: Sendable, Equatable {
    public let status: RequestStatus
    public let approverKind: ApproverKind
    public let expiresAt: Date?
    public let grantEffectiveFrom: Date?

    /// Creates a submission decision.
    public init(status: RequestStatus, approverKind: ApproverKind, expiresAt: Date?, grantEffectiveFrom: Date?) {
        self.status = status
        self.approverKind = approverKind
        self.expiresAt = expiresAt
        self.grantEffectiveFrom = grantEffectiveFrom
    }
}

extension ApprovalPolicy {
    /// Decides how a new access request starts, or refuses it (R2–R9, R18, R21).
    public static func submit(_ facts: SubmissionFacts) -> Result<SubmissionDecision, Refusal> {
        // R21 first, as the database checks it (r21_request_end fires before r8_route_new_request).
        if case .failure(let refusal) = requestedEnd(facts.accessUntil, role: facts.role, now: facts.clock ?? facts.now) {
            return .failure(refusal)
        }
        guard facts.accountActive else {
            return .failure(Refusal(.accountNotActive, .r2, "Activate your account with the e-mailed verification link before filing a request."))
        }
        guard facts.securityQuestionsSet else {
            return .failure(Refusal(.securityQuestionsRequired, .r3, "Set your security questions before filing any request."))
        }
        switch (facts.role.needsOrganisation, facts.organisation) {
        case (true, nil):
            return .failure(Refusal(.organisationRequired, .r4, "The role \(facts.role.rawValue) is held in an organisation; name one."))
        case (false, .some):
            return .failure(Refusal(.organisationNotAllowed, .r4, "The role \(facts.role.rawValue) has no organisation; leave it out."))
        default:
            break
        }
        if let organisation = facts.organisation, !facts.organisationExists {
            return .failure(Refusal(.unknownOrganisation, .r6, "Organisation \(organisation) is not in OMS; search OMS or request its addition."))
        }
        guard !facts.holdsRole else {
            return .failure(Refusal(.alreadyHeld, .r7, "You already hold the role \(facts.role.rawValue) here."))
        }
        guard !facts.hasPendingRequestForSameRole else {
            return .failure(Refusal(.duplicateRequest, .r7, "You already have a pending request for \(facts.role.rawValue) here."))
        }
        if facts.role == .industryUser && facts.organisationActiveSuperUsers == 0 {
            return .failure(Refusal(.noSuperUser, .r9, "This organisation has no super user yet; request the super user role first."))
        }
        let kind = currentApproverKind(role: facts.role, organisationActiveSuperUsers: facts.organisationActiveSuperUsers)
        if kind == .automatic {
            return .success(
                SubmissionDecision(
                    status: .approved, approverKind: .automatic, expiresAt: nil,
                    grantEffectiveFrom: facts.now.addingTimeInterval(facts.activationDelay)))
        }
        return .success(
            SubmissionDecision(
                status: .pending, approverKind: kind,
                expiresAt: facts.now.addingTimeInterval(facts.requestLifetime), grantEffectiveFrom: nil))
    }
}
