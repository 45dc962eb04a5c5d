import AccessAPITestSupport
import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("The seed process through HTTP")
struct SeedScenarioTests {
    @Test(
        "Seed (1): register, verify, sign in, security questions, find the organisation, request, ticket, service desk approves, the new super user approves a colleague"
    )
    func organisationInOMS() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation("Acmé Pharma")
            let desk = try await f.administration.addStaff(
                email: "desk@ema.example", displayName: "Desk", role: .serviceDesk, password: "desk password 123", bcryptCost: 4)
            _ = desk
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                // 1b: self-registration; the token arrives by e-mail (the outbox).
                let registered = try await api.call(
                    .post, "/v1/accounts", ["email": "Alice@Example.com", "displayName": "Alice", "password": "correct horse battery"])
                #expect(registered.status == .created && registered["status"] as? String == "pending")
                let again = try await api.call(
                    .post, "/v1/accounts", ["email": "alice@example.com", "displayName": "Alice", "password": "correct horse battery"])
                #expect(again.status == .conflict && again.code == "account-exists")
                let pending = try await api.call(.post, "/v1/sessions", ["email": "alice@example.com", "password": "correct horse battery"])
                #expect(pending.status == .forbidden && pending.code == "account-pending")
                let body = try #require(try await f.ownerQuery("SELECT body FROM notification_outbox WHERE template = 'verify-email'").first)
                let token = String(body.split(separator: " ").last ?? "")
                #expect(try await api.call(.post, "/v1/accounts/verify", ["token": token]).status == .ok)
                let wrong = try await api.call(.post, "/v1/sessions", ["email": "alice@example.com", "password": "wrong password!!"])
                #expect(wrong.status == .unauthorized)
                let session = try await api.call(.post, "/v1/sessions", ["email": "alice@example.com", "password": "correct horse battery"])
                #expect(session.status == .created)
                let alice = try #require(session["token"] as? String)

                // 2: OMS search without login, accent-insensitive.
                let search = try await api.call(.get, "/v1/organisations?q=acme")
                let items = search["items"] as? [[String: Any]] ?? []
                #expect(items.first?["id"] as? String == org.rawValue)

                // 3: the request; R3 first.
                let early = try await api.call(
                    .post, "/v1/access-requests", token: alice, ["role": "spor-industry-super-user", "organisationId": org.rawValue])
                #expect(early.status == .forbidden && early.code == "security-questions-required")
                let answers = [
                    ["question": "First pet?", "answer": "Rex"], ["question": "Birth city?", "answer": "Leiden"],
                    ["question": "School?", "answer": "Regenboog"],
                ]
                #expect(try await api.call(.put, "/v1/me/security-questions", token: alice, ["answers": answers]).status == .noContent)
                let filed = try await api.call(
                    .post, "/v1/access-requests", token: alice, ["role": "spor-industry-super-user", "organisationId": org.rawValue])
                #expect(filed.status == .created && filed["approverKind"] as? String == "ema-service-desk")
                let requestID = try #require(filed["id"] as? Int)
                #expect(requestID >= 10000)
                let mine = try await api.call(.get, "/v1/me/access-requests", token: alice)
                #expect((mine["items"] as? [[String: Any]])?.first?["id"] as? Int == requestID)

                // 4: the ticket quoting the request id, with the letter.
                let letter = Data(Fixture.pdf).base64EncodedString()
                let ticket = try await api.call(
                    .post, "/v1/service-desk/tickets", token: alice,
                    [
                        "subject": "SPOR Super user role access – request ID \(requestID)",
                        "signatory": [
                            "name": "Dr. Director", "jobTitle": "Head of Regulatory Affairs", "email": "director@acme.example",
                            "organisationId": org.rawValue, "hasManagerialAuthority": true,
                        ],
                        "letter": ["fileName": "letter.pdf", "contentType": "application/pdf", "contentBase64": letter],
                    ])
                #expect(ticket.status == .created && ticket["status"] as? String == "open")
                let ticketID = try #require(ticket["id"] as? Int)

                // 5: the service desk approves.
                let deskToken = try await api.signIn(email: "desk@ema.example", password: "desk password 123")
                let approved = try await api.call(.post, "/v1/service-desk/tickets/\(ticketID)/approve", token: deskToken, [:])
                #expect(approved.status == .ok && approved["resolution"] as? String == "approved")
                let me = try await api.call(.get, "/v1/me", token: alice)
                #expect((me["roleAssignments"] as? [[String: Any]])?.first?["role"] as? String == "spor-industry-super-user")

                // Later requests go to Alice, not to EMA: a colleague's industry-user request and a second super user.
                let bob = try await api.onboard("Bob", fixture: f)
                let bobs = try await api.request("spor-industry-user", org.rawValue, token: bob)
                #expect(bobs.status == .created && bobs["approverKind"] as? String == "organisation-super-users")
                let bobsID = try #require(bobs["id"] as? Int)
                let listed = try await api.call(.get, "/v1/organisations/\(org.rawValue)/access-requests?status=pending", token: alice)
                #expect((listed["items"] as? [[String: Any]])?.map { $0["id"] as? Int } == [bobsID])
                let colleague = try await api.call(.post, "/v1/organisations/\(org.rawValue)/access-requests/\(bobsID)/approve", token: alice, [:])
                #expect(colleague.status == .ok && colleague["status"] as? String == "approved")
                let carol = try await api.onboard("Carol", fixture: f)
                let carols = try await api.request("spor-industry-super-user", org.rawValue, token: carol)
                #expect(carols.status == .created && carols["approverKind"] as? String == "organisation-super-users")
                let carolsID = try #require(carols["id"] as? Int)

                // Another organisation's address for this request: 404 (R13).
                let other = try await f.organisation("Other")
                let foreign = try await api.call(.post, "/v1/organisations/\(other.rawValue)/access-requests/\(carolsID)/approve", token: alice, [:])
                #expect(foreign.status == .notFound)
                let second = try await api.call(
                    .post, "/v1/organisations/\(org.rawValue)/access-requests/\(carolsID)/approve", token: alice, ["comment": "welcome"])
                #expect(second.status == .ok && second["status"] as? String == "approved")
                let carolsMe = try await api.call(.get, "/v1/me", token: carol)
                #expect((carolsMe["roleAssignments"] as? [[String: Any]])?.first?["role"] as? String == "spor-industry-super-user")

                // Signing out ends the token.
                #expect(try await api.call(.delete, "/v1/sessions/current", token: alice).status == .noContent)
                #expect(try await api.call(.get, "/v1/me", token: alice).status == .unauthorized)
            }
            let templates = try await f.ownerQuery("SELECT DISTINCT template FROM notification_outbox ORDER BY 1")
            #expect(
                Set(templates).isSuperset(of: [
                    "verify-email", "request-filed-first-super-user", "ticket-opened", "ticket-resolved", "request-decided", "request-filed",
                ]))
            #expect(try await f.brokenBookkeeping() == [])
        }
    }

    @Test("Bad input is a 4xx problem and changes nothing")
    func badInput() async throws {
        try await Fixture.with { f in
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let malformed = try await api.send(
                    .post, "/v1/accounts", headers: [.contentType: "application/json"], body: ByteBuffer(string: "{not json"))
                #expect(malformed.status == .badRequest)
                let short = try await api.call(.post, "/v1/accounts", ["email": "x@example.com", "displayName": "X", "password": "short"])
                #expect(short.status == .unprocessableContent && short["field"] as? String == "password")
                #expect(short.contentType == "application/problem+json")
                let badOrg = try await api.call(.get, "/v1/organisations/ORG-1")
                #expect(badOrg.status == .unprocessableContent)
                let missing = try await api.call(.get, "/v1/organisations/ORG-999999999")
                #expect(missing.status == .notFound && missing.code == "not-found")
                let anonymous = try await api.call(.get, "/v1/me")
                #expect(anonymous.status == .unauthorized)
                let bogus = try await api.call(.get, "/v1/me", token: "not-a-token")
                #expect(bogus.status == .unauthorized)
                let badLimit = try await api.call(.get, "/v1/organisations?limit=0")
                #expect(badLimit.status == .unprocessableContent || badLimit.status == .badRequest)
                let badRole = try await api.call(.post, "/v1/accounts", ["email": 5])
                #expect(badRole.status == .badRequest)
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM accounts") == ["0"])
        }
    }

    @Test("The contract is served at /openapi.yaml")
    func servesContract() async throws {
        try await Fixture.with { f in
            try await TestApplication.build(f.db).test(.router) { client in
                let contract = try await API(client: client).send(.get, "/openapi.yaml")
                #expect(contract.status == .ok)
                #expect(contract.text.hasPrefix("openapi: 3.1.0"))
            }
        }
    }
}
