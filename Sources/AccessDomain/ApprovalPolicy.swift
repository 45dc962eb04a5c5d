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

/// The Swift half of rules R4–R18: pure functions from facts to a decision or a `Refusal`.
public enum ApprovalPolicy {
    /// Who decides a request for `role` given the organisation's active super users now (R5, R8).
    public static func currentApproverKind(role: Role, organisationActiveSuperUsers: Int) -> ApproverKind {
        switch role {
        case .unaffiliatedUser: .automatic
        case .superUser where organisationActiveSuperUsers == 0: .emaServiceDesk
        case .superUser, .industryUser: .organisationSuperUsers
        }
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
