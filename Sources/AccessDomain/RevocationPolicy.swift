import Foundation

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

extension ApprovalPolicy {
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
}

extension ApprovalPolicy {
    /// Through which channel `actor` removes `holder`'s organisation role (R14): the EMA service desk as such
    /// (which may remove the last super user), the holder dropping their own role, or a super user of the organisation.
    public static func revocationChannel(actor: Actor, holder: AccountID) -> RevocationChannel {
        if actor.staffRoles.contains(.serviceDesk) { return .serviceDesk }
        return holder == actor.id ? .own : .organisation
    }
}
