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
    /// R21: the end of access the requester asked for (nil: no end).
    public let accessUntil: Date?

    var snapshot: RequestSnapshot {
        RequestSnapshot(
            id: id, requester: requester, role: role, organisation: organisation, status: status,
            approverKind: approverKind, expiresAt: expiresAt, accessUntil: accessUntil)
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
    /// R21: when the assignment stops being active (nil: no end).
    public let endsAt: Date?

    /// The assignment as the revocation policy sees it at `now`: one past its end counts as ended, like a revoked one
    /// (R21).
    func snapshot(at now: Date) -> AssignmentSnapshot {
        AssignmentSnapshot(
            holder: account, role: role, organisation: organisation,
            revoked: !ApprovalPolicy.isActive(revokedAt: revokedAt, endsAt: endsAt, now: now))
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

// MARK: Rows: one list of columns per model, so a list is one query and a single read the same query.

extension AccessRequest {
    /// The columns `init(row:)` reads, in order (from code, never from input).
    static let columns = """
        id, organisation_id, requester_id, role, justification, status, approver_kind, created_at, expires_at, decided_by,
        decided_at, decision_reason, access_until
        """
    typealias Row = (Int64, String?, UUID, String, String?, String, String, Date, Date?, UUID?, Date?, String?, Date?)

    init(row: Row) throws {
        let (id, organisation, requester, role, justification, status, kind, createdAt, expiresAt, decidedBy, decidedAt, reason, until) = row
        guard let role = Role(rawValue: role), let status = RequestStatus(rawValue: status), let kind = ApproverKind(rawValue: kind)
        else { throw StoreError.constraintViolation(constraint: "access_requests", message: "unknown role, status or approver kind") }
        self.init(
            id: AccessRequestID(id), organisation: organisation.flatMap(OrganisationID.init), requester: AccountID(requester), role: role,
            justification: justification, status: status, approverKind: kind, createdAt: createdAt, expiresAt: expiresAt,
            decidedBy: decidedBy.map(AccountID.init), decidedAt: decidedAt, decisionReason: reason, accessUntil: until)
    }
}

extension RoleAssignment {
    /// The columns `init(row:)` reads, in order.
    static let columns = "id, organisation_id, account_id, role, access_request_id, first_super_user, effective_from, revoked_at, ends_at"
    typealias Row = (Int64, String?, UUID, String, Int64?, Bool, Date, Date?, Date?)

    init(row: Row) throws {
        let (id, organisation, account, role, request, first, effectiveFrom, revokedAt, endsAt) = row
        guard let role = Role(rawValue: role)
        else { throw StoreError.constraintViolation(constraint: "role_assignments", message: "unknown role") }
        self.init(
            id: id, organisation: organisation.flatMap(OrganisationID.init), account: AccountID(account), role: role,
            accessRequest: request.map(AccessRequestID.init), firstSuperUser: first, effectiveFrom: effectiveFrom, revokedAt: revokedAt,
            endsAt: endsAt)
    }
}

extension ServiceDeskTicket {
    /// The columns `init(row:)` reads, in order.
    static let columns = "id, organisation_id, access_request_id, requester_id, subject, status, opened_at, due_at, resolution, resolved_at"
    typealias Row = (Int64, String, Int64, UUID, String, String, Date, Date, String?, Date?)

    init(row: Row) throws {
        guard let organisation = OrganisationID(row.1), let status = TicketStatus(rawValue: row.5) else {
            throw StoreError.constraintViolation(constraint: "service_desk_tickets", message: "unknown organisation or status")
        }
        self.init(
            id: row.0, organisation: organisation, accessRequest: AccessRequestID(row.2), requester: AccountID(row.3),
            subject: row.4, status: status, openedAt: row.6, dueAt: row.7, resolution: row.8.flatMap(TicketResolution.init),
            resolvedAt: row.9)
    }
}

/// A stored enum value as its Swift case; the table's CHECK constraint keeps unknown values out, so one is a
/// broken database, reported as such rather than guessed.
func stored<T: RawRepresentable>(_ raw: String, in table: String) throws -> T where T.RawValue == String {
    guard let value = T(rawValue: raw) else {
        throw StoreError.constraintViolation(constraint: table, message: "unknown value \(raw)")
    }
    return value
}
