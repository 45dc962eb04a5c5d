import AccessAPI
import AccessAPITestSupport
import AccessStore
import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Sessions and limits")
struct SessionAPITests {
    @Test("Five failed sign-ins within 15 minutes lock the account out with 429, even with the right password")
    func lockout() async throws {
        try await Fixture.with { f in
            try await f.administration.addStaff(
                email: "agent@ema.example", displayName: "Agent", role: .serviceDesk, password: "right password 123", bcryptCost: 4)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                // Unknown e-mail and wrong password answer alike.
                let unknown = try await api.call(.post, "/v1/sessions", ["email": "nobody@ema.example", "password": "whatever password"])
                #expect(unknown.status == .unauthorized && unknown.code == "invalid-credentials")
                for _ in 0..<5 {
                    let wrong = try await api.call(.post, "/v1/sessions", ["email": "agent@ema.example", "password": "wrong password 123"])
                    #expect(wrong.status == .unauthorized && wrong.code == "invalid-credentials")
                }
                let locked = try await api.call(.post, "/v1/sessions", ["email": "agent@ema.example", "password": "right password 123"])
                #expect(locked.status == .tooManyRequests && locked.code == "too-many-attempts")
            }
            // The window passes: sign-in works again.
            try await f.owner.query("UPDATE sign_in_failures SET failed_at = failed_at - interval '16 minutes'")
            try await TestApplication.build(f.db).test(.router) { client in
                let ok = try await API(client: client).call(.post, "/v1/sessions", ["email": "agent@ema.example", "password": "right password 123"])
                #expect(ok.status == .created)
            }
        }
    }

    @Test(
        "30 concurrent wrong passwords: 5 are checked, 25 get 429; the right one is refused too; an unknown e-mail is throttled alike")
    func concurrentLockout() async throws {
        try await Fixture.with { f in
            try await f.administration.addStaff(
                email: "target@ema.example", displayName: "Target", role: .serviceDesk, password: "right password 123", bcryptCost: 4)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                for email in ["target@ema.example", "nobody-\(UUID().uuidString.prefix(6))@ema.example"] {
                    let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                        for _ in 0..<30 {
                            group.addTask {
                                try await api.call(.post, "/v1/sessions", ["email": email, "password": "wrong password 123"]).status
                            }
                        }
                        var all: [HTTPResponse.Status] = []
                        for try await status in group { all.append(status) }
                        return all
                    }
                    #expect(statuses.filter { $0 == .unauthorized }.count == 5, "\(email)")
                    #expect(statuses.filter { $0 == .tooManyRequests }.count == 25, "\(email)")
                    let again = try await api.call(.post, "/v1/sessions", ["email": email.uppercased(), "password": "right password 123"])
                    #expect(again.status == .tooManyRequests && again.code == "too-many-attempts", "\(email)")
                }
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM sign_in_failures") == ["10"])
        }
    }

    @Test("An oversized body is a 413 problem and changes nothing")
    func bodyLimit() async throws {
        try await Fixture.with { f in
            let app = try TestApplication.build(f.db) { $0.maximumBodySize = 1024 }
            try await app.test(.router) { client in
                let big = String(repeating: "x", count: 5000)
                let reply = try await API(client: client).call(
                    .post, "/v1/accounts", ["email": "big@example.com", "displayName": big, "password": "correct horse battery"])
                #expect(reply.status == .contentTooLarge && reply.code == "body-too-large")
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM accounts") == ["0"])
        }
    }
}

@Suite("Optional bodies")
struct OptionalBodyTests {
    @Test("An approval or revocation without a body (or an empty one) is accepted where the body is optional")
    func emptyBodies() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let alice = try await f.superUser(of: org)
            let bob = try await f.user("bob")
            let filed = try await f.requests.submit(actor: bob, role: .industryUser, organisation: org, justification: nil)
            let email = try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(alice.rawValue)::uuid").first)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let token = try await api.signIn(email: email, password: "correct horse battery")
                let approved = try await api.send(
                    .post, "/v1/organisations/\(org.rawValue)/access-requests/\(filed.request.id.rawValue)/approve", token: token,
                    headers: [.contentType: "application/json"])
                #expect(approved.status == .ok)
            }
        }
    }
}
