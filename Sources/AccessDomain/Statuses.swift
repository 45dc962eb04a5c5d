/// The life cycle of an account (R2): pending until its e-mail is verified.
public enum AccountStatus: String, Sendable, Codable, CaseIterable {
    case pending
    case active
    case disabled
}

/// Whether an organisation of the OMS dictionary takes requests (R6).
public enum OrganisationStatus: String, Sendable, Codable, CaseIterable {
    case active
    case inactive
}

/// A service desk ticket is open until the first-super-user request it carries is decided (R10).
public enum TicketStatus: String, Sendable, Codable, CaseIterable {
    case open
    case resolved
}

/// How a resolved ticket ended (R10).
public enum TicketResolution: String, Sendable, Codable, CaseIterable {
    case approved
    case rejected
    /// R19: closed because its request went to the organisation's super users (the organisation got one).
    case delegated
}

/// The life cycle of an OMS change request (R17).
public enum ChangeRequestStatus: String, Sendable, Codable, CaseIterable {
    case pending
    case approved
    case rejected
}
