import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// Audit events (R15) and notifications (R16), written inside the command's transaction. The vocabulary is
/// AccessDomain's (`AuditAction`, `AuditSubject`, `NotificationTemplate`), whose raw values the SQL rules expect.
enum Journal {
    /// What an event or a message is about: its kind and id.
    struct Subject: Sendable {
        let type: AuditSubject
        let id: String

        static func account(_ id: AccountID) -> Subject { Subject(type: .account, id: id.description) }
        static func request(_ id: AccessRequestID) -> Subject { Subject(type: .accessRequest, id: String(id.rawValue)) }
        static func assignment(_ id: Int64) -> Subject { Subject(type: .roleAssignment, id: String(id)) }
        static func ticket(_ id: Int64) -> Subject { Subject(type: .serviceDeskTicket, id: String(id)) }
        static func changeRequest(_ id: Int64) -> Subject { Subject(type: .omsChangeRequest, id: String(id)) }
        static func organisation(_ id: OrganisationID) -> Subject { Subject(type: .organisation, id: id.rawValue) }
    }

    static func audit(
        _ connection: PostgresConnection, actor: AccountID?, organisation: OrganisationID?, action: AuditAction,
        subject: Subject, before: [String: String]? = nil, after: [String: String]? = nil, logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
            VALUES (\(organisation?.rawValue), \(actor?.rawValue), \(action.rawValue), \(subject.type.rawValue), \(subject.id),
                    \(json(before))::jsonb, \(json(after))::jsonb)
            """, logger: logger)
    }

    /// One message of the outbox.
    struct Message: Sendable {
        let template: NotificationTemplate
        let subject: String
        let body: String
    }

    static func notify(
        _ connection: PostgresConnection, organisation: OrganisationID?, recipient: AccountID?, email: String,
        _ message: Message, about subject: Subject, logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                             subject_type, subject_id)
            VALUES (\(organisation?.rawValue), \(recipient?.rawValue), \(email), \(message.template.rawValue), \(message.subject),
                    \(message.body), \(subject.type.rawValue), \(subject.id))
            """, logger: logger)
    }

    /// Notifies every active super user of `organisation` (R16), in one statement.
    static func notifySuperUsers(
        _ connection: PostgresConnection, organisation: OrganisationID, _ message: Message, about subject: Subject, logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                             subject_type, subject_id)
            SELECT \(organisation.rawValue), r.account_id, r.email, \(message.template.rawValue), \(message.subject), \(message.body),
                   \(subject.type.rawValue), \(subject.id)
            FROM spor_super_user_recipients(\(organisation.rawValue)) r
            """, logger: logger)
    }

    private static func json(_ object: [String: String]?) -> String? {
        guard let object, let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
