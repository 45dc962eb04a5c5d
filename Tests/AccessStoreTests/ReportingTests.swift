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
//
// The seeded world is in ReportingTests+World, the reporting role's own tests in ReportingTests+ReportingRole.

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
private func expectRows(_ table: ReportPage, _ expected: [[Cell]], sourceLocation: SourceLocation = #_sourceLocation) {
    let matches =
        table.cells.count == expected.count
        && zip(table.cells, expected).allSatisfy { row, cells in
            row.count == cells.count && zip(row, cells).allSatisfy { value, cell in cell.matches(value) }
        }
    #expect(matches, "got \(table.cells)\nexpected \(expected)", sourceLocation: sourceLocation)
}

/// One text value from the owner connection (the same session settings as the reports, so timestamps print alike).
private func ownerText(_ f: Fixture, _ query: PostgresQuery) async throws -> String? {
    try await f.ownerQuery(query).first
}

/// An instant as the reporting connection prints it (timestamptz::text, session time zone).
private func printed(_ f: Fixture, _ instant: String) async throws -> String {
    try #require(try await ownerText(f, "SELECT (\(instant)::timestamptz)::text"))
}

@Suite("Reporting views")
struct ReportingTests {
    @Test("Every view returns exactly the seeded rows")
    func exactRows() async throws {
        try await Fixture.with { f in
            let w = try await World.seeded(f)
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
            #expect(single.cells == [[b, "Beta Biotech", "BE", w.id("bea"), w.mail("bea"), at("2025-01-06 15:00+00")]])

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
                sla.cells == [
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
                ] + sla.cells.suffix(1))
            // Open and not yet due: not overdue — false, not NULL (a NULL would drop it from `WHERE NOT overdue`).
            #expect(
                sla.cells.last == [w.tkt("A2"), a, w.req("A2"), "open", nil] + openA2 + [nil, "false", nil],
                "an open ticket that is not yet due must have overdue = false, not NULL")
            #expect(sla.cells.count == 5)

            // Active role holders: revoked (gwen) and rejected (gil) people do not count.
            let holders = try await reports.table(.roleHolders)
            #expect(holders.columns == ["organisation_id", "role", "holders", "holder_emails"])
            #expect(
                holders.cells == [
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
                activity.cells == [
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
                funnel.cells == [
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
            let w = try await World.seeded(f)
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
            #expect(try await reports.table(.pendingAccessRequests, organisation: w.gamma).cells.map { $0[0] } == [c])
            #expect(try await reports.table(.pendingAccessRequests, organisation: w.alpha).cells.map { $0[3] } == ["1-7 days", "< 1 day"])
            #expect(try await reports.table(.serviceDeskSLA, organisation: w.beta).cells.map { $0[0] } == [w.tkt("B1")])
            #expect(
                try await reports.table(.organisationsWithoutSuperUser, organisation: w.alpha).cells.map { $0[3] }
                    == [w.req("A1"), w.req("A2")])
            #expect(try await reports.table(.organisationsWithoutSuperUser, organisation: w.gamma).cells.isEmpty)
            #expect(
                try await reports.table(.roleHolders, organisation: w.gamma).cells.map { $0[1] }
                    == ["spor-industry-super-user", "spor-industry-user"])
            #expect(try await reports.table(.approvalActivity, organisation: w.delta).cells.map { $0[1] } == [d])
            #expect(try await reports.table(.organisationsWithSingleSuperUser, organisation: w.gamma).cells.isEmpty)
            #expect(try await reports.table(.serviceDeskSLA, organisation: w.alpha).cells.map { $0[1] } == [a, a])
            // Funnel and OMS change requests have no organisation: the filter does not apply.
            #expect(try await reports.table(.requestFunnel, organisation: w.gamma) == reports.table(.requestFunnel))
            // Paging.
            let page = try await reports.table(.approvalActivity, limit: 2, offset: 1)
            #expect(page.cells.map { $0[0] } == ["2025-01-14", "2025-01-20"])
        }
    }
}
