import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

@Suite("Reports for the application role (SQL half of R13)")
struct ReportAccessSQLTests {
    func code(_ error: any Error) -> String? {
        switch StoreErrors.map(error) {
        case let refusal as Refusal: refusal.code.rawValue
        case let other: "\(other)"
        }
    }

    @Test("R13: spor_report gives a super user their organisation's per-organisation reports and nothing else")
    func superUserScope() async throws {
        try await Fixture.with { f in
            let a = try await f.organisation("A")
            let b = try await f.organisation("B")
            let su = try await f.superUser(of: a)
            _ = try await f.superUser(of: b)
            let desk = try await f.staff(.serviceDesk)
            func report(_ name: String, _ org: OrganisationID?, as actor: TestAccount?) async -> String {
                do {
                    // As the application role with the actor set: no Swift check involved.
                    let text = try await f.database.transaction(optionallyAs: actor) { conn, _ in
                        try await conn.first(
                            "SELECT spor_report(\(name), \(org?.rawValue), NULL, NULL, 100, 0)::text", as: String.self,
                            logger: TestDatabase.logger) ?? ""
                    }
                    return text.contains("\"columns\"") ? "ok" : text
                } catch {
                    return code(error) ?? "error"
                }
            }
            #expect(await report("role_holders", a, as: su) == "ok")
            #expect(await report("role_holders", b, as: su) == "not-found")
            #expect(await report("role_holders", nil, as: su) == "not-found")
            #expect(await report("request_funnel", nil, as: su) == "not-found")
            #expect(await report("role_holders", nil, as: nil) == "not-found")
            #expect(await report("no_such_view", nil, as: desk) == "not-found")
            #expect(await report("request_funnel", nil, as: desk) == "ok")
            #expect(await report("role_holders", b, as: desk) == "ok")
            // The views themselves stay closed to the application role.
            await #expect(throws: (any Error).self) {
                try await f.asApplication(actor: desk) { conn in
                    try await conn.query("SELECT * FROM reporting.role_holders", logger: TestDatabase.logger)
                }
            }
        }
    }
}
