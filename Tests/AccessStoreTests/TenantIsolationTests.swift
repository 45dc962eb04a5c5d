import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// R13 in SQL: row-level security alone keeps organisations apart. Every query below runs straight in SQL as the
// application role (Fixture.asApplication), without any Swift store or policy; the owner only arranges and inspects.

/// One organisation's world: a super user (first, via the service desk: ticket and letter), a member, a pending
/// request, an OMS change request with a document, sessions and idempotency keys, and the audit trail and outbox
/// rows all of that wrote.
private struct Tenant: Sendable {
    let organisation: OrganisationID
    let superUser: TestAccount
    let member: TestAccount
    let applicant: TestAccount
    let pending: Int64
    let changeRequest: Int64
    var people: [UUID] { [superUser, member, applicant].map(\.pgUUID) }
}

extension Fixture {
    fileprivate func tenant(_ name: String) async throws -> Tenant {
        let organisation = try await organisation(name)
        let superUser = try await superUser(of: organisation)
        let member = try await user("member")
        let joined = try await requests.submit(actor: member, role: .industryUser, organisation: organisation, justification: nil)
        _ = try await requests.decide(actor: superUser, request: joined.request.id, channel: .organisation, action: .approve)
        let applicant = try await user("applicant")
        let pending = try await requests.submit(actor: applicant, role: .industryUser, organisation: organisation, justification: nil)
        let change = try await oms.file(
            actor: member, name: "\(name) Subsidiary", country: "NL", city: "Utrecht", address: nil, justification: "new site",
            documents: [Upload(fileName: "kvk.pdf", contentType: .pdf, bytes: Fixture.pdf)])
        for person in [superUser, member, applicant] {
            // Each person has a session already (they signed in); an idempotency key too.
            try await asApplication(actor: person) { conn in
                let token = ByteBuffer(bytes: (0..<32).map { _ in UInt8.random(in: 0...255) })
                try await conn.query("SELECT outcome FROM spor_idempotency_claim('key-1', sha256(\(token)))", logger: TestDatabase.logger)
            }
        }
        return Tenant(
            organisation: organisation, superUser: superUser, member: member, applicant: applicant,
            pending: pending.request.id.rawValue, changeRequest: change.id)
    }

    /// Rows of a one-column text query run as the application role acting for `actor` (one transaction).
    fileprivate func rows(as actor: TestAccount?, _ query: PostgresQuery) async throws -> [String] {
        let rows = Collected<String>()
        try await asApplication(actor: actor) { conn in rows.append(contentsOf: try await conn.texts(query)) }
        return rows.values
    }

    /// How many rows the actor sees; a table the application role may not read at all (sessions, credentials,
    /// verification tokens: 42501) shows it none.
    fileprivate func count(as actor: TestAccount?, _ query: PostgresQuery) async throws -> Int {
        let values: [String]
        do {
            values = try await rows(as: actor, query)
        } catch StoreError.database(let state, _) where state == "42501" {
            return 0
        }
        guard values.count == 1, let count = Int(values[0]) else { throw FixtureError("not a count: \(values)") }
        return count
    }

    fileprivate func ownerCount(_ query: PostgresQuery) async throws -> Int {
        let values = try await ownerQuery(query)
        guard values.count == 1, let count = Int(values[0]) else { throw FixtureError("not a count: \(values)") }
        return count
    }
}

/// Every table holding tenant or personal data, and how to find the rows that belong to `tenant`.
private func ownedRows(of tenant: Tenant) -> [(table: String, count: PostgresQuery)] {
    let org = tenant.organisation.rawValue
    let people = tenant.people
    return [
        ("access_requests", "SELECT count(*)::text FROM access_requests WHERE organisation_id = \(org) OR requester_id = ANY(\(people))"),
        ("role_assignments", "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org) OR account_id = ANY(\(people))"),
        ("service_desk_tickets", "SELECT count(*)::text FROM service_desk_tickets WHERE organisation_id = \(org) OR requester_id = ANY(\(people))"),
        ("documents", "SELECT count(*)::text FROM documents WHERE organisation_id = \(org) OR owner_id = ANY(\(people))"),
        ("audit_events", "SELECT count(*)::text FROM audit_events WHERE organisation_id = \(org) OR actor_id = ANY(\(people))"),
        (
            "notification_outbox",
            "SELECT count(*)::text FROM notification_outbox WHERE organisation_id = \(org) OR recipient_account_id = ANY(\(people))"
        ),
        ("accounts", "SELECT count(*)::text FROM accounts WHERE id = ANY(\(people))"),
        ("oms_change_requests", "SELECT count(*)::text FROM oms_change_requests WHERE requester_id = ANY(\(people))"),
        (
            "oms_change_request_documents",
            "SELECT count(*)::text FROM oms_change_request_documents WHERE change_request_id = \(tenant.changeRequest)"
        ),
        ("sessions", "SELECT count(*)::text FROM sessions WHERE account_id = ANY(\(people))"),
        ("credentials", "SELECT count(*)::text FROM credentials WHERE account_id = ANY(\(people))"),
        ("security_answers", "SELECT count(*)::text FROM security_answers WHERE account_id = ANY(\(people))"),
        ("verification_tokens", "SELECT count(*)::text FROM verification_tokens WHERE account_id = ANY(\(people))"),
        ("idempotency_keys", "SELECT count(*)::text FROM idempotency_keys WHERE account_id = ANY(\(people))"),
    ]
}

/// Every table the application role can read that holds tenant, personal or staff data (R1's organisations and the
/// settings row are public).
private let privateTables = [
    "accounts", "credentials", "verification_tokens", "security_answers", "sessions", "staff_roles", "access_requests",
    "role_assignments", "documents", "service_desk_tickets", "oms_change_requests", "oms_change_request_documents",
    "audit_events", "notification_outbox", "idempotency_keys",
]

@Suite("R13 tenant isolation by row-level security (as the application role)")
struct TenantIsolationTests {
    @Test("R13: a super user sees none of another organisation's rows, in any tenant table")
    func superUserSeesNothingOfOtherOrganisation() async throws {
        try await Fixture.with { f in
            let a = try await f.tenant("Alpha Pharma")
            let b = try await f.tenant("Beta Biotech")
            for (table, query) in ownedRows(of: b) {
                // The rows exist (so the test can fail) ...
                #expect(try await f.ownerCount(query) > 0, "\(table): B has no rows to hide")
                // ... and A's super user sees none of them.
                #expect(try await f.count(as: a.superUser, query) == 0, "\(table): A's super user sees B's rows")
            }
            // Not blind either: A's super user sees A's requests, members, assignments and audit trail.
            let org = a.organisation.rawValue
            for query: PostgresQuery in [
                "SELECT count(*)::text FROM access_requests WHERE organisation_id = \(org)",
                "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org)",
                "SELECT count(*)::text FROM audit_events WHERE organisation_id = \(org)",
                "SELECT count(*)::text FROM accounts WHERE id = ANY(\(a.people))",
            ] {
                let all = try await f.ownerCount(query)
                #expect(all > 0)
                #expect(try await f.count(as: a.superUser, query) == all, "\(query.sql)")
            }
            #expect(
                try await f.rows(as: a.superUser, "SELECT id::text FROM access_requests WHERE status = 'pending'")
                    == [String(a.pending)])
            #expect(try await f.count(as: a.superUser, "SELECT count(*)::text FROM staff_roles") == 0)
        }
    }

    @Test("R13: a super user changes none of another organisation's rows")
    func superUserChangesNothingOfOtherOrganisation() async throws {
        try await Fixture.with { f in
            let a = try await f.tenant("Alpha Pharma")
            let b = try await f.tenant("Beta Biotech")
            let actor = a.superUser.pgUUID
            let org = b.organisation.rawValue
            let people = b.people
            let fingerprint: PostgresQuery = """
                SELECT md5(concat_ws('|',
                    (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM access_requests t WHERE organisation_id = \(org)),
                    (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM role_assignments t WHERE organisation_id = \(org)),
                    (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM service_desk_tickets t WHERE organisation_id = \(org)),
                    (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM accounts t WHERE id = ANY(\(people))),
                    (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM oms_change_requests t WHERE requester_id = ANY(\(people))),
                    (SELECT string_agg(t::text, ',' ORDER BY t.token_hash) FROM sessions t WHERE account_id = ANY(\(people))),
                    (SELECT string_agg(t::text, ',' ORDER BY t.account_id) FROM credentials t WHERE account_id = ANY(\(people))),
                    (SELECT string_agg(t::text, ',' ORDER BY t.account_id, t.question) FROM security_answers t WHERE account_id = ANY(\(people))),
                    (SELECT string_agg(t::text, ',' ORDER BY t.token_hash) FROM verification_tokens t WHERE account_id = ANY(\(people))),
                    (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM idempotency_keys t WHERE account_id = ANY(\(people)))))
                """
            let before = try await f.ownerQuery(fingerprint)

            // Row-level security hides B's rows from UPDATE and DELETE: nothing matches, nothing changes.
            let hidden: [(String, PostgresQuery)] = [
                (
                    "decide B's request",
                    """
                    UPDATE access_requests SET status = 'rejected', decided_by = \(actor), decision_reason = 'not yours'
                    WHERE id = \(b.pending) RETURNING id::text
                    """
                ),
                (
                    "revoke B's roles",
                    """
                    UPDATE role_assignments SET revoked_at = now(), revoked_by = \(actor)
                    WHERE organisation_id = \(org) RETURNING id::text
                    """
                ),
                (
                    "resolve B's ticket",
                    """
                    UPDATE service_desk_tickets SET status = 'resolved', resolution = 'rejected', resolved_by = \(actor), resolved_at = now()
                    WHERE organisation_id = \(org) RETURNING id::text
                    """
                ),
                ("rename B's people", "UPDATE accounts SET display_name = 'taken over' WHERE id = ANY(\(people)) RETURNING id::text"),
                (
                    "decide B's OMS change",
                    """
                    UPDATE oms_change_requests SET status = 'rejected', decided_by = \(actor), decision_reason = 'no'
                    WHERE requester_id = ANY(\(people)) RETURNING id::text
                    """
                ),
                ("revoke B's sessions", "UPDATE sessions SET revoked_at = now() WHERE account_id = ANY(\(people)) RETURNING account_id::text"),
                (
                    "reset B's passwords",
                    """
                    UPDATE credentials SET password_hash = '$2b$04$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
                    WHERE account_id = ANY(\(people)) RETURNING account_id::text
                    """
                ),
                (
                    "reset B's answers",
                    """
                    UPDATE security_answers SET answer_hash = '$2b$04$aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa'
                    WHERE account_id = ANY(\(people)) RETURNING account_id::text
                    """
                ),
                ("reuse B's tokens", "UPDATE verification_tokens SET used_at = NULL WHERE account_id = ANY(\(people)) RETURNING account_id::text"),
                ("replay B's keys", "UPDATE idempotency_keys SET status_code = 500 WHERE account_id = ANY(\(people)) RETURNING id::text"),
                ("end B's sessions", "DELETE FROM sessions WHERE account_id = ANY(\(people)) RETURNING account_id::text"),
                ("erase B's answers", "DELETE FROM security_answers WHERE account_id = ANY(\(people)) RETURNING account_id::text"),
                ("erase B's keys", "DELETE FROM idempotency_keys WHERE account_id = ANY(\(people)) RETURNING id::text"),
            ]
            for (what, statement) in hidden {
                do {
                    #expect(try await f.rows(as: a.superUser, statement) == [], "\(what)")
                } catch StoreError.database(let state, _) {
                    // Also fine: the application role may not write that table (or column) at all.
                    #expect(state == "42501", "\(what)")
                }
            }
            // Tables the application never updates refuse outright.
            let refused: [(String, PostgresQuery)] = [
                ("B's documents", "UPDATE documents SET file_name = 'x' WHERE owner_id = ANY(\(people))"),
                ("B's audit trail", "UPDATE audit_events SET action = 'nothing.happened' WHERE organisation_id = \(org)"),
                ("B's notifications", "UPDATE notification_outbox SET body = 'x' WHERE organisation_id = \(org)"),
            ]
            for (what, statement) in refused {
                do {
                    try await f.asApplication(actor: a.superUser) { conn in try await conn.query(statement, logger: TestDatabase.logger) }
                    Issue.record("\(what): the update was accepted")
                } catch StoreError.database(let state, _) {
                    #expect(state == "42501", "\(what)")
                }
            }
            // Nor can A's super user place rows into B.
            do {
                try await f.asApplication(actor: a.superUser) { conn in
                    try await conn.query(
                        """
                        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id)
                        VALUES (\(org), \(b.applicant.pgUUID), 'spor-industry-user', 'access-request', \(b.pending))
                        """, logger: TestDatabase.logger)
                }
                Issue.record("a role in B was granted by A's super user")
            } catch let refusal as Refusal {
                #expect(refusal.code == .notAuthorised && refusal.rule == .r4)
            }
            #expect(try await f.ownerQuery(fingerprint) == before)
            #expect(try await f.ownerQuery("SELECT status FROM access_requests WHERE id = \(b.pending)") == ["pending"])
        }
    }

    @Test("R13: with no acting account every private table is empty, while the OMS dictionary (R1) stays public")
    func nobodySeesNothing() async throws {
        try await Fixture.with { f in
            _ = try await f.tenant("Alpha Pharma")
            _ = try await f.tenant("Beta Biotech")
            for table in privateTables {
                let query = PostgresQuery(unsafeSQL: "SELECT count(*)::text FROM \(table)")
                #expect(try await f.ownerCount(query) > 0, "\(table) is empty: nothing to hide")
                #expect(try await f.count(as: nil, query) == 0, "\(table) visible without an acting account")
            }
            #expect(try await f.count(as: nil, "SELECT count(*)::text FROM organisations") == 2)
            // Nor can anyone change anything without an acting account.
            #expect(try await f.rows(as: nil, "UPDATE accounts SET display_name = 'nobody' RETURNING id::text") == [])
            #expect(try await f.rows(as: nil, "UPDATE access_requests SET decision_reason = 'x' RETURNING id::text") == [])
            #expect(try await f.rows(as: nil, "UPDATE role_assignments SET revoke_reason = 'x' RETURNING id::text") == [])
        }
    }

    @Test("R13: staff see every organisation's requests and members")
    func staffSeeEverything() async throws {
        try await Fixture.with { f in
            let a = try await f.tenant("Alpha Pharma")
            let b = try await f.tenant("Beta Biotech")
            let desk = try await f.staff(.serviceDesk)
            for tenant in [a, b] {
                let org = tenant.organisation.rawValue
                for query: PostgresQuery in [
                    "SELECT count(*)::text FROM access_requests WHERE organisation_id = \(org)",
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org)",
                    "SELECT count(*)::text FROM accounts WHERE id = ANY(\(tenant.people))",
                    "SELECT count(*)::text FROM audit_events WHERE organisation_id = \(org)",
                    "SELECT count(*)::text FROM service_desk_tickets WHERE organisation_id = \(org)",
                ] {
                    let all = try await f.ownerCount(query)
                    #expect(all > 0)
                    #expect(try await f.count(as: desk, query) == all, "\(query.sql)")
                }
            }
            #expect(
                try await f.rows(as: desk, "SELECT id::text FROM access_requests WHERE status = 'pending' ORDER BY id")
                    == [String(a.pending), String(b.pending)])
        }
    }

    @Test("R13: a revoked super user no longer sees the organisation")
    func revokedSuperUserSeesNothing() async throws {
        try await Fixture.with { f in
            let a = try await f.tenant("Alpha Pharma")
            let query: PostgresQuery = "SELECT count(*)::text FROM access_requests WHERE organisation_id = \(a.organisation.rawValue)"
            #expect(try await f.count(as: a.superUser, query) > 1)
            let desk = try await f.staff(.serviceDesk)
            try await f.asApplication(actor: desk) { conn in
                let ids = try await conn.texts(
                    """
                    UPDATE role_assignments SET revoked_at = now(), revoked_by = \(desk.pgUUID)
                    WHERE account_id = \(a.superUser.pgUUID) AND role = 'spor-industry-super-user' AND revoked_at IS NULL
                    RETURNING id::text
                    """)
                guard ids.count == 1 else { throw FixtureError("revoked \(ids.count) assignments") }
                try await conn.query(
                    """
                    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id)
                    VALUES (\(a.organisation.rawValue), \(desk.pgUUID), 'role-assignment.revoked', 'role_assignment', \(ids[0]))
                    """, logger: TestDatabase.logger)
            }
            // Only their own (approved) request is left in view.
            #expect(try await f.count(as: a.superUser, query) == 1)
            #expect(
                try await f.count(
                    as: a.superUser, "SELECT count(*)::text FROM accounts WHERE id IN (\(a.member.pgUUID), \(a.applicant.pgUUID))") == 0)
        }
    }

    @Test("R13: the acting account does not leak through a pooled connection")
    func actorDoesNotLeak() async throws {
        try await Fixture.with { f in
            let a = try await f.tenant("Alpha Pharma")
            try await TestDatabase.withClient(f.db.application, maximumConnections: 1) { client in
                var database = Database(client: client, logger: TestDatabase.logger)
                database.maximumAttempts = 1
                let count: PostgresQuery = "SELECT count(*)::text FROM access_requests"
                @Sendable func probe(_ connection: PostgresConnection) async throws -> (backend: String, requests: String, actor: String) {
                    let backend = try await connection.texts("SELECT pg_backend_pid()::text")
                    let requests = try await connection.texts(count)
                    let actor = try await connection.texts("SELECT coalesce(current_setting('app.account_id', true), '')")
                    return (backend.first ?? "", requests.first ?? "", actor.first ?? "")
                }
                let acting = try await database.transaction(as: a.superUser) { connection, _ in try await probe(connection) }
                #expect(acting.requests != "0" && acting.actor == a.superUser.description)

                let after = try await database.transaction { try await probe($0) }
                #expect(after.backend == acting.backend, "not the same pooled connection")
                #expect(after.requests == "0" && after.actor == "")

                // Nor after a transaction that failed and rolled back.
                struct Boom: Error {}
                await #expect(throws: Boom.self) {
                    try await database.transaction(as: a.superUser) { _, _ in throw Boom() }
                }
                let afterFailure = try await database.transaction { try await probe($0) }
                #expect(afterFailure.backend == acting.backend)
                #expect(afterFailure.requests == "0" && afterFailure.actor == "")

                // Nor outside any transaction.
                let bare = try await client.withConnection { try await probe($0) }
                #expect(bare.backend == acting.backend)
                #expect(bare.requests == "0" && bare.actor == "")
            }
        }
    }
}
