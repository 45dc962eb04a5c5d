import AccessDomain
import Crypto
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
    public func open(
        actor caller: any Caller, request id: AccessRequestID, subject: String, description: String?, signatory: Signatory, letter: Upload
    ) async throws -> ServiceDeskTicket {
        try await database.transaction(as: caller) { connection, actor in
            let request = try await AccessRequestStore.load(id, connection, logger)
            if policy == .enforced {
                _ = try TicketPolicy.validate(
                    TicketPolicy.Facts(
                        subject: subject, request: request.snapshot, opener: actor, signatoryOrganisation: signatory.organisation,
                        signatoryHasManagerialAuthority: signatory.hasManagerialAuthority, letter: letter.bytes,
                        letterContentType: letter.contentType)
                ).get()
            }
            guard let organisation = request.organisation else {
                throw Refusal(.validationFailed, .r10, "Only organisation requests have tickets.", field: "accessRequestId")
            }
            let document = try await Documents.insert(letter, owner: actor, organisation: organisation, connection, logger)
            guard
                let ticketID = try await connection.first(
                    """
                    INSERT INTO service_desk_tickets (organisation_id, access_request_id, requester_id, subject, description,
                        signatory_name, signatory_job_title, signatory_email, signatory_organisation_id,
                        signatory_has_managerial_authority, letter_document_id, due_at)
                    VALUES (\(organisation.rawValue), \(id.rawValue), \(actor.rawValue), \(subject), \(description), \(signatory.name),
                            \(signatory.jobTitle), \(signatory.email), \(signatory.organisation.rawValue),
                            \(signatory.hasManagerialAuthority), \(document), now() + interval '24 hours')
                    RETURNING id
                    """, as: Int64.self, logger: logger)
            else { throw StoreError.ruleViolation(code: "insert-failed", rule: "R10", message: "the ticket was not stored") }
            try await Journal.audit(
                connection,
                actor: actor,
                organisation: organisation,
                action: .ticketOpened,
                subject: .init(type: .serviceDeskTicket, id: String(ticketID)),
                after: ["accessRequest": String(id.rawValue), "subject": subject],
                logger: logger)
            let email = try await AccessRequestStore.email(of: actor, connection, logger)
            try await Journal.notify(
                connection,
                organisation: organisation,
                recipient: actor,
                email: email,
                Journal.Message(
                    template: .ticketOpened, subject: "Service request \(ticketID) received",
                    body: "The EMA service desk received your service request \(ticketID) for access request \(id). It is due within 24 hours."),
                about: .init(type: .serviceDeskTicket, id: String(ticketID)),
                logger: logger)
            return try await Self.load(ticketID, connection, logger)
        }
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

enum Documents {
    /// Stores an upload (type checked again by the table's constraint against the magic bytes); returns its id.
    static func insert(
        _ upload: Upload, owner: AccountID, organisation: OrganisationID?, _ connection: PostgresConnection, _ logger: Logger
    ) async throws -> UUID {
        let id = UUID()
        let digest = ByteBuffer(bytes: SHA256.hash(data: upload.bytes))
        let bytes = ByteBuffer(bytes: upload.bytes)
        try await connection.query(
            """
            INSERT INTO documents (id, organisation_id, owner_id, file_name, content_type, bytes, sha256, size)
            VALUES (\(id), \(organisation?.rawValue), \(owner.rawValue), \(upload.fileName), \(upload.contentType.rawValue), \(bytes),
                    \(digest), \(upload.bytes.count))
            """, logger: logger)
        return id
    }
}
