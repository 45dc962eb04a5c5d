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

@Suite("R20: an organisation that loses its last super user does not strand its requests in silence")
struct StrandedRequestTests {
    @Test("The desk removes the last super user: the member's pending request is told, the desk is told, a candidate goes back to the desk")
    func lastSuperUserRemoved() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let alice = try await f.superUser(of: org)
            let desk = try await f.staff(.serviceDesk)
            let bob = try await f.user("bob")
            let carol = try await f.user("carol")
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let member = try await api.request("spor-industry-user", org.rawValue, token: bob.bearerToken)
                let candidate = try await api.request("spor-industry-super-user", org.rawValue, token: carol.bearerToken)
                #expect(candidate.json["approverKind"] as? String == "organisation-super-users")

                let revoked = try await api.call(
                    .delete, "/v1/organisations/\(org.rawValue)/members/\(alice.id.rawValue)/roles/spor-industry-super-user",
                    token: desk.bearerToken, ["reason": "left the company"])
                #expect(revoked.status == .noContent, "\(revoked.text)")

                let memberID = try #require(member.json["id"] as? Int)
                let candidateID = try #require(candidate.json["id"] as? Int)
                #expect(
                    try await f.ownerQuery(
                        "SELECT subject_id FROM notification_outbox WHERE recipient_account_id = \(bob.pgUUID) AND template = 'request-stranded'")
                        == [String(memberID)])
                #expect(
                    try await f.ownerQuery(
                        """
                        SELECT subject_id FROM notification_outbox
                        WHERE recipient_account_id = \(desk.pgUUID) AND template = 'request-stranded' AND subject_type = 'organisation'
                        """) == [org.rawValue])
                let back = try await api.call(.get, "/v1/access-requests/\(candidateID)", token: carol.bearerToken)
                #expect(back.json["approverKind"] as? String == "ema-service-desk")
                #expect(back.json["status"] as? String == "pending")
                let stillPending = try await api.call(.get, "/v1/access-requests/\(memberID)", token: bob.bearerToken)
                #expect(stillPending.json["status"] as? String == "pending")
            }
        }
    }
}

@Suite("Reminders over HTTP (issue 12): a request filed over HTTP, the jobs' clock moved on, the reminder in the outbox")
struct ReminderAPITests {
    @Test("Eight days on the jobs' clock, the reminders job reminds the super user; an administrator sees it over HTTP")
    func reminderSeenOverHTTP() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let applicant = try await f.user("applicant")
            let admin = try await f.staff(.admin)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let filed = try await api.request("spor-industry-user", org.rawValue, token: applicant.bearerToken)
                #expect(filed.status == .created)
                try await f.setJobClock(ahead: "8 days")
                #expect(try await f.expiry.sendReminders() == 1)
                let page = try await api.call(.get, "/v1/admin/notifications?recipient=\(superUser.id.rawValue)", token: admin.bearerToken)
                #expect(page.status == .ok)
                #expect(page.items.contains { $0["template"] as? String == "request-reminder" }, "\(page.text)")
            }
        }
    }
}
