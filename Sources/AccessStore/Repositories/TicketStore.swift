import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// A service desk ticket asking for the first super user of an organisation (R10).
public struct ServiceDeskTicket: Sendable, Equatable {
    public let id: Int64
    public let organisation: OrganisationID
    public let accessRequest: AccessRequestID
    public let requester: AccountID
    public let subject: String
    public let status: TicketStatus
    public let openedAt: Date
    public let dueAt: Date
    public let resolution: TicketResolution?
    public let resolvedAt: Date?
}

/// The signatory of the SPOR User Affiliation Template Letter.
public struct Signatory: Sendable, Equatable {
    public var name: String
    public var jobTitle: String
    public var email: String
    public var organisation: OrganisationID
    public var hasManagerialAuthority: Bool
    public init(name: String, jobTitle: String, email: String, organisation: OrganisationID, hasManagerialAuthority: Bool) {
        self.name = name
        self.jobTitle = jobTitle
        self.email = email
        self.organisation = organisation
        self.hasManagerialAuthority = hasManagerialAuthority
    }
}

/// Service desk tickets: opened by the requester of a first-super-user request with the affiliation letter (R10);
/// resolved when the service desk decides the request (`AccessRequestStore.decide(channel: .serviceDesk)`).
public struct TicketStore: Sendable {
    public let database: Database
    public let policy: PolicyMode

    public init(database: Database, policy: PolicyMode = .enforced) {
        self.database = database
        self.policy = policy
    }

    var logger: Logger { database.logger }

    /// Opens a ticket for the actor's own pending first-super-user request; due 24 hours later.
    ///
    /// One read of the request (`spor_decision_facts`) for `TicketPolicy`, then one call (`spor_open_ticket`): the
    /// letter stored, the ticket written (the R10 trigger and constraints decide again), audited and acknowledged.
    public func open(
        actor caller: any Caller, request id: AccessRequestID, subject: String, description: String?, signatory: Signatory, letter: Upload
    ) async throws -> ServiceDeskTicket {
        var organisation: OrganisationID?
        if policy == .enforced {
            let facts = try await AccessRequestStore(database: database).facts(caller, id)
            organisation = facts.request.organisation
            _ = try TicketPolicy.validate(
                TicketPolicy.Facts(
                    subject: subject, request: facts.request.snapshot, opener: facts.actor, signatoryOrganisation: signatory.organisation,
                    signatoryHasManagerialAuthority: signatory.hasManagerialAuthority, letter: letter.bytes,
                    letterContentType: letter.contentType)
            ).get()
        }
        guard
            let row = try await database.command(
                """
                SELECT * FROM spor_open_ticket(\(caller.bearerToken), \(id.rawValue), \(subject), \(description), \(signatory.name),
                                               \(signatory.jobTitle), \(signatory.email), \(signatory.organisation.rawValue),
                                               \(signatory.hasManagerialAuthority), \(letter.fileName), \(letter.contentType.rawValue),
                                               \(ByteBuffer(bytes: letter.bytes)))
                """, organisation: organisation)
        else { throw StoreError.ruleViolation(code: "insert-failed", rule: "R10", message: "the ticket was not stored") }
        return try ServiceDeskTicket(row: row.decode(ServiceDeskTicket.Row.self))
    }

    /// A ticket the actor may see (its requester or staff).
    public func ticket(_ id: Int64, actor caller: any Caller) async throws -> ServiceDeskTicket {
        try await database.transaction(as: caller) { connection, actor in try await Self.load(id, connection, logger) }
    }

    static func load(_ id: Int64, _ connection: PostgresConnection, _ logger: Logger) async throws -> ServiceDeskTicket {
        guard
            let row = try await connection.first(
                "SELECT \(unescaped: ServiceDeskTicket.columns) FROM service_desk_tickets WHERE id = \(id)",
                as: ServiceDeskTicket.Row.self, logger: logger)
        else { throw Refusal(.notFound, .r13, "Service desk ticket \(id) not found.") }
        return try ServiceDeskTicket(row: row)
    }
}
