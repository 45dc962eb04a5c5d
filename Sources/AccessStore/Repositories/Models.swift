import AccessDomain
import Foundation

/// An access request as stored.
public struct AccessRequest: Sendable, Equatable {
    public let id: AccessRequestID
    public let organisation: OrganisationID?
    public let requester: AccountID
    public let role: Role
    public let justification: String?
    public let status: RequestStatus
    public let approverKind: ApproverKind
    public let createdAt: Date
    public let expiresAt: Date?
    public let decidedBy: AccountID?
    public let decidedAt: Date?
    public let decisionReason: String?

    var snapshot: RequestSnapshot {
        RequestSnapshot(
            id: id, requester: requester, role: role, organisation: organisation, status: status,
            approverKind: approverKind, expiresAt: expiresAt)
    }
}

/// A role held (or once held) by an account.
public struct RoleAssignment: Sendable, Equatable {
    public let id: Int64
    public let organisation: OrganisationID?
    public let account: AccountID
    public let role: Role
    public let accessRequest: AccessRequestID?
    public let firstSuperUser: Bool
    public let effectiveFrom: Date
    public let revokedAt: Date?

    var snapshot: AssignmentSnapshot {
        AssignmentSnapshot(holder: account, role: role, organisation: organisation, revoked: revokedAt != nil)
    }
}

/// The result of submitting a request: the request, and the grant when the system approved it at once (R5).
public struct Submission: Sendable, Equatable {
    public let request: AccessRequest
    public let grant: RoleAssignment?
}

/// The result of approving a request.
public struct Decision: Sendable, Equatable {
    public let request: AccessRequest
    public let grant: RoleAssignment?
}
