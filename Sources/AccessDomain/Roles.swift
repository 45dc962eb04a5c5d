/// A SPOR role that can be requested through an access request (R4).
public enum Role: String, Sendable, Codable, CaseIterable {
    case unaffiliatedUser = "spor-unaffiliated-user"
    case industryUser = "spor-industry-user"
    case superUser = "spor-industry-super-user"

    /// Whether the role is held in one organisation; false only for the unaffiliated role (R4).
    public var needsOrganisation: Bool {
        switch self {
        case .unaffiliatedUser: false
        case .industryUser, .superUser: true
        }
    }
}

/// An EMA staff role, granted by an administrator command and never through access requests (R4).
public enum StaffRole: String, Sendable, Codable, CaseIterable {
    case serviceDesk = "ema-service-desk"
    case dataSteward = "ema-data-steward"
    case admin = "ema-admin"
}

/// The life cycle of an access request: `pending` then exactly one decided state (R18).
public enum RequestStatus: String, Sendable, Codable, CaseIterable {
    case pending, approved, rejected, cancelled, expired

    /// True for every state but `pending`; decided requests never change again (R18).
    public var isDecided: Bool { self != .pending }
}

/// Who decides an access request (R5, R8).
public enum ApproverKind: String, Sendable, Codable {
    case automatic
    case emaServiceDesk = "ema-service-desk"
    case organisationSuperUsers = "organisation-super-users"
}
