import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// Audit events (R15) and notifications (R16), written inside the command's transaction.
enum Journal {
    static func audit(
        _ connection: PostgresConnection, actor: AccountID?, organisation: OrganisationID?, action: String,
        subjectType: String, subjectID: String, before: [String: String]? = nil, after: [String: String]? = nil,
        logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id, before, after)
            VALUES (\(organisation?.rawValue), \(actor?.uuid), \(action), \(subjectType), \(subjectID),
                    \(json(before))::jsonb, \(json(after))::jsonb)
            """, logger: logger)
    }

    static func notify(
        _ connection: PostgresConnection, organisation: OrganisationID?, recipient: AccountID?, email: String,
        template: String, subject: String, body: String, subjectType: String, subjectID: String, logger: Logger
    ) async throws {
        try await connection.query(
            """
            INSERT INTO notification_outbox (organisation_id, recipient_account_id, recipient_email, template, subject, body,
                                             subject_type, subject_id)
            VALUES (\(organisation?.rawValue), \(recipient?.uuid), \(email), \(template), \(subject), \(body),
                    \(subjectType), \(subjectID))
            """, logger: logger)
    }

    /// Notifies every active super user of `organisation` (R16).
    static func notifySuperUsers(
        _ connection: PostgresConnection, organisation: OrganisationID, template: String, subject: String, body: String,
        subjectType: String, subjectID: String, logger: Logger
    ) async throws {
        let recipients = try await connection.all(
            "SELECT account_id, email FROM spor_super_user_recipients(\(organisation.rawValue))", as: (UUID, String).self, logger: logger)
        for (account, email) in recipients {
            try await notify(
                connection, organisation: organisation, recipient: AccountID(account), email: email, template: template,
                subject: subject, body: body, subjectType: subjectType, subjectID: subjectID, logger: logger)
        }
    }

    private static func json(_ object: [String: String]?) -> String? {
        guard let object, let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
