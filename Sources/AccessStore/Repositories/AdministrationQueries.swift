import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// Read models of the administration endpoints: organisation members, service desk tickets and letters, OMS change
/// requests, audit events and the notification outbox. Every read runs as the caller (`Database.transaction(actor:)`),
/// so row-level security applies (R13); the explicit checks below only turn "you may not see this" into not-found.
public struct AdministrationQueries: Sendable {
    public let database: Database
    public init(database: Database) { self.database = database }
    var logger: Logger { database.logger }

    // MARK: Organisation members (R13, R14)

    /// A member of an organisation: an account with active role assignments there.
    public struct Member: Sendable, Equatable {
        public let account: AccountID
        public let email: String
        public let displayName: String
        public let assignments: [RoleAssignment]
        /// The keyset of the member list: the id of the member's oldest active assignment in the organisation.
        public let cursorKey: Int64
    }

    /// The members of `organisation`, newest first, for its active super users and staff (anyone else: not found).
    public func members(actor caller: any Caller, organisation: OrganisationID, before: Int64?, limit: Int) async throws -> [Member] {
        try await database.transaction(as: caller) { connection, _ in
            try await Self.requireOrganisationVisible(organisation, connection, logger)
            let rows = try await connection.all(
                """
                SELECT a.id, a.email, a.display_name, min(r.id)
                FROM role_assignments r JOIN accounts a ON a.id = r.account_id
                WHERE r.organisation_id = \(organisation.rawValue) AND r.revoked_at IS NULL AND (r.ends_at IS NULL OR r.ends_at > spor_job_now())
                GROUP BY a.id, a.email, a.display_name
                HAVING \(before)::bigint IS NULL OR min(r.id) < \(before)
                ORDER BY min(r.id) DESC LIMIT \(limit)
                """, as: (UUID, String, String, Int64).self, logger: logger)
            guard !rows.isEmpty else { return [] }
            let assignments = try await connection.all(
                """
                SELECT \(unescaped: RoleAssignment.columns) FROM role_assignments
                WHERE organisation_id = \(organisation.rawValue) AND revoked_at IS NULL AND (ends_at IS NULL OR ends_at > spor_job_now()) AND account_id = ANY(\(rows.map(\.0)))
                ORDER BY id
                """, as: RoleAssignment.Row.self, logger: logger
            ).map(RoleAssignment.init(row:))
            let byAccount = Dictionary(grouping: assignments, by: \.account)
            return rows.map { row in
                let account = AccountID(row.0)
                return Member(
                    account: account, email: row.1, displayName: row.2, assignments: byAccount[account] ?? [], cursorKey: row.3)
            }
        }
    }

    /// The active assignment of `role` held by `account` in `organisation`, as far as the actor may see it (R13).
    public func activeAssignment(
        actor caller: any Caller, account: AccountID, role: Role, organisation: OrganisationID
    ) async throws -> Int64 {
        let found = try await database.transaction(as: caller) { connection, actor in
            try await connection.first(
                """
                SELECT id FROM role_assignments
                WHERE account_id = \(account.rawValue) AND role = \(role.rawValue) AND organisation_id = \(organisation.rawValue)
                  AND revoked_at IS NULL AND (ends_at IS NULL OR ends_at > spor_job_now())
                """, as: Int64.self, logger: logger)
        }
        guard let found else { throw Refusal(.notFound, .r13, "\(account) holds no \(role.rawValue) role in \(organisation).") }
        return found
    }

    /// The actor's effective staff roles.
    public func staffRoles(of caller: any Caller) async throws -> Set<StaffRole> {
        try await database.transaction(as: caller) { connection, _ in
            try await AccessRequestStore.actorStaffRoles(connection, logger)
        }
    }

    // MARK: Service desk (R10)

    /// Tickets for the service desk (anyone else: not found), newest first. `overdue`: true for open tickets past
    /// their due time only, false for all others.
    public func tickets(
        actor caller: any Caller, status: TicketStatus?, overdue: Bool?, before: Int64?, limit: Int
    ) async throws -> [ServiceDeskTicket] {
        try await database.transaction(as: caller) { connection, _ in
            try await Self.requireStaffRole(.serviceDesk, connection, logger)
            return try await connection.all(
                """
                SELECT \(unescaped: ServiceDeskTicket.columns) FROM service_desk_tickets
                WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
                  AND (\(overdue)::boolean IS NULL OR (status = 'open' AND due_at < now()) = \(overdue))
                  AND (\(before)::bigint IS NULL OR id < \(before))
                ORDER BY id DESC LIMIT \(limit)
                """, as: ServiceDeskTicket.Row.self, logger: logger
            ).map(ServiceDeskTicket.init(row:))
        }
    }

    /// The affiliation letter of a ticket, for the service desk (anyone else: not found).
    public func letter(actor caller: any Caller, ticket id: Int64) async throws -> Upload {
        try await database.transaction(as: caller) { connection, _ in
            try await Self.requireStaffRole(.serviceDesk, connection, logger)
            guard
                let row = try await connection.first(
                    """
                    SELECT d.file_name, d.content_type, d.bytes
                    FROM service_desk_tickets t JOIN documents d ON d.id = t.letter_document_id
                    WHERE t.id = \(id)
                    """, as: (String, String, ByteBuffer).self, logger: logger)
            else { throw Refusal(.notFound, .r13, "Service desk ticket \(id) not found.") }
            var bytes = row.2
            guard let type = DocumentType(rawValue: row.1) else {
                throw Refusal(.notFound, .r13, "The letter of ticket \(id) has a type this server does not serve.")
            }
            return Upload(fileName: row.0, contentType: type, bytes: bytes.readBytes(length: bytes.readableBytes) ?? [])
        }
    }

    // MARK: OMS change requests (R17)

    /// An OMS change request with everything a list shows.
    public struct ChangeRequest: Sendable, Equatable {
        public let id: Int64
        public let requester: AccountID
        public let name: String
        public let country: String
        public let city: String
        public let address: String?
        public let justification: String?
        public let status: ChangeRequestStatus
        public let createdAt: Date
        public let decidedAt: Date?
        public let decisionReason: String?
        public let organisation: OrganisationID?
        public let documents: Int
    }

    /// Change requests the actor may see (their own; staff: all), newest first.
    public func changeRequests(actor caller: any Caller, status: ChangeRequestStatus?, before: Int64?, limit: Int) async throws -> [ChangeRequest] {
        try await database.transaction(as: caller) { connection, actor in
            try await connection.all(
                """
                SELECT \(unescaped: ChangeRequest.columns) FROM oms_change_requests c
                WHERE (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue)) AND (\(before)::bigint IS NULL OR id < \(before))
                ORDER BY id DESC LIMIT \(limit)
                """, as: ChangeRequest.Row.self, logger: logger
            ).map(ChangeRequest.init(row:))
        }
    }

    /// One change request the actor may see (R13: otherwise not found).
    public func changeRequest(actor caller: any Caller, id: Int64) async throws -> ChangeRequest {
        try await database.transaction(as: caller) { connection, actor in
            guard
                let row = try await connection.first(
                    "SELECT \(unescaped: ChangeRequest.columns) FROM oms_change_requests c WHERE id = \(id)",
                    as: ChangeRequest.Row.self, logger: logger)
            else { throw Refusal(.notFound, .r13, "OMS change request \(id) not found.") }
            return try ChangeRequest(row: row)
        }
    }

    // MARK: Audit events (R15)

    /// One audit event; `before` and `after` are the stored JSON text.
    public struct AuditEvent: Sendable, Equatable {
        public let id: Int64
        public let occurredAt: Date
        public let actor: AccountID?
        public let action: String
        public let organisation: String?
        public let subjectType: String
        public let subjectID: String
        public let before: String?
        public let after: String?
    }

    /// Audit events the actor may see (staff: all; super users: their organisations'; everyone: their own events
    /// outside any organisation), newest first. Naming an organisation the actor may not see is not found (R13).
    /// `account` keeps the events by or about that account.
    public func auditEvents(
        actor caller: any Caller, organisation: OrganisationID?, account: AccountID?, from: Date?, to: Date?, before: Int64?, limit: Int
    ) async throws -> [AuditEvent] {
        try await database.transaction(as: caller) { connection, _ in
            if let organisation {
                try await Self.requireOrganisationVisible(organisation, connection, logger)
            }
            let accountText = account?.description
            let rows = try await connection.all(
                """
                SELECT id, occurred_at, actor_id, action, organisation_id, subject_type, subject_id, before::text, after::text
                FROM audit_events
                WHERE (\(organisation?.rawValue)::text IS NULL OR organisation_id = \(organisation?.rawValue))
                  AND (\(accountText)::text IS NULL OR actor_id::text = \(accountText) OR subject_id = \(accountText)
                       OR before->>'account' = \(accountText) OR after->>'account' = \(accountText))
                  AND (\(from)::timestamptz IS NULL OR occurred_at >= \(from))
                  AND (\(to)::timestamptz IS NULL OR occurred_at < \(to))
                  AND (\(before)::bigint IS NULL OR id < \(before))
                ORDER BY id DESC LIMIT \(limit)
                """, as: (Int64, Date, UUID?, String, String?, String, String, String?, String?).self, logger: logger)
            return rows.map {
                AuditEvent(
                    id: $0.0, occurredAt: $0.1, actor: $0.2.map(AccountID.init), action: $0.3, organisation: $0.4,
                    subjectType: $0.5, subjectID: $0.6, before: $0.7, after: $0.8)
            }
        }
    }

    // MARK: Notification outbox (R16)

    /// A message and its delivery state (no body: verification e-mails carry a secret link).
    public struct Notification: Sendable, Equatable {
        public enum Status: String, Sendable { case queued, sent, dead }
        public let id: Int64
        public let template: String
        public let recipient: String
        public let subject: String
        public let createdAt: Date
        public let deliveredAt: Date?
        public let deadAt: Date?
        public let attempts: Int
        public let lastError: String?
        public let nextAttemptAt: Date
        public var status: Status { deliveredAt != nil ? .sent : deadAt != nil ? .dead : .queued }
    }

    static let notificationColumns =
        "id, template, recipient_email, subject, created_at, delivered_at, dead_at, attempts, last_error, next_attempt_at"

    static func notification(_ row: PostgresRow) throws -> Notification {
        let (id, template, recipient, subject, created, delivered, dead, attempts, error, next) = try row.decode(
            (Int64, String, String, String, Date, Date?, Date?, Int32, String?, Date).self)
        return Notification(
            id: id, template: template, recipient: recipient, subject: subject, createdAt: created, deliveredAt: delivered,
            deadAt: dead, attempts: Int(attempts), lastError: error, nextAttemptAt: next)
    }

    /// The outbox for EMA administrators (anyone else: not found), newest first; `recipientEmail` (case-insensitive)
    /// or `recipientAccount` narrow it. One statement (`spor_admin_notifications` checks the token's account).
    public func notifications(
        actor caller: any Caller, recipientEmail: String?, recipientAccount: AccountID?, before: Int64?, limit: Int
    ) async throws -> [Notification] {
        try await database.rows(
            Self.notificationsQuery(caller, recipientEmail: recipientEmail, recipientAccount: recipientAccount, before: before, limit: limit)
        ).map(Self.notification)
    }

    /// One page of the outbox through `spor_admin_notifications`, which checks the token's account.
    static func notificationsQuery(
        _ caller: any Caller, recipientEmail: String?, recipientAccount: AccountID?, before: Int64?, limit: Int
    ) -> PostgresQuery {
        """
        SELECT \(unescaped: notificationColumns)
        FROM spor_admin_notifications(\(caller.bearerToken), \(recipientEmail), \(recipientAccount?.rawValue), \(before),
                                      \(Int32(clamping: limit)))
        """
    }

    /// An EMA administrator puts a dead message back in the queue (audited); not found for anyone else or an
    /// unknown message, `not-dead` for a message that is queued or sent.
    public func requeueNotification(actor caller: any Caller, id: Int64) async throws -> Notification {
        // One transaction: the requeue holds the row until COMMIT, so a worker's claim (SKIP LOCKED) cannot send it
        // again before the message is read back as the requeue left it.
        try await database.transaction { connection in
            let requeued = try await connection.first(
                "SELECT spor_requeue_notification(\(caller.bearerToken), \(id))", as: Bool.self, logger: logger)
            guard requeued == true else {
                throw Refusal(.notDead, .r16, "Notification \(id) is not dead: it is queued or sent already.")
            }
            var found: [Notification] = []
            let rows = try await connection.query(
                Self.notificationsQuery(caller, recipientEmail: nil, recipientAccount: nil, before: id + 1, limit: 1), logger: logger)
            for try await row in rows { found.append(try Self.notification(row)) }
            guard let message = found.first, message.id == id else {
                throw Refusal(.notFound, .r16, "Notification \(id) does not exist.")
            }
            return message
        }
    }

    // MARK: Checks

    /// The transaction's actor is staff, or an active super user of `organisation`; anyone else (and an unknown
    /// organisation): not found (R13).
    static func requireOrganisationVisible(
        _ organisation: OrganisationID, _ connection: PostgresConnection, _ logger: Logger
    ) async throws {
        let allowed =
            try await connection.first(
                """
                SELECT EXISTS (SELECT 1 FROM organisations WHERE id = \(organisation.rawValue))
                   AND (spor_actor_is_staff() OR spor_actor_is_super_user_of(\(organisation.rawValue)))
                """, as: Bool.self, logger: logger) ?? false
        guard allowed else { throw Refusal(.notFound, .r13, "Organisation \(organisation) has nothing for you here.") }
    }

    /// The transaction's actor holds `role`; otherwise not found, so the endpoint is not revealed.
    static func requireStaffRole(_ role: StaffRole, _ connection: PostgresConnection, _ logger: Logger) async throws {
        let holds =
            try await connection.first(
                "SELECT spor_actor_has_staff_role(\(role.rawValue))", as: Bool.self, logger: logger) ?? false
        guard holds else { throw Refusal(.notFound, .r13, "There is nothing at this address.") }
    }
}

extension AdministrationQueries.ChangeRequest {
    /// The columns `init(row:)` reads, in order (the table is aliased `c`).
    static let columns = """
        id, requester_id, name, country, city, address, justification, status, created_at, decided_at, decision_reason,
        organisation_id, (SELECT count(*) FROM oms_change_request_documents d WHERE d.change_request_id = c.id)
        """
    typealias Row = (Int64, UUID, String, String, String, String?, String?, String, Date, Date?, String?, String?, Int64)

    init(row: Row) throws {
        guard let status = ChangeRequestStatus(rawValue: row.7) else {
            throw StoreError.constraintViolation(constraint: "oms_change_requests", message: "unknown status \(row.7)")
        }
        self.init(
            id: row.0, requester: AccountID(row.1), name: row.2, country: row.3, city: row.4, address: row.5, justification: row.6,
            status: status, createdAt: row.8, decidedAt: row.9, decisionReason: row.10, organisation: row.11.flatMap(OrganisationID.init),
            documents: Int(row.12))
    }
}
