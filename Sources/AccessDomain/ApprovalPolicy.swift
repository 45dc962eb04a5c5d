import Foundation

/// The account acting on a request, with the EMA staff roles it holds.
public struct Actor: Sendable {
    public let id: AccountID
    public let staffRoles: Set<StaffRole>

    /// Creates an actor; `staffRoles` is empty for industry users.
    public init(id: AccountID, staffRoles: Set<StaffRole>) {
        self.id = id
        self.staffRoles = staffRoles
    }
}

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
    /// The requester already holds this role (in this organisation).
    public var holdsRole: Bool
    public var now: Date
    /// R5: delay before an automatic grant becomes effective.
    public var activationDelay: TimeInterval
    /// R18: how long a pending request lives before it expires.
    public var requestLifetime: TimeInterval

    /// Creates the facts of one submission.
    public init(
        requester: AccountID, accountActive: Bool, securityQuestionsSet: Bool, role: Role,
        organisation: OrganisationID?, organisationExists: Bool, organisationActiveSuperUsers: Int,
        hasPendingRequestForSameRole: Bool, holdsRole: Bool, now: Date, activationDelay: TimeInterval,
        requestLifetime: TimeInterval
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

/// Which API path the decider used: the service desk admin endpoints or the super user approval API.
public enum DecisionChannel: Sendable {
    case serviceDesk, organisation
}

/// What the decider wants to do with a pending request.
public enum DecisionAction: Sendable, Equatable {
    case approve
    case reject(reason: String)
}

/// An access request as loaded by the store.
public struct RequestSnapshot: Sendable, Equatable {
    public var id: AccessRequestID
    public var requester: AccountID
    public var role: Role
    public var organisation: OrganisationID?
    public var status: RequestStatus
    public var approverKind: ApproverKind
    public var expiresAt: Date?

    /// Creates a request snapshot.
    public init(
        id: AccessRequestID, requester: AccountID, role: Role, organisation: OrganisationID?,
        status: RequestStatus, approverKind: ApproverKind, expiresAt: Date?
    ) {
        self.id = id
        self.requester = requester
        self.role = role
        self.organisation = organisation
        self.status = status
        self.approverKind = approverKind
        self.expiresAt = expiresAt
    }
}

/// What the store knows, under the organisation lock, when someone decides a request (R8–R13, R18).
public struct DecisionFacts: Sendable {
    public var request: RequestSnapshot
    public var actor: Actor
    public var channel: DecisionChannel
    /// The actor is an active super user of `request.organisation`.
    public var actorIsActiveSuperUser: Bool
    /// Active super users of the organisation now, under the organisation lock (R11).
    public var organisationActiveSuperUsers: Int
    /// R10: a ticket meeting R10 is linked to this request.
    public var hasValidTicket: Bool
    public var now: Date

    /// Creates the facts of one decision.
    public init(
        request: RequestSnapshot, actor: Actor, channel: DecisionChannel, actorIsActiveSuperUser: Bool,
        organisationActiveSuperUsers: Int, hasValidTicket: Bool, now: Date
    ) {
        self.request = request
        self.actor = actor
        self.channel = channel
        self.actorIsActiveSuperUser = actorIsActiveSuperUser
        self.organisationActiveSuperUsers = organisationActiveSuperUsers
        self.hasValidTicket = hasValidTicket
        self.now = now
    }
}

/// The result of a permitted decision.
public enum DecisionOutcome: Sendable, Equatable {
    /// Grant `grant`; `firstSuperUser` is true when this makes the organisation's first super user (R8).
    case approved(grant: Role, firstSuperUser: Bool)
    /// Reject with the trimmed reason.
    case rejected(reason: String)
}

/// A role assignment as loaded by the store.
public struct AssignmentSnapshot: Sendable, Equatable {
    public var holder: AccountID
    public var role: Role
    public var organisation: OrganisationID?
    public var revoked: Bool

    /// Creates an assignment snapshot.
    public init(holder: AccountID, role: Role, organisation: OrganisationID?, revoked: Bool) {
        self.holder = holder
        self.role = role
        self.organisation = organisation
        self.revoked = revoked
    }
}

/// Who revokes: a super user of the organisation, the EMA service desk, or the holder dropping their own role.
public enum RevocationChannel: Sendable {
    case organisation, serviceDesk, own
}

/// What the store knows, under the organisation lock, when someone revokes a role (R13, R14).
public struct RevocationFacts: Sendable {
    public var assignment: AssignmentSnapshot
    public var actor: Actor
    public var channel: RevocationChannel
    /// The actor is an active super user of `assignment.organisation`.
    public var actorIsActiveSuperUser: Bool
    /// Active super users of the organisation, including this assignment if it is an active super-user one.
    public var organisationActiveSuperUsers: Int

    /// Creates the facts of one revocation.
    public init(
        assignment: AssignmentSnapshot, actor: Actor, channel: RevocationChannel, actorIsActiveSuperUser: Bool,
        organisationActiveSuperUsers: Int
    ) {
        self.assignment = assignment
        self.actor = actor
        self.channel = channel
        self.actorIsActiveSuperUser = actorIsActiveSuperUser
        self.organisationActiveSuperUsers = organisationActiveSuperUsers
    }
}

/// The Swift half of rules R4–R18: pure functions from facts to a decision or a `Refusal`.
public enum ApprovalPolicy {
    /// Decides how a new access request starts, or refuses it (R2–R9, R18).
    public static func submit(_ facts: SubmissionFacts) -> Result<SubmissionDecision, Refusal> {
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

    /// Approves or rejects a pending request, re-checking routing at decision time (R8, R10–R13, R18).
    public static func decide(_ facts: DecisionFacts, _ action: DecisionAction) -> Result<DecisionOutcome, Refusal> {
        let request = facts.request
        guard request.status == .pending else {
            return .failure(Refusal(.notPending, .r18, "Request \(request.id) is \(request.status.rawValue); decided requests never change."))
        }
        if let expiresAt = request.expiresAt, expiresAt <= facts.now {
            return .failure(Refusal(.requestExpired, .r18, "Request \(request.id) has expired; the requester may file a new one."))
        }
        guard request.role != .unaffiliatedUser else {
            return .failure(Refusal(.notAuthorised, .r5, "Unaffiliated role requests are approved by the system; nobody decides them."))
        }
        guard facts.actor.id != request.requester else {
            return .failure(Refusal(.selfApproval, .r12, "Nobody approves or rejects their own request."))
        }
        let isFirst = request.role == .superUser && facts.organisationActiveSuperUsers == 0
        switch facts.channel {
        case .serviceDesk:
            guard facts.actor.staffRoles.contains(.serviceDesk) else {
                return .failure(Refusal(.notAuthorised, .r8, "Only the EMA service desk decides first super user requests."))
            }
            guard isFirst else {
                return .failure(
                    Refusal(.delegatedToOrganisation, .r11, "The organisation has an active super user; its super users decide this request."))
            }
            if action == .approve && !facts.hasValidTicket {
                return .failure(
                    Refusal(
                        .ticketRequired, .r10, "Link a service desk ticket with the signed SPOR User Affiliation Template Letter before approving."))
            }
        case .organisation:
            guard facts.actorIsActiveSuperUser else {
                return .failure(Refusal(.notFound, .r13, "Access request \(request.id) not found."))
            }
            guard !isFirst else {
                return .failure(Refusal(.firstSuperUserNeedsEMA, .r8, "The organisation's first super user is approved by the EMA service desk."))
            }
        }
        switch action {
        case .approve:
            return .success(.approved(grant: request.role, firstSuperUser: isFirst))
        case .reject(let reason):
            let trimmed = reason.trimmingCharacters(in: .whitespacesAndNewlines)
            guard !trimmed.isEmpty else {
                return .failure(Refusal(.reasonRequired, .r18, "Give the requester a reason for the rejection."))
            }
            return .success(.rejected(reason: trimmed))
        }
    }

    /// True when a pending request's recorded approvers are no longer the right ones (R11): routing is decided again
    /// at decision time — an EMA request once the organisation has a super user goes to its super users, and a
    /// super-user request of an organisation that has lost its last super user goes back to the EMA service desk.
    public static func rerouteNeeded(_ facts: DecisionFacts) -> Bool {
        let request = facts.request
        return request.status == .pending && request.role != .unaffiliatedUser
            && request.approverKind != currentApproverKind(role: request.role, organisationActiveSuperUsers: facts.organisationActiveSuperUsers)
    }

    /// Who decides a request for `role` given the organisation's active super users now (R5, R8).
    public static func currentApproverKind(role: Role, organisationActiveSuperUsers: Int) -> ApproverKind {
        switch role {
        case .unaffiliatedUser: .automatic
        case .superUser where organisationActiveSuperUsers == 0: .emaServiceDesk
        case .superUser, .industryUser: .organisationSuperUsers
        }
    }

    /// Lets the requester withdraw their own pending request (R13, R18).
    public static func cancel(request: RequestSnapshot, actor: AccountID) -> Result<Void, Refusal> {
        guard actor == request.requester else {
            return .failure(Refusal(.notFound, .r13, "Access request \(request.id) not found."))
        }
        guard request.status == .pending else {
            return .failure(Refusal(.notPending, .r18, "Request \(request.id) is \(request.status.rawValue); decided requests never change."))
        }
        return .success(())
    }

    /// Allows expiring a request only when it is pending and past its expiry (R18).
    public static func expire(request: RequestSnapshot, now: Date) -> Result<Void, Refusal> {
        guard request.status == .pending, let expiresAt = request.expiresAt, expiresAt <= now else {
            return .failure(Refusal(.notPending, .r18, "Request \(request.id) is not a pending request past its expiry."))
        }
        return .success(())
    }

    /// Checks who may revoke a role assignment and protects the organisation's last super user (R13, R14).
    public static func revoke(_ facts: RevocationFacts) -> Result<Void, Refusal> {
        let assignment = facts.assignment
        guard !assignment.revoked else {
            return .failure(Refusal(.notFound, .r14, "The role \(assignment.role.rawValue) is already revoked; nothing to revoke."))
        }
        switch facts.channel {
        case .own:
            guard facts.actor.id == assignment.holder else {
                return .failure(Refusal(.notFound, .r13, "Role assignment not found."))
            }
        case .organisation:
            guard facts.actorIsActiveSuperUser else {
                return .failure(Refusal(.notFound, .r13, "Role assignment not found."))
            }
        case .serviceDesk:
            guard facts.actor.staffRoles.contains(.serviceDesk) else {
                return .failure(Refusal(.notAuthorised, .r14, "Only the EMA service desk revokes roles through the admin endpoints."))
            }
        }
        if assignment.role == .superUser && facts.organisationActiveSuperUsers <= 1 && facts.channel != .serviceDesk {
            return .failure(
                Refusal(.lastSuperUser, .r14, "This is the organisation's last active super user; only the EMA service desk can remove it."))
        }
        return .success(())
    }

    /// Only holders of an effective SPOR role may file OMS change requests (R17).
    public static func canFileOMSChangeRequest(hasEffectiveSPORRole: Bool) -> Result<Void, Refusal> {
        hasEffectiveSPORRole
            ? .success(())
            : .failure(Refusal(.noEffectiveRole, .r17, "Request a SPOR role and wait until it is effective before asking to add an organisation."))
    }

    /// Only EMA data stewards decide OMS change requests (R17).
    public static func canDecideOMSChangeRequest(actor: Actor) -> Result<Void, Refusal> {
        actor.staffRoles.contains(.dataSteward)
            ? .success(())
            : .failure(Refusal(.notAuthorised, .r17, "Only an EMA data steward decides OMS change requests."))
    }

    /// Parses a requested role name; staff role names and unknown names are refused (R4).
    public static func requestableRole(_ name: String) -> Result<Role, Refusal> {
        if let role = Role(rawValue: name) { return .success(role) }
        if let staff = StaffRole(rawValue: name) {
            return .failure(
                Refusal(.staffRoleNotRequestable, .r4, "\(staff.rawValue) is granted by an administrator, never through an access request."))
        }
        let names = Role.allCases.map(\.rawValue).joined(separator: ", ")
        return .failure(Refusal(.staffRoleNotRequestable, .r4, "\(name) is not a requestable role; use one of \(names)."))
    }
}
