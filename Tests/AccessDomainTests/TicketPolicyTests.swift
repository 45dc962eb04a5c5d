import AccessDomain
import Testing

@Suite("R10, R18, R19: when the service desk may decide a ticket")
struct TicketPolicyTests {
    let organisation = OrganisationID("ORG-100000001")!

    @Test("An open ticket may be decided; a resolved one is not pending; a delegated one says who decides now")
    func decision() {
        #expect(
            TicketPolicy.decision(ticket: 7, status: .open, resolution: nil, request: AccessRequestID(10), organisation: organisation) == nil)
        let resolved = TicketPolicy.decision(
            ticket: 7, status: .resolved, resolution: .approved, request: AccessRequestID(10), organisation: organisation)
        #expect(resolved?.code == .notPending && resolved?.rule == .r18)
        let delegated = TicketPolicy.decision(
            ticket: 7, status: .resolved, resolution: .delegated, request: AccessRequestID(10), organisation: organisation)
        #expect(delegated?.code == .ticketDelegated && delegated?.rule == .r19)
        #expect(delegated?.message.contains("ORG-100000001 has a super user now") == true)
    }
}
