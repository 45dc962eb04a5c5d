import AccessDomain
import AccessStore
import AccessTestSupport
import Testing

@Suite("OMS dictionary import")
struct OrganisationImportTests {
    @Test("R1: the CSV import reads quoted fields, optional ids, and names the line of a bad row")
    func parsesCSV() throws {
        let rows = try OrganisationCSV.parse("name,country,city,id\n\"Acme, \"\"The\"\" Pharma\",nl,Leiden,ORG-100000500\nBeta Bio,BE,Ghent,\n")
        #expect(rows.map(\.name) == ["Acme, \"The\" Pharma", "Beta Bio"])
        #expect(rows.map(\.country) == ["NL", "BE"])
        #expect(rows[0].id == OrganisationID("ORG-100000500") && rows[1].id == nil)
        #expect(throws: OrganisationCSV.ParseError.self) { try OrganisationCSV.parse("name,country,city\nX,Netherlands,Y\n") }
        let error = #expect(throws: OrganisationCSV.ParseError.self) { try OrganisationCSV.parse("name,country,city\nX,NL\n") }
        #expect(error?.description.hasPrefix("line 2:") == true)
    }

    @Test("R1: imported organisations keep given ids; the sequence continues after them")
    func importKeepsIDs() async throws {
        try await Fixture.with { f in
            let given = try #require(OrganisationID("ORG-100000500"))
            let ids = try await f.administration.importOrganisations([
                .init(id: given, name: "Given", country: "NL", city: "Leiden"),
                .init(name: "Next", country: "BE", city: "Ghent"),
            ])
            #expect(ids == [given, OrganisationID("ORG-100000501")])
            let audited = try await f.ownerQuery("SELECT subject_id FROM audit_events WHERE action = 'organisation.imported' ORDER BY id")
            #expect(audited == ["ORG-100000500", "ORG-100000501"])
        }
    }
}
