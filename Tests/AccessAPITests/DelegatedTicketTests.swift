import AccessAPI
import AccessAPITestSupport
import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

// R19 over HTTP: two people ask to be an organisation's first super user, each with a ticket; the service desk
// approves one. The other's request goes to the new super user at once, and its ticket is closed as delegated
// instead of staying open and becoming overdue in the desk's queue.

@Suite("R19: a ticket whose request went to the organisation is closed as delegated")
struct DelegatedTicketTests {
    @Test("The desk approves one candidate: the other's ticket is delegated, the desk can no longer decide it, the new super user can")
    func delegation() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let desk = try await f.staff(.serviceDesk)
            let (alice, bob) = (try await f.user("alice"), try await f.user("bob"))
            let aliceRequest = try await f.requests.submit(actor: alice, role: .superUser, organisation: org, justification: nil).request
            let bobRequest = try await f.requests.submit(actor: bob, role: .superUser, organisation: org, justification: nil).request
            let aliceTicket = try await f.openTicket(for: aliceRequest, by: alice)
            let bobTicket = try await f.openTicket(for: bobRequest, by: bob)

            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let approved = try await api.call(.post, "/v1/service-desk/tickets/\(aliceTicket.id)/approve", token: desk.bearerToken, [:])
                #expect(approved.status == .ok, "\(approved.text)")

                let ticket = try await api.call(.get, "/v1/service-desk/tickets/\(bobTicket.id)", token: desk.bearerToken)
                #expect(ticket.json["status"] as? String == "resolved")
                #expect(ticket.json["resolution"] as? String == "delegated")
                let request = try await api.call(.get, "/v1/access-requests/\(bobRequest.id)", token: bob.bearerToken)
                #expect(request.json["approverKind"] as? String == "organisation-super-users")

                // The Swift half: the desk is told where the request went, before any SQL runs.
                let again = try await api.call(.post, "/v1/service-desk/tickets/\(bobTicket.id)/approve", token: desk.bearerToken, [:])
                #expect(again.status == .conflict && again.code == "ticket-delegated", "\(again.text)")
                #expect(again.json["rule"] as? String == "R19")

                // Nothing overdue is left in the desk's queue for the organisation.
                #expect(
                    try await f.ownerQuery(
                        "SELECT count(*)::text FROM service_desk_tickets WHERE organisation_id = \(org.rawValue) AND status = 'open'")
                        == ["0"])
                // Bob was told, and the new super user decides his request.
                #expect(
                    try await f.ownerQuery(
                        "SELECT template FROM notification_outbox WHERE recipient_account_id = \(bob.pgUUID) AND template = 'ticket-resolved'")
                        == ["ticket-resolved"])
                let decided = try await api.call(
                    .post, "/v1/organisations/\(org.rawValue)/access-requests/\(bobRequest.id)/approve", token: alice.bearerToken, [:])
                #expect(decided.status == .ok, "\(decided.text)")
            }
        }
    }
}
