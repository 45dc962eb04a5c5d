import PostgresNIO

/// R15, R16 and R4 read back after the fact: every row's last write has its audit event from that same transaction,
/// every decision and ticket change its message, every approval its grant.
///
/// Since 0053 the commit-time checks of these rules are queued only for writes around the command functions (by
/// `spor_app` or any role but the owner); the owner's own functions are trusted to write their bookkeeping, and this
/// is the net that proves they do. A row's `xmin` is the transaction of its last write, and an audit event or
/// message stamps `txid_current()` (whose low 32 bits are that xid), so each check is one query for the rows that
/// break it. Tests run it after the seed scenarios, the differential test and the concurrency tests.
public enum Bookkeeping {
    /// (what must hold, query for the rows that break it) — one text column, run as the owner.
    public static let checks: [(name: String, query: String)] =
        audited.map { table in
            (
                "R15: every \(table.name) row's last write has an audit event about it from that transaction",
                """
                SELECT '\(table.name) ' || x.\(table.key)::text FROM \(table.name) x
                WHERE NOT EXISTS (SELECT 1 FROM audit_events e WHERE e.subject_type = '\(table.subject)'
                                  AND e.subject_id = x.\(table.key)::text AND (e.transaction_id % 4294967296)::text = x.xmin::text)
                """
            )
        } + [
            (
                "R16: every decided access request told its requester, at their address, in the deciding transaction",
                """
                SELECT 'access request ' || r.id FROM access_requests r JOIN accounts a ON a.id = r.requester_id
                WHERE r.status IN ('approved', 'rejected', 'expired') AND r.approver_kind <> 'automatic'
                  AND NOT EXISTS (SELECT 1 FROM notification_outbox o WHERE o.subject_type = 'access_request'
                                  AND o.subject_id = r.id::text AND o.template = 'request-decided'
                                  AND o.recipient_account_id = r.requester_id AND o.recipient_email = a.email
                                  AND (o.transaction_id % 4294967296)::text = r.xmin::text)
                """
            ),
            (
                "R16: every request filed for the organisation's super users told them in the filing transaction",
                """
                SELECT 'access request ' || e.subject_id FROM audit_events e
                WHERE e.action = 'access-request.submitted' AND e.after ->> 'approverKind' = 'organisation-super-users'
                  AND NOT EXISTS (SELECT 1 FROM notification_outbox o WHERE o.subject_type = 'access_request'
                                  AND o.subject_id = e.subject_id AND o.template = 'request-filed'
                                  AND o.transaction_id = e.transaction_id)
                """
            ),
            (
                "R16: every ticket told its requester it was opened, and a resolved one that it was resolved, in that transaction",
                """
                SELECT 'ticket ' || t.id FROM service_desk_tickets t
                WHERE NOT EXISTS (SELECT 1 FROM notification_outbox o WHERE o.subject_type = 'service_desk_ticket'
                                  AND o.subject_id = t.id::text AND o.template = 'ticket-opened' AND o.recipient_account_id = t.requester_id)
                   OR (t.status = 'resolved' AND NOT EXISTS (
                          SELECT 1 FROM notification_outbox o WHERE o.subject_type = 'service_desk_ticket'
                          AND o.subject_id = t.id::text AND o.template = 'ticket-resolved' AND o.recipient_account_id = t.requester_id
                          AND (o.transaction_id % 4294967296)::text = t.xmin::text))
                """
            ),
            (
                "R16: every decided OMS change request told its requester in the deciding transaction",
                """
                SELECT 'OMS change request ' || c.id FROM oms_change_requests c
                WHERE c.status <> 'pending' AND NOT EXISTS (
                    SELECT 1 FROM notification_outbox o WHERE o.subject_type = 'oms_change_request' AND o.subject_id = c.id::text
                    AND o.template = 'oms-change-request-decided' AND o.recipient_account_id = c.requester_id
                    AND (o.transaction_id % 4294967296)::text = c.xmin::text)
                """
            ),
            (
                "R4: every approved request has its grant",
                """
                SELECT 'access request ' || r.id FROM access_requests r
                WHERE r.status = 'approved' AND NOT EXISTS (SELECT 1 FROM role_assignments g WHERE g.access_request_id = r.id)
                """
            ),
        ]

    /// The tables whose every change is audited (0004, 0014), each with the subject its events name.
    static let audited: [(name: String, key: String, subject: String)] = [
        ("access_requests", "id", "access_request"), ("role_assignments", "id", "role_assignment"),
        ("service_desk_tickets", "id", "service_desk_ticket"), ("oms_change_requests", "id", "oms_change_request"),
        ("organisations", "id", "organisation"), ("accounts", "id", "account"), ("staff_roles", "account_id", "account"),
        ("credentials", "account_id", "account"), ("security_answers", "account_id", "account"),
        ("sessions", "account_id", "account"),
    ]
}

extension Fixture {
    /// The bookkeeping checks that fail on this database, each with (at most ten of) the rows that break it.
    public func bookkeepingFailures() async throws -> [(name: String, rows: [String])] {
        var broken: [(name: String, rows: [String])] = []
        for check in Bookkeeping.checks {
            let rows = try await ownerQuery(PostgresQuery(unsafeSQL: check.query + " LIMIT 10"))
            if !rows.isEmpty { broken.append((check.name, rows)) }
        }
        return broken
    }

    /// The same, one line each: what must hold, then the rows that break it.
    public func brokenBookkeeping() async throws -> [String] {
        try await bookkeepingFailures().map { "\($0.name): \($0.rows.joined(separator: "; "))" }
    }
}
