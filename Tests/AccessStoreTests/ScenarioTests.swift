import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import Testing

@Suite("The seed process through the store")
struct ScenarioTests {
    @Test("R8/R10: first super user via the service desk, then the organisation approves a colleague")
    func firstSuperUserThenDelegation() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation("Acme Pharma")
            let alice = try await f.user("alice")
            let filed = try await f.requests.submit(actor: alice, role: .superUser, organisation: org, justification: "QPPV office")
            #expect(filed.request.approverKind == .emaServiceDesk)
            #expect(filed.request.id.rawValue >= 10000)
            let ticket = try await f.openTicket(for: filed.request, by: alice)
            #expect(ticket.dueAt.timeIntervalSince(ticket.openedAt) == 24 * 3600)
            let desk = try await f.staff(.serviceDesk)
            let decision = try await f.requests.decide(actor: desk, request: filed.request.id, channel: .serviceDesk, action: .approve)
            #expect(decision.request.status == .approved)
            #expect(decision.grant?.firstSuperUser == true)
            let resolved = try await f.tickets.ticket(ticket.id, actor: alice)
            #expect(resolved.status == .resolved && resolved.resolution == .approved)

            let bob = try await f.user("bob")
            let bobs = try await f.requests.submit(actor: bob, role: .industryUser, organisation: org, justification: nil)
            #expect(bobs.request.approverKind == .organisationSuperUsers)
            let approved = try await f.requests.decide(actor: alice, request: bobs.request.id, channel: .organisation, action: .approve)
            #expect(approved.grant?.role == .industryUser)

            let notified = try await f.ownerQuery(
                "SELECT template || ':' || recipient_email FROM notification_outbox ORDER BY id")
            #expect(notified.contains { $0.hasPrefix("request-filed:alice-") })
            #expect(notified.filter { $0.hasPrefix("request-decided:") }.count == 2)
            #expect(notified.contains { $0.hasPrefix("ticket-opened:") } && notified.contains { $0.hasPrefix("ticket-resolved:") })
        }
    }

    @Test("R5/R17: unaffiliated role at once, OMS change request approved by a data steward")
    func organisationNotInOMS() async throws {
        try await Fixture.with { f in
            let carol = try await f.user("carol")
            let unaffiliated = try await f.requests.submit(actor: carol, role: .unaffiliatedUser, organisation: nil, justification: nil)
            #expect(unaffiliated.request.status == .approved && unaffiliated.request.approverKind == .automatic)
            #expect(unaffiliated.grant != nil)
            let change = try await f.oms.file(
                actor: carol, name: "Newco Biotech", country: "BE", city: "Ghent", address: nil, justification: "new company",
                documents: [Upload(fileName: "kbo.pdf", contentType: .pdf, bytes: Fixture.pdf)])
            let steward = try await f.staff(.dataSteward)
            let decided = try await f.oms.decide(actor: steward, request: change.id, approve: true, reason: nil)
            let org = try #require(decided.organisation)
            let filed = try await f.requests.submit(actor: carol, role: .superUser, organisation: org, justification: nil)
            #expect(filed.request.approverKind == .emaServiceDesk)
        }
    }
}
