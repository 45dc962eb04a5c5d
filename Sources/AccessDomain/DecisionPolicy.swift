import Foundation

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
    /// R21: the end of access the requester asked for (nil: no end).
    public var accessUntil: Date?

    /// Creates a request snapshot.
    public init(
        id: AccessRequestID, requester: AccountID, role: Role, organisation: OrganisationID?,
        status: RequestStatus, approverKind: ApproverKind, expiresAt: Date?, accessUntil: Date? = nil
    ) {
        self.id = id
        self.requester = requester
        self.role = role
        self.organisation = organisation
        self.status = status
        self.approverKind = approverKind
        self.expiresAt = expiresAt
        self.accessUntil = accessUntil
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
    /// R21: the clock on which a grant's end is judged (the jobs' clock, `now` in production); nil: `now`.
    public var clock: Date?

    /// Creates the facts of one decision.
    public init(
        request: RequestSnapshot, actor: Actor, channel: DecisionChannel, actorIsActiveSuperUser: Bool,
        organisationActiveSuperUsers: Int, hasValidTicket: Bool, now: Date, clock: Date? = nil
    ) {
        self.request = request
        self.actor = actor
        self.channel = channel
        self.actorIsActiveSuperUser = actorIsActiveSuperUser
        self.organisationActiveSuperUsers = organisationActiveSuperUsers
        self.hasValidTicket = hasValidTicket
        self.now = now
        self.clock = clock
    }
}

/// The result of a permitted decision.
public enum DecisionOutcome: Sendable, Equatable {
    /// Grant `grant`; `firstSuperUser` is true when this makes the organisation's first super user (R8).
    case approved(grant: Role, firstSuperUser: Bool)
    /// Reject with the trimmed reason.
    case rejected(reason: String)
}

extension ApprovalPolicy {
    /// Approves or rejects a pending request, re-checking routing at decision time (R8, R10–R13, R18); an approval
    /// may end the grant at `grantUntil`, never later than the requester asked (R21).
    public static func decide(
        _ facts: DecisionFacts, _ action: DecisionAction, grantUntil: Date? = nil
    ) -> Result<DecisionOutcome, Refusal> {
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
            if case .failure(let refusal) = grantEnd(requested: request.accessUntil, chosen: grantUntil, now: facts.clock ?? facts.now) {
                return .failure(refusal)
            }
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
}
