import AccessDomain
import Testing

@Suite("Identifiers")
struct IdentifierTests {
    @Test("R1: organisation ids are ORG- and nine digits")
    func organisationIDs() {
        #expect(OrganisationID("ORG-100000123")?.rawValue == "ORG-100000123")
        for bad in ["ORG-12345678", "ORG-1000001234", "org-100000123", "ORG-10000012a", "", "ORG-١٠٠٠٠٠١٢٣"] {
            #expect(OrganisationID(bad) == nil, "\(bad)")
        }
        #expect(OrganisationID(number: 100_000_123).rawValue == "ORG-100000123")
        #expect(OrganisationID(number: 42).rawValue == "ORG-000000042")
    }
}
