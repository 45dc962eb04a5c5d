import AccessAPITestSupport
import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Error codes over HTTP")
struct ErrorCodeTests {
    @Test("R7, R9, R12, R11, R10, R18: refusals arrive as problems with their stable code and status")
    func refusals() async throws {
        try await Fixture.with { f in
            let empty = try await f.organisation("Empty Org")
            let acme = try await f.organisation("Acme")
            try await f.administration.addStaff(
                email: "desk@ema.example", displayName: "Desk", role: .serviceDesk, password: "desk password 123", bcryptCost: 4)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let desk = try await api.signIn(email: "desk@ema.example", password: "desk password 123")
                let alice = try await api.onboard("Alice", fixture: f)

                // R9: no super user yet.
                let noSU = try await api.request("spor-industry-user", empty.rawValue, token: alice)
                #expect(noSU.status == .conflict && noSU.code == "no-super-user" && noSU["rule"] as? String == "R9")
                // R4: an industry role needs its organisation; staff roles are not requestable (422 from the schema or the policy).
                let noOrg = try await api.request("spor-industry-user", nil, token: alice)
                #expect(noOrg.status == .unprocessableContent && noOrg.code == "organisation-required")
                let staffRole = try await api.request("ema-admin", acme.rawValue, token: alice)
                #expect(staffRole.status == .badRequest || staffRole.status == .unprocessableContent)
                // R6: unknown organisation.
                let unknown = try await api.request("spor-industry-super-user", "ORG-999999999", token: alice)
                #expect(unknown.status == .unprocessableContent && unknown.code == "unknown-organisation")

                // Alice becomes Acme's first super user.
                let filed = try await api.request("spor-industry-super-user", acme.rawValue, token: alice)
                let requestID = try #require(filed["id"] as? Int)
                // R7: the same request again.
                let duplicate = try await api.request("spor-industry-super-user", acme.rawValue, token: alice)
                #expect(duplicate.status == .conflict && duplicate.code == "duplicate-request")
                // R10: the ticket's requirements, each naming its field.
                let letter = Data(Fixture.pdf).base64EncodedString()
                func ticket(subject: String, authority: Bool = true, contentType: String = "application/pdf", bytes: String? = nil) async throws
                    -> API.Reply
                {
                    try await api.call(
                        .post, "/v1/service-desk/tickets", token: alice,
                        [
                            "subject": subject, "accessRequestId": requestID,
                            "signatory": [
                                "name": "Dr. D", "jobTitle": "Director", "email": "d@acme.example",
                                "organisationId": acme.rawValue, "hasManagerialAuthority": authority,
                            ],
                            "letter": ["fileName": "l.pdf", "contentType": contentType, "contentBase64": bytes ?? letter],
                        ])
                }
                let noPhrase = try await ticket(subject: "Please help – request ID \(requestID)")
                #expect(noPhrase.status == .unprocessableContent && noPhrase["field"] as? String == "subject")
                let noAuthority = try await ticket(subject: "SPOR super user role access – request ID \(requestID)", authority: false)
                #expect(noAuthority.status == .unprocessableContent && noAuthority["field"] as? String == "signatory.hasManagerialAuthority")
                let notPDF = try await ticket(
                    subject: "SPOR super user role access – request ID \(requestID)",
                    bytes: Data("just text".utf8).base64EncodedString())
                #expect(notPDF.status == .unprocessableContent && notPDF["field"] as? String == "letter.contentBase64")
                let ok = try await ticket(subject: "SPOR super user role access – request ID \(requestID)")
                #expect(ok.status == .created)
                let ticketID = try #require(ok["id"] as? Int)
                // R18: a rejection needs a reason (schema minLength or policy).
                let noReason = try await api.call(.post, "/v1/service-desk/tickets/\(ticketID)/reject", token: desk, ["reason": " "])
                #expect(noReason.status == .unprocessableContent && noReason.code == "reason-required")
                #expect(try await api.call(.post, "/v1/service-desk/tickets/\(ticketID)/approve", token: desk, [:]).status == .ok)
                // R18: decided is final.
                let again = try await api.call(.post, "/v1/service-desk/tickets/\(ticketID)/approve", token: desk, [:])
                #expect(again.status == .conflict && again.code == "not-pending")
                // R7: the role is held now.
                let held = try await api.request("spor-industry-super-user", acme.rawValue, token: alice)
                #expect(held.status == .conflict && held.code == "already-held")

                // R12: a super user cannot approve their own request.
                let aliceOwn = try await api.request("spor-industry-user", acme.rawValue, token: alice)
                let ownID = try #require(aliceOwn["id"] as? Int)
                let own = try await api.call(.post, "/v1/organisations/\(acme.rawValue)/access-requests/\(ownID)/approve", token: alice, [:])
                #expect(own.status == .forbidden && own.code == "self-approval")

                // R11: the service desk has no say once the organisation has a super user.
                let bob = try await api.onboard("Bob", fixture: f)
                let bobs = try await api.request("spor-industry-super-user", acme.rawValue, token: bob)
                let bobsID = try #require(bobs["id"] as? Int)
                #expect(bobs["approverKind"] as? String == "organisation-super-users")
                let bobsTicket = try await api.call(
                    .post, "/v1/service-desk/tickets", token: bob,
                    [
                        "subject": "SPOR super user role access – request ID \(bobsID)",
                        "signatory": [
                            "name": "Dr. D", "jobTitle": "Director", "email": "d@acme.example",
                            "organisationId": acme.rawValue, "hasManagerialAuthority": true,
                        ],
                        "letter": ["fileName": "l.pdf", "contentType": "application/pdf", "contentBase64": letter],
                    ])
                #expect(bobsTicket.status == .unprocessableContent && bobsTicket["field"] as? String == "accessRequestId")
                // R13: someone else's request is not found, not forbidden.
                let peek = try await api.call(.get, "/v1/access-requests/\(bobsID)", token: try await api.onboard("Eve", fixture: f))
                #expect(peek.status == .notFound && peek.code == "not-found")
                // R14: the last super user cannot drop their role.
                let me = try await api.call(.get, "/v1/me", token: alice)
                let assignment = try #require(
                    (me["roleAssignments"] as? [[String: Any]])?.first { $0["role"] as? String == "spor-industry-super-user" }?["assignmentId"]
                        as? Int)
                let drop = try await api.call(.delete, "/v1/me/role-assignments/\(assignment)", token: alice)
                #expect(drop.status == .conflict && drop.code == "last-super-user")
            }
        }
    }

    @Test("A NUL character (PostgreSQL text cannot hold one) in a body or a query is a 422 problem, never a 500")
    func nulCharactersAreRefused() async throws {
        try await Fixture.with { f in
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                for (method, uri, body): (HTTPRequest.Method, String, String?) in [
                    (.post, "/v1/sessions", #"{"email":"a@example.com","password":"long password\u0000 here"}"#),
                    (.post, "/v1/accounts", #"{"email":"nul@example.com","displayName":"N\u0000L","password":"correct horse battery"}"#),
                    (.get, "/v1/organisations?q=ac%00me", nil),
                ] {
                    let reply = try await api.send(
                        method, uri, token: nil, headers: [.contentType: "application/json"], body: body.map { ByteBuffer(string: $0) })
                    #expect(reply.status == .unprocessableContent && reply.code == "validation-failed", "\(uri): \(reply.status) \(reply.text)")
                }
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM accounts WHERE email = 'nul@example.com'") == ["0"])
        }
    }
}
