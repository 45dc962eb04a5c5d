import AccessAPITestSupport
import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Reports over HTTP")
struct ReportsAPITests {
    static let json: HTTPFields = [.accept: "application/json"]
    static let csv: HTTPFields = [.accept: "text/csv"]

    @Test("CSV cells a spreadsheet would run as formulas are neutralised (OWASP): an OMS name =HYPERLINK(...) is text")
    func csvFormulasNeutralised() async throws {
        try await Fixture.with { f in
            let evil = try await f.organisation("=HYPERLINK(\"http://evil.example\",\"click\")")
            let plus = try await f.organisation("+31 Pharma")
            for org in [evil, plus] {
                let carol = try await f.user("carol")
                _ = try await f.requests.submit(actor: carol, role: .superUser, organisation: org, justification: nil)
            }
            let desk = try await f.staff(.serviceDesk)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let token = try await api.signIn(desk, fixture: f, password: Fixture.staffPassword)
                func row(_ org: OrganisationID) async throws -> String {
                    let csv = try await api.send(
                        .get, "/v1/reports/organisations_without_super_user?organisationId=\(org.rawValue)", token: token,
                        headers: Self.csv)
                    return csv.text.components(separatedBy: "\r\n")[1]
                }
                #expect(try await row(evil).hasPrefix("\(evil.rawValue),\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"click\"\")\",NL,"))
                #expect(try await row(plus).hasPrefix("\(plus.rawValue),\"'+31 Pharma\",NL,"))
                // Numbers stay numbers (a negative one is not a formula).
                let page = ReportPage(columns: ["n", "t"], rows: [[.number(-2), .text("-2")]])
                #expect(page.csv() == "n,t\r\n-2,\"'-2\"\r\n")
            }
        }
    }

    @Test("R13: staff read every report as JSON and CSV, matching the views; super users only their organisations'")
    func reports() async throws {
        try await Fixture.with { f in
            let acme = try await f.organisation("Acme, Pharma")
            let beta = try await f.organisation("Beta")
            let alice = try await f.superUser(of: acme)
            let bob = try await f.user("bob")
            _ = try await f.requests.submit(actor: bob, role: .industryUser, organisation: acme, justification: nil)
            let carol = try await f.user("carol")
            _ = try await f.requests.submit(actor: carol, role: .superUser, organisation: beta, justification: nil)
            try await f.administration.addStaff(
                email: "desk@ema.example", displayName: "Desk", role: .serviceDesk, password: "desk password 123", bcryptCost: 4)
            let aliceEmail = try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(alice.rawValue)::uuid").first)
            let views = Reports(client: f.owner, logger: TestDatabase.logger)

            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let desk = try await api.signIn(email: "desk@ema.example", password: "desk password 123")
                for report in ReportName.allCases {
                    let table = try await views.table(report)
                    let reply = try await api.send(.get, "/v1/reports/\(report.rawValue)", token: desk, headers: Self.json)
                    #expect(reply.status == .ok, "\(report)")
                    #expect(reply.contentType?.hasPrefix("application/json") == true)
                    let json = try #require(try JSONSerialization.jsonObject(with: Data(reply.text.utf8)) as? [String: Any])
                    #expect(json["columns"] as? [String] == table.columns, "\(report)")
                    #expect((json["items"] as? [[String: Any]])?.count == table.rows.count, "\(report)")
                    let csv = try await api.send(.get, "/v1/reports/\(report.rawValue)", token: desk, headers: Self.csv)
                    #expect(csv.status == .ok && csv.contentType?.hasPrefix("text/csv") == true, "\(report)")
                    let lines = csv.text.components(separatedBy: "\r\n").filter { !$0.isEmpty }
                    #expect(lines.first == table.columns.joined(separator: ","), "\(report)")
                    #expect(lines.count == table.rows.count + 1, "\(report)")
                }
                // Exact CSV: quoting of a name with a comma, null as an empty field.
                let csv = try await api.send(
                    .get, "/v1/reports/organisations_without_super_user?organisationId=\(beta.rawValue)", token: desk, headers: Self.csv)
                let rows = csv.text.components(separatedBy: "\r\n")
                #expect(rows[0] == "organisation_id,organisation_name,country,access_request_id,requested_at,waiting,waiting_hours")
                #expect(rows[1].hasPrefix("\(beta.rawValue),Beta,NL,"))
                // Paging.
                let paged = try await api.send(.get, "/v1/reports/pending_access_requests?limit=1", token: desk, headers: Self.json)
                let page = try #require(try JSONSerialization.jsonObject(with: Data(paged.text.utf8)) as? [String: Any])
                #expect((page["items"] as? [Any])?.count == 1 && page["nextCursor"] as? String == "o1")

                // A super user: own organisation yes; no organisation, another one, or a cross-organisation report: 404.
                let su = try await api.signIn(email: aliceEmail, password: Fixture.password)
                let own = try await api.send(
                    .get, "/v1/reports/pending_access_requests?organisationId=\(acme.rawValue)", token: su, headers: Self.json)
                #expect(own.status == .ok)
                let ownJSON = try #require(try JSONSerialization.jsonObject(with: Data(own.text.utf8)) as? [String: Any])
                let items = ownJSON["items"] as? [[String: Any]] ?? []
                #expect(items.count == 1 && items[0]["organisation_id"] as? String == acme.rawValue && items[0]["requests"] as? Int == 1)
                let foreign = "/v1/reports/pending_access_requests?organisationId=\(beta.rawValue)"
                #expect(try await api.send(.get, foreign, token: su, headers: Self.json).status == .notFound)
                #expect(try await api.send(.get, "/v1/reports/pending_access_requests", token: su, headers: Self.json).status == .notFound)
                #expect(try await api.send(.get, "/v1/reports/request_funnel", token: su, headers: Self.json).status == .notFound)
                // Bad input.
                #expect(try await api.send(.get, "/v1/reports/no_such_report", token: desk, headers: Self.json).status == .badRequest)
                #expect(
                    try await api.send(.get, "/v1/reports/role_holders?limit=501", token: desk, headers: Self.json).status == .unprocessableContent)
                #expect(
                    try await api.send(.get, "/v1/reports/role_holders?organisationId=ORG-12", token: desk, headers: Self.json).status
                        == .unprocessableContent)
                let anonymous = try await api.send(.get, "/v1/reports/role_holders")
                #expect(anonymous.status == .unauthorized)
            }
        }
    }
}
