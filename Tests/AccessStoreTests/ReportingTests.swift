import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// The reporting views of 0007 (the analysts' contract). A known world is seeded through the stores (so every row is
// one the service could have written), then moved in time as the owner with the user triggers off for that one
// transaction, so that durations, days and months are exact. Rows whose age is measured from now() are placed
// relative to now() and their age columns are checked with a tolerance; everything else is compared whole.

/// The seeded world: organisations, people, requests, tickets, OMS change requests.
private struct World: Sendable {
    // Organisations: alpha (no super user, two pending first-super-user requests), beta (one super user),
    // gamma (two super users), delta (first super user rejected), epsilon and zeta (created by OMS approvals).
    var alpha, beta, gamma, delta, epsilon, zeta: OrganisationID
    /// People by first name (and desk1, desk2, steward) → account id, and → e-mail.
    var account: [String: AccountID]
    var email: [String: String]
    /// Access requests by label → id.
    var request: [String: Int64]
    /// Service desk tickets by label → id.
    var ticket: [String: Int64]
    /// OMS change requests by label → id.
    var oms: [String: Int64]

    func id(_ name: String) -> String { (account[name]?.description ?? "?") }
    func mail(_ name: String) -> String { email[name] ?? "?" }
    func req(_ label: String) -> String { request[label].map(String.init) ?? "?" }
    func tkt(_ label: String) -> String { ticket[label].map(String.init) ?? "?" }
}

private let logger = TestDatabase.logger

/// An expected cell: exact text (nil for NULL), a number within 0.2 (ages measured from now()), or a text prefix.
private enum Cell: Equatable, ExpressibleByStringLiteral, ExpressibleByNilLiteral, CustomStringConvertible {
    case exact(String?)
    case about(Double)
    case prefix(String)
    init(stringLiteral value: String) { self = .exact(value) }
    init(nilLiteral: ()) { self = .exact(nil) }
    init(_ value: String?) { self = .exact(value) }

    func matches(_ value: String?) -> Bool {
        switch self {
        case .exact(let expected): return value == expected
        case .about(let expected): return value.flatMap(Double.init).map { abs($0 - expected) <= 0.2 } ?? false
        case .prefix(let expected): return value?.hasPrefix(expected) ?? false
        }
    }

    var description: String {
        switch self {
        case .exact(let value): return value.map { "\"\($0)\"" } ?? "nil"
        case .about(let value): return "≈\(value)"
        case .prefix(let value): return "\"\(value)…\""
        }
    }
}

/// Whole-row comparison with tolerant cells.
private func expectRows(_ table: ReportTable, _ expected: [[Cell]], sourceLocation: SourceLocation = #_sourceLocation) {
    let matches =
        table.rows.count == expected.count
        && zip(table.rows, expected).allSatisfy { row, cells in
            row.count == cells.count && zip(row, cells).allSatisfy { value, cell in cell.matches(value) }
        }
    #expect(matches, "got \(table.rows)\nexpected \(expected)", sourceLocation: sourceLocation)
}

/// One text value from the owner connection (the same session settings as the reports, so timestamps print alike).
private func ownerText(_ f: Fixture, _ query: PostgresQuery) async throws -> String? {
    try await f.ownerQuery(query).first
}

/// An instant as the reporting connection prints it (timestamptz::text, session time zone).
private func printed(_ f: Fixture, _ instant: String) async throws -> String {
    try #require(try await ownerText(f, "SELECT (\(instant)::timestamptz)::text"))
}

private func uuid(_ account: AccountID) -> UUID { account.rawValue }

/// Seeds the world through the stores, then moves it in time.
private func seed(_ f: Fixture) async throws -> World {
    let alpha = try await f.organisation("Alpha Pharma", country: "NL")
    let beta = try await f.organisation("Beta Biotech", country: "BE")
    let gamma = try await f.organisation("Gamma Generics", country: "DE")
    let delta = try await f.organisation("Delta Devices", country: "FR")

    var account: [String: AccountID] = [:]
    account["desk1"] = try await f.staff(.serviceDesk)
    account["desk2"] = try await f.staff(.serviceDesk)
    account["steward"] = try await f.staff(.dataSteward)
    for name in ["uma", "bea", "carl", "cora", "dan", "gus", "gil", "gwen", "gabe", "gina", "bob", "ben", "ann", "amy"] {
        account[name] = try await f.user(name)
    }
    func who(_ name: String) throws -> AccountID { try #require(account[name]) }
    var request: [String: Int64] = [:]
    var ticket: [String: Int64] = [:]
    var oms: [String: Int64] = [:]

    // The unaffiliated role holder (approved by the system at once).
    request["U1"] = try await f.requests.submit(actor: who("uma"), role: .unaffiliatedUser, organisation: nil, justification: nil)
        .request.id.rawValue
    // beta: one super user, through the service desk (ticket resolved on time).
    let b1 = try await f.requests.submit(actor: who("bea"), role: .superUser, organisation: beta, justification: nil).request
    ticket["B1"] = try await f.openTicket(for: b1, by: who("bea")).id
    _ = try await f.requests.decide(actor: who("desk1"), request: b1.id, channel: .serviceDesk, action: .approve)
    request["B1"] = b1.id.rawValue
    // gamma: first super user through the service desk (ticket resolved late), the second approved by the first.
    let c1 = try await f.requests.submit(actor: who("carl"), role: .superUser, organisation: gamma, justification: nil).request
    ticket["C1"] = try await f.openTicket(for: c1, by: who("carl")).id
    _ = try await f.requests.decide(actor: who("desk1"), request: c1.id, channel: .serviceDesk, action: .approve)
    request["C1"] = c1.id.rawValue
    // delta: the first super user request rejected by the service desk (its ticket resolved "rejected").
    let d1 = try await f.requests.submit(actor: who("dan"), role: .superUser, organisation: delta, justification: nil).request
    ticket["D1"] = try await f.openTicket(for: d1, by: who("dan")).id
    _ = try await f.requests.decide(
        actor: who("desk2"), request: d1.id, channel: .serviceDesk, action: .reject(reason: "The letter is not signed."))
    request["D1"] = d1.id.rawValue
    let c2 = try await f.requests.submit(actor: who("cora"), role: .superUser, organisation: gamma, justification: nil).request
    #expect(c2.approverKind == .organisationSuperUsers)
    _ = try await f.requests.decide(actor: who("carl"), request: c2.id, channel: .organisation, action: .approve)
    request["C2"] = c2.id.rawValue
    // gamma industry users: approved (by cora), rejected, approved then revoked, two pending.
    let c3 = try await f.requests.submit(actor: who("gus"), role: .industryUser, organisation: gamma, justification: nil).request
    _ = try await f.requests.decide(actor: who("cora"), request: c3.id, channel: .organisation, action: .approve)
    request["C3"] = c3.id.rawValue
    let c4 = try await f.requests.submit(actor: who("gil"), role: .industryUser, organisation: gamma, justification: nil).request
    _ = try await f.requests.decide(
        actor: who("carl"), request: c4.id, channel: .organisation, action: .reject(reason: "Not one of our employees."))
    request["C4"] = c4.id.rawValue
    let c6 = try await f.requests.submit(actor: who("gwen"), role: .industryUser, organisation: gamma, justification: nil).request
    let granted = try #require(
        try await f.requests.decide(actor: who("carl"), request: c6.id, channel: .organisation, action: .approve).grant)
    _ = try await f.requests.revoke(actor: who("carl"), assignment: granted.id, channel: .organisation, reason: "Left the company.")
    request["C6"] = c6.id.rawValue
    request["C5"] = try await f.requests.submit(actor: who("gabe"), role: .industryUser, organisation: gamma, justification: nil)
        .request.id.rawValue
    request["C7"] = try await f.requests.submit(actor: who("gina"), role: .industryUser, organisation: gamma, justification: nil)
        .request.id.rawValue
    // beta industry users: one cancelled, one expired.
    let b2 = try await f.requests.submit(actor: who("bob"), role: .industryUser, organisation: beta, justification: nil).request
    _ = try await f.requests.cancel(actor: who("bob"), request: b2.id)
    request["B2"] = b2.id.rawValue
    let b3 = try await f.requests.submit(actor: who("ben"), role: .industryUser, organisation: beta, justification: nil).request
    request["B3"] = b3.id.rawValue
    try await f.owner.withTransaction(logger: logger) { c in
        try await c.query("ALTER TABLE access_requests DISABLE TRIGGER USER", logger: logger)
        try await c.query("UPDATE access_requests SET expires_at = now() - interval '1 hour' WHERE id = \(b3.id.rawValue)", logger: logger)
        try await c.query("ALTER TABLE access_requests ENABLE TRIGGER USER", logger: logger)
    }
    #expect(try await f.requests.expireDue(batch: 100) == 1)
    // alpha: two pending first-super-user requests, each with an open ticket.
    let a1 = try await f.requests.submit(actor: who("ann"), role: .superUser, organisation: alpha, justification: nil).request
    ticket["A1"] = try await f.openTicket(for: a1, by: who("ann")).id
    request["A1"] = a1.id.rawValue
    let a2 = try await f.requests.submit(actor: who("amy"), role: .superUser, organisation: alpha, justification: nil).request
    ticket["A2"] = try await f.openTicket(for: a2, by: who("amy")).id
    request["A2"] = a2.id.rawValue
    #expect(a1.approverKind == .emaServiceDesk && a2.approverKind == .emaServiceDesk)

    // OMS change requests (filed by the unaffiliated role holder): two approved, one rejected, one pending.
    let letter = [Upload(fileName: "register.pdf", contentType: .pdf, bytes: Fixture.pdf)]
    func file(_ name: String, _ country: String) async throws -> Int64 {
        try await f.oms.file(
            actor: who("uma"), name: name, country: country, city: "Capital", address: nil,
            justification: "Not in OMS yet", documents: letter
        ).id
    }
    oms["approved1"] = try await file("Epsilon Labs", "BE")
    oms["rejected"] = try await file("Rejected Holdings", "LU")
    oms["pending"] = try await file("Pending Partners", "AT")
    oms["approved2"] = try await file("Zeta Labs", "DK")
    let (approved1, rejected, approved2) = try (#require(oms["approved1"]), #require(oms["rejected"]), #require(oms["approved2"]))
    let steward = try who("steward")
    let epsilon = try #require(try await f.oms.decide(actor: steward, request: approved1, approve: true, reason: nil).organisation)
    _ = try await f.oms.decide(actor: steward, request: rejected, approve: false, reason: "Not a legal entity.")
    let zeta = try #require(try await f.oms.decide(actor: steward, request: approved2, approve: true, reason: nil).organisation)

    var email: [String: String] = [:]
    for (name, id) in account {
        email[name] = try #require(try await ownerText(f, "SELECT email FROM accounts WHERE id = \(uuid(id))"))
    }
    let world = World(
        alpha: alpha, beta: beta, gamma: gamma, delta: delta, epsilon: epsilon, zeta: zeta,
        account: account, email: email, request: request, ticket: ticket, oms: oms)
    try await travel(f, world)
    return world
}

/// Moves the seeded rows to fixed instants (decided work, in 2025) or to instants relative to now() (pending work).
private func travel(_ f: Fixture, _ w: World) async throws {
    // label → (created_at, decided_at); expired: expires_at = decided_at.
    let decided: [(String, String, String)] = [
        ("U1", "2025-01-02 09:00+00", "2025-01-02 09:00+00"),
        ("B1", "2025-01-06 09:00+00", "2025-01-06 15:00+00"),  // 6 h, approved by desk1
        ("C1", "2025-01-13 08:00+00", "2025-01-14 18:00+00"),  // 34 h, approved by desk1
        ("D1", "2025-01-20 10:00+00", "2025-01-20 22:00+00"),  // 12 h, rejected by desk2
        ("C2", "2025-02-03 09:00+00", "2025-02-04 09:00+00"),  // 24 h, approved by carl
        ("C3", "2025-02-03 10:00+00", "2025-02-03 12:00+00"),  // 2 h, approved by cora
        ("C4", "2025-02-04 10:00+00", "2025-02-06 10:00+00"),  // 48 h, rejected by carl
        ("C6", "2025-02-04 08:00+00", "2025-02-04 16:00+00"),  // 8 h, approved by carl (later revoked)
        ("B2", "2025-02-11 09:00+00", "2025-02-11 10:00+00"),  // cancelled
        ("B3", "2025-02-12 09:00+00", "2025-03-14 09:00+00"),  // expired
    ]
    let pending: [(String, String)] = [("A1", "3 days"), ("A2", "2 hours"), ("C5", "10 days"), ("C7", "9 days")]
    // label → (opened_at, resolved_at)
    let resolvedTickets: [(String, String, String)] = [
        ("B1", "2025-01-06 10:00+00", "2025-01-06 15:00+00"),  // 5 h: on time
        ("C1", "2025-01-13 09:00+00", "2025-01-14 18:00+00"),  // 33 h: late
        ("D1", "2025-01-20 11:00+00", "2025-01-20 22:00+00"),  // 11 h: on time
    ]
    let openTickets: [(String, String)] = [("A1", "2 days"), ("A2", "1 hour")]  // overdue; not yet due
    let omsTimes: [(String, String, String?)] = [
        ("approved1", "2025-01-08 09:00+00", "2025-01-09 09:00+00"),  // 24 h
        ("rejected", "2025-01-08 10:00+00", "2025-01-08 16:00+00"),  // 6 h
        ("approved2", "2025-02-01 09:00+00", "2025-02-01 21:00+00"),  // 12 h
    ]
    let tables = ["access_requests", "role_assignments", "service_desk_tickets", "oms_change_requests"]
    try await f.owner.withTransaction(logger: logger) { c in
        for table in tables {
            try await c.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(table) DISABLE TRIGGER USER"), logger: logger)
        }
        for (label, created, decidedAt) in decided {
            let id = try #require(w.request[label])
            try await c.query(
                """
                UPDATE access_requests SET created_at = \(created)::timestamptz, decided_at = \(decidedAt)::timestamptz,
                       expires_at = CASE WHEN status = 'expired' THEN \(decidedAt)::timestamptz ELSE expires_at END
                WHERE id = \(id)
                """, logger: logger)
        }
        for (label, age) in pending {
            let id = try #require(w.request[label])
            try await c.query("UPDATE access_requests SET created_at = now() - \(age)::interval WHERE id = \(id)", logger: logger)
        }
        try await c.query(
            """
            UPDATE role_assignments g SET granted_at = r.decided_at, effective_from = r.decided_at,
                   revoked_at = CASE WHEN g.revoked_at IS NOT NULL THEN r.decided_at + interval '10 days' END
            FROM access_requests r WHERE r.id = g.access_request_id
            """, logger: logger)
        for (label, opened, resolved) in resolvedTickets {
            let id = try #require(w.ticket[label])
            try await c.query(
                """
                UPDATE service_desk_tickets SET opened_at = \(opened)::timestamptz,
                       due_at = \(opened)::timestamptz + interval '24 hours', resolved_at = \(resolved)::timestamptz
                WHERE id = \(id)
                """, logger: logger)
        }
        for (label, age) in openTickets {
            let id = try #require(w.ticket[label])
            try await c.query(
                """
                UPDATE service_desk_tickets SET opened_at = now() - \(age)::interval,
                       due_at = now() - \(age)::interval + interval '24 hours'
                WHERE id = \(id)
                """, logger: logger)
        }
        for (label, created, decidedAt) in omsTimes {
            let id = try #require(w.oms[label])
            try await c.query(
                "UPDATE oms_change_requests SET created_at = \(created)::timestamptz, decided_at = \(decidedAt)::timestamptz WHERE id = \(id)",
                logger: logger)
        }
        let pendingOMS = try #require(w.oms["pending"])
        try await c.query("UPDATE oms_change_requests SET created_at = now() - interval '5 hours' WHERE id = \(pendingOMS)", logger: logger)
        for table in tables {
            try await c.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(table) ENABLE TRIGGER USER"), logger: logger)
        }
    }
}

/// A login that is a member of spor_reporting and nothing else (an analyst), dropped afterwards.
private func withAnalyst<T: Sendable>(_ f: Fixture, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
    let hex = { (count: Int) in (0..<count).map { _ in String(UInt8.random(in: 0...15), radix: 16) }.joined() }
    let name = "analyst_\(hex(12))"
    let password = hex(32)
    // Identifiers and password are generated hex, never input: utility statements take no bind parameters.
    try await f.owner.query(
        PostgresQuery(unsafeSQL: "CREATE ROLE \(name) LOGIN PASSWORD '\(password)' IN ROLE spor_reporting"), logger: logger)
    let result: Result<T, any Error>
    do {
        result = .success(try await TestDatabase.withClient(f.db.owner.with(username: name, password: password), maximumConnections: 2, body))
    } catch {
        result = .failure(error)
    }
    try await f.owner.query(PostgresQuery(unsafeSQL: "DROP ROLE \(name)"), logger: logger)
    return try result.get()
}

/// The SQLSTATE of a failed statement (nil when it succeeded).
private func sqlState(_ client: PostgresClient, _ sql: String) async -> String? {
    do {
        let rows = try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        for try await _ in rows {}
        return nil
    } catch let error as PSQLError {
        return error.serverInfo?[.sqlState] ?? "no sqlstate: \(String(reflecting: error))"
    } catch {
        return "unexpected: \(String(reflecting: error))"
    }
}

private let viewNames = ReportName.allCases.map(\.rawValue)
private let baseTables = [
    "organisations", "accounts", "credentials", "verification_tokens", "security_answers", "sessions", "staff_roles",
    "access_requests", "role_assignments", "documents", "service_desk_tickets", "oms_change_requests",
    "oms_change_request_documents", "audit_events", "notification_outbox", "idempotency_keys", "settings", "schema_migrations",
]

/// SQL/reports, from this file: Tests/AccessStoreTests/ → ../../SQL/reports.
private func reportFiles() throws -> [URL] {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("SQL/reports")
    return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        .filter { $0.pathExtension == "sql" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
}

@Suite("Reporting views")
struct ReportingTests {
    @Test("Every view returns exactly the seeded rows")
    func exactRows() async throws {
        try await Fixture.with { f in
            let w = try await seed(f)
            let reports = Reports(client: f.owner, logger: logger)
            var instants: [String: String] = [:]
            for instant in [
                "2025-01-06 10:00+00", "2025-01-06 15:00+00", "2025-01-07 10:00+00", "2025-01-13 09:00+00",
                "2025-01-14 09:00+00", "2025-01-14 18:00+00", "2025-01-20 11:00+00", "2025-01-20 22:00+00",
                "2025-01-21 11:00+00",
            ] {
                instants[instant] = try await printed(f, instant)
            }
            func at(_ instant: String) -> String { instants[instant] ?? "?" }
            var createdAt: [String: String] = [:]
            for label in ["A1", "A2", "C5"] {
                createdAt[label] = try await ownerText(
                    f, "SELECT created_at::text FROM access_requests WHERE id = \(w.request[label] ?? 0)")
            }
            func created(_ label: String) -> String? { createdAt[label] }
            let (a, b, c, d) = (w.alpha.rawValue, w.beta.rawValue, w.gamma.rawValue, w.delta.rawValue)
            let superUser = "spor-industry-super-user"
            let industry = "spor-industry-user"

            // Organisations with no active super user: one row per pending super-user request, or one NULL row.
            let without = try await reports.table(.organisationsWithoutSuperUser)
            #expect(
                without.columns == [
                    "organisation_id", "organisation_name", "country", "access_request_id", "requested_at",
                    "waiting", "waiting_hours",
                ])
            expectRows(
                without,
                [
                    [.exact(a), "Alpha Pharma", "NL", .exact(w.req("A1")), .exact(created("A1")), .prefix("3 days 00:0"), .about(72)],
                    [.exact(a), "Alpha Pharma", "NL", .exact(w.req("A2")), .exact(created("A2")), .prefix("02:0"), .about(2)],
                    [.exact(d), "Delta Devices", "FR", nil, nil, nil, nil],
                    [.exact(w.epsilon.rawValue), "Epsilon Labs", "BE", nil, nil, nil, nil],
                    [.exact(w.zeta.rawValue), "Zeta Labs", "DK", nil, nil, nil, nil],
                ])

            // Exactly one active super user: beta only (gamma has two, alpha and delta none).
            let single = try await reports.table(.organisationsWithSingleSuperUser)
            #expect(
                single.columns == [
                    "organisation_id", "organisation_name", "country", "super_user_account_id",
                    "super_user_email", "super_user_since",
                ])
            #expect(single.rows == [[b, "Beta Biotech", "BE", w.id("bea"), w.mail("bea"), at("2025-01-06 15:00+00")]])

            // Pending requests by organisation, role, approver kind and age bucket.
            let pending = try await reports.table(.pendingAccessRequests)
            #expect(
                pending.columns == [
                    "organisation_id", "role", "approver_kind", "age_bucket", "requests", "oldest_requested_at",
                    "oldest_age_hours",
                ])
            expectRows(
                pending,
                [
                    [.exact(a), .exact(superUser), "ema-service-desk", "1-7 days", "1", .exact(created("A1")), .about(72)],
                    [.exact(a), .exact(superUser), "ema-service-desk", "< 1 day", "1", .exact(created("A2")), .about(2)],
                    [.exact(c), .exact(industry), "organisation-super-users", "> 7 days", "2", .exact(created("C5")), .about(240)],
                ])

            // Service desk tickets against the 24-hour due time.
            let sla = try await reports.table(.serviceDeskSLA)
            #expect(
                sla.columns == [
                    "ticket_id", "organisation_id", "access_request_id", "status", "resolution", "opened_at", "due_at",
                    "resolved_at", "overdue", "hours_to_resolution",
                ])
            func ticketTimes(_ label: String) async throws -> [String?] {
                let row = try #require(
                    try await ownerText(
                        f, "SELECT opened_at::text || '|' || due_at::text FROM service_desk_tickets WHERE id = \(w.ticket[label] ?? 0)"))
                return row.split(separator: "|").map(String.init)
            }
            let openA1 = try await ticketTimes("A1")
            let openA2 = try await ticketTimes("A2")
            #expect(
                sla.rows == [
                    [
                        w.tkt("B1"), b, w.req("B1"), "resolved", "approved", at("2025-01-06 10:00+00"),
                        at("2025-01-07 10:00+00"), at("2025-01-06 15:00+00"), "false", "5.0",
                    ],
                    [
                        w.tkt("C1"), c, w.req("C1"), "resolved", "approved", at("2025-01-13 09:00+00"),
                        at("2025-01-14 09:00+00"), at("2025-01-14 18:00+00"), "true", "33.0",
                    ],
                    [
                        w.tkt("D1"), d, w.req("D1"), "resolved", "rejected", at("2025-01-20 11:00+00"),
                        at("2025-01-21 11:00+00"), at("2025-01-20 22:00+00"), "false", "11.0",
                    ],
                    [w.tkt("A1"), a, w.req("A1"), "open", nil] + openA1 + [nil, "true", nil],
                ] + sla.rows.suffix(1))
            // Open and not yet due: not overdue — false, not NULL (a NULL would drop it from `WHERE NOT overdue`).
            #expect(
                sla.rows.last == [w.tkt("A2"), a, w.req("A2"), "open", nil] + openA2 + [nil, "false", nil],
                "an open ticket that is not yet due must have overdue = false, not NULL")
            #expect(sla.rows.count == 5)

            // Active role holders: revoked (gwen) and rejected (gil) people do not count.
            let holders = try await reports.table(.roleHolders)
            #expect(holders.columns == ["organisation_id", "role", "holders", "holder_emails"])
            #expect(
                holders.rows == [
                    [nil, "spor-unaffiliated-user", "1", "{\(w.mail("uma"))}"],
                    [b, superUser, "1", "{\(w.mail("bea"))}"],
                    [c, superUser, "2", "{\(w.mail("carl")),\(w.mail("cora"))}"],
                    [c, industry, "1", "{\(w.mail("gus"))}"],
                ])

            // Decisions per UTC day, organisation, approver and outcome (automatic approvals have no approver).
            let activity = try await reports.table(.approvalActivity)
            #expect(
                activity.columns == [
                    "day", "organisation_id", "approver_account_id", "approver_email", "approver_kind", "outcome",
                    "decisions",
                ])
            #expect(
                activity.rows == [
                    ["2025-01-06", b, w.id("desk1"), w.mail("desk1"), "ema-service-desk", "approved", "1"],
                    ["2025-01-14", c, w.id("desk1"), w.mail("desk1"), "ema-service-desk", "approved", "1"],
                    ["2025-01-20", d, w.id("desk2"), w.mail("desk2"), "ema-service-desk", "rejected", "1"],
                    ["2025-02-03", c, w.id("cora"), w.mail("cora"), "organisation-super-users", "approved", "1"],
                    ["2025-02-04", c, w.id("carl"), w.mail("carl"), "organisation-super-users", "approved", "2"],
                    ["2025-02-06", c, w.id("carl"), w.mail("carl"), "organisation-super-users", "rejected", "1"],
                ])

            // The funnel: fixed months for decided work, and the month(s) of the pending requests (placed relative to now()).
            let funnel = try await reports.table(.requestFunnel)
            #expect(
                funnel.columns == [
                    "month", "role", "submitted", "approved", "rejected", "cancelled", "expired", "pending",
                    "median_hours_to_decision", "p90_hours_to_decision",
                ])
            var pendingByMonth: [String: Int] = [:]  // "month|role" → count
            for label in ["A1", "A2", "C5", "C7"] {
                let key = try #require(
                    try await ownerText(
                        f,
                        """
                        SELECT (date_trunc('month', created_at AT TIME ZONE 'UTC'))::date::text || '|' || role
                        FROM access_requests WHERE id = \(w.request[label] ?? 0)
                        """))
                pendingByMonth[key, default: 0] += 1
            }
            let pendingRows: [[String?]] = pendingByMonth.keys.sorted().map { key in
                let parts = key.split(separator: "|").map(String.init)
                let count = String(pendingByMonth[key] ?? 0)
                return [parts[0], parts[1], count, "0", "0", "0", "0", count, nil, nil]
            }
            #expect(
                funnel.rows == [
                    // super user, January: 6 h, 12 h, 34 h → median 12, p90 = 12 + 0.8 × 22 = 29.6
                    ["2025-01-01", superUser, "3", "2", "1", "0", "0", "0", "12.0", "29.6"],
                    ["2025-01-01", "spor-unaffiliated-user", "1", "1", "0", "0", "0", "0", "0.0", "0.0"],
                    ["2025-02-01", superUser, "1", "1", "0", "0", "0", "0", "24.0", "24.0"],
                    // industry user, February: 2 h, 8 h, 48 h decided → median 8, p90 = 8 + 0.8 × 40 = 40
                    ["2025-02-01", industry, "5", "2", "1", "1", "1", "0", "8.0", "40.0"],
                ] + pendingRows)

            // OMS change requests per status.
            let omsTable = try await reports.table(.omsChangeRequests)
            #expect(omsTable.columns == ["status", "requests", "median_hours_to_decision", "max_hours"])
            expectRows(
                omsTable,
                [
                    ["approved", "2", "18.0", "24.0"],
                    ["pending", "1", nil, .about(5)],
                    ["rejected", "1", "6.0", "6.0"],
                ])
        }
    }

    @Test("CSV (RFC 4180), text and JSON renderings, and filtering by organisation")
    func renderingsAndFilter() async throws {
        try await Fixture.with { f in
            let w = try await seed(f)
            let reports = Reports(client: f.owner, logger: logger)
            let (a, b, c, d) = (w.alpha.rawValue, w.beta.rawValue, w.gamma.rawValue, w.delta.rawValue)

            // CSV: header, CRLF after every record, the array with a comma quoted, NULL as an empty field.
            let csv = try await reports.table(.roleHolders).csv()
            #expect(
                csv == "organisation_id,role,holders,holder_emails\r\n"
                    + ",spor-unaffiliated-user,1,{\(w.mail("uma"))}\r\n"
                    + "\(b),spor-industry-super-user,1,{\(w.mail("bea"))}\r\n"
                    + "\(c),spor-industry-super-user,2,\"{\(w.mail("carl")),\(w.mail("cora"))}\"\r\n"
                    + "\(c),spor-industry-user,1,{\(w.mail("gus"))}\r\n")

            // Text: columns padded to the widest cell, two spaces apart, trailing blanks trimmed, a rule, a row count.
            // (Every f.user e-mail is name-<8 hex>@example.com: bea's is 24 characters; account ids are 36.)
            let since = try await printed(f, "2025-01-06 15:00+00")
            let text = try await reports.table(.organisationsWithSingleSuperUser).text()
            #expect(w.mail("bea").count == 24 && since.count == 22)
            #expect(
                text == """
                    organisation_id  organisation_name  country  super_user_account_id                 super_user_email          super_user_since
                    ---------------  -----------------  -------  ------------------------------------  ------------------------  ----------------------
                    \(b)    Beta Biotech       BE       \(w.id("bea"))  \(w.mail("bea"))  \(since)
                    (1 row)
                    """)

            // JSON: an array of objects in view order; counts and hours are numbers, arrays are arrays, NULL is null.
            let json = try await reports.json(.requestFunnel)
            let funnel = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [[String: Any]])
            let january = try #require(funnel.first)
            #expect(january["month"] as? String == "2025-01-01")
            #expect(january["role"] as? String == "spor-industry-super-user")
            #expect(january["submitted"] is NSNumber && (january["submitted"] as? NSNumber)?.intValue == 3)
            #expect((january["median_hours_to_decision"] as? NSNumber)?.doubleValue == 12.0)
            #expect((january["p90_hours_to_decision"] as? NSNumber)?.doubleValue == 29.6)
            #expect(funnel.last?["median_hours_to_decision"] is NSNull)
            let holdersJSON = try await reports.json(.roleHolders, organisation: w.gamma)
            let holders = try #require(try JSONSerialization.jsonObject(with: Data(holdersJSON.utf8)) as? [[String: Any]])
            #expect(holders.count == 2)
            #expect(holders.first?["organisation_id"] as? String == c)
            #expect((holders.first?["holders"] as? NSNumber)?.intValue == 2 && !(holders.first?["holders"] is String))
            #expect(holders.first?["holder_emails"] as? [String] == [w.mail("carl"), w.mail("cora")])
            let unaffiliated = try #require(
                try JSONSerialization.jsonObject(with: Data(try await reports.json(.roleHolders).utf8))
                    as? [[String: Any]])
            #expect(unaffiliated.first?["organisation_id"] is NSNull)
            #expect(try await reports.json(.serviceDeskSLA, organisation: OrganisationID(number: 999_999_999)) == "[]")

            // Filtering by organisation: per-organisation reports keep that organisation's rows only.
            #expect(try await reports.table(.pendingAccessRequests, organisation: w.gamma).rows.map { $0[0] } == [c])
            #expect(try await reports.table(.pendingAccessRequests, organisation: w.alpha).rows.map { $0[3] } == ["1-7 days", "< 1 day"])
            #expect(try await reports.table(.serviceDeskSLA, organisation: w.beta).rows.map { $0[0] } == [w.tkt("B1")])
            #expect(
                try await reports.table(.organisationsWithoutSuperUser, organisation: w.alpha).rows.map { $0[3] }
                    == [w.req("A1"), w.req("A2")])
            #expect(try await reports.table(.organisationsWithoutSuperUser, organisation: w.gamma).rows.isEmpty)
            #expect(
                try await reports.table(.roleHolders, organisation: w.gamma).rows.map { $0[1] }
                    == ["spor-industry-super-user", "spor-industry-user"])
            #expect(try await reports.table(.approvalActivity, organisation: w.delta).rows.map { $0[1] } == [d])
            #expect(try await reports.table(.organisationsWithSingleSuperUser, organisation: w.gamma).rows.isEmpty)
            #expect(try await reports.table(.serviceDeskSLA, organisation: w.alpha).rows.map { $0[1] } == [a, a])
            // Funnel and OMS change requests have no organisation: the filter does not apply.
            #expect(try await reports.table(.requestFunnel, organisation: w.gamma) == reports.table(.requestFunnel))
            // Paging.
            let page = try await reports.table(.approvalActivity, limit: 2, offset: 1)
            #expect(page.rows.map { $0[0] } == ["2025-01-14", "2025-01-20"])
        }
    }

    @Test("The reporting role can read every view and cannot read any base table")
    func reportingRoleIsolation() async throws {
        try await Fixture.with { f in
            _ = try await f.user("someone")
            try await withAnalyst(f) { analyst in
                for view in viewNames {
                    #expect(await sqlState(analyst, "SELECT * FROM reporting.\(view)") == nil, "reading reporting.\(view)")
                }
                for table in baseTables {
                    #expect(await sqlState(analyst, "SELECT * FROM public.\(table) LIMIT 1") == "42501", "reading \(table)")
                }
                // No password hashes through the sign-in function either (SECURITY DEFINER: it would read credentials).
                #expect(await sqlState(analyst, "SELECT * FROM spor_login_candidate('x')") == "42501", "calling spor_login_candidate")
                // What the `report` command does (SET ROLE spor_reporting) works for an analyst login too.
                let table = try await Reports(client: analyst, logger: logger).table(.roleHolders)
                #expect(table.columns == ["organisation_id", "role", "holders", "holder_emails"])
            }
        }
    }

    @Test("The reporting role can execute none of the SECURITY DEFINER functions")
    func reportingRoleHasNoDefinerFunctions() async throws {
        try await Fixture.with { f in
            // EXECUTE on a new function goes to PUBLIC unless revoked, and a SECURITY DEFINER one runs with its owner's
            // rights for anyone: password hashes, e-mails, expiring requests, claiming the outbox. (Trigger functions
            // cannot be called directly, so they are left out.)
            let executable = try await f.ownerQuery(
                """
                SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.prosecdef AND p.pronamespace = 'public'::regnamespace AND p.prorettype <> 'trigger'::regtype
                  AND has_function_privilege('spor_reporting', p.oid, 'EXECUTE')
                ORDER BY 1
                """)
            #expect(executable == [], "spor_reporting may execute: \(executable)")
        }
    }

    @Test("Every example query in SQL/reports runs as the reporting role")
    func exampleQueries() async throws {
        let files = try reportFiles()
        #expect(files.count >= 4)
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.hasPrefix("--"), "\(file.lastPathComponent) starts with a comment saying what it answers")
        }
        try await Fixture.with { f in
            _ = try await seed(f)
            try await withAnalyst(f) { analyst in
                for file in files {
                    let statements = SQLScript.statements(in: try String(contentsOf: file, encoding: .utf8))
                    #expect(statements.count == 1, "\(file.lastPathComponent): one query per file")
                    for statement in statements {
                        #expect(await sqlState(analyst, statement) == nil, "\(file.lastPathComponent)")
                    }
                }
            }
        }
    }
}
