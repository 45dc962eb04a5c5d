import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// Audit events (R15) of the commands that still run as transactions in Swift (administration, accounts); the
/// access-request, ticket and OMS commands audit and queue their messages (R16) in their SQL functions (0021, 0023).
/// The vocabulary is AccessDomain's (`AuditAction`, `AuditSubject`), whose raw values the SQL rules expect.
enum Journal {
    /// What an event or a message is about: its kind and id.
    struct Subject: Sendable {
        let type: AuditSubject
        let id: String

        static func account(_ id: AccountID) -> Subject { Subject(type: .account, id: id.description) }
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

    private static func json(_ object: [String: String]?) -> String? {
        guard let object, let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}
