import AccessAPITestSupport
import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Idempotency-Key")
struct IdempotencyTests {
    static let key = HTTPField.Name("Idempotency-Key")!
    static let replayed = HTTPField.Name("Idempotency-Replayed")!

    /// POSTs a raw JSON body with an `Idempotency-Key`.
    func post(_ api: API, _ uri: String, key: String, token: String? = nil, _ body: String) async throws -> API.Reply {
        try await api.send(
            .post, uri, token: token, headers: [.contentType: "application/json", Self.key: key], body: ByteBuffer(string: body))
    }

    @Test("A retry with the same key and body returns the first answer and creates nothing; another body is 422 (anonymous: another request)")
    func replay() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let body = #"{"email":"retry@example.com","displayName":"Retry","password":"correct horse battery"}"#
                let first = try await post(api, "/v1/accounts", key: "k-1", body)
                let second = try await post(api, "/v1/accounts", key: "k-1", body)
                #expect(first.status == .created && second.status == .created)
                #expect(first.text == second.text && second.headers[Self.replayed] == "true")
                // Anonymous keys are scoped to their request: another caller's body with the same key is its own request,
                // neither blocked by the first nor answered with it.
                let other = try await post(
                    api, "/v1/accounts", key: "k-1", #"{"email":"other@example.com","displayName":"O","password":"correct horse battery"}"#)
                #expect(other.status == .created && other.headers[Self.replayed] == nil && other.text != first.text)

                // Signed in: a retried access request files one request.
                let verification = try await f.verificationToken(sentTo: "retry@example.com")
                _ = try await api.call(.post, "/v1/accounts/verify", ["token": verification])
                let token = try await api.signIn(email: "retry@example.com", password: "correct horse battery")
                let answers = [["question": "a", "answer": "1"], ["question": "b", "answer": "2"], ["question": "c", "answer": "3"]]
                _ = try await api.call(.put, "/v1/me/security-questions", token: token, ["answers": answers])
                let request = #"{"role":"spor-industry-user","organisationId":"\#(org.rawValue)"}"#
                let a = try await post(api, "/v1/access-requests", key: "file-1", token: token, request)
                let b = try await post(api, "/v1/access-requests", key: "file-1", token: token, request)
                #expect(a.status == .created && b.status == .created && a.text == b.text)
                // A signed-in caller's key is theirs: reusing it for another request is 422.
                let reused = try await post(api, "/v1/access-requests", key: "file-1", token: token, #"{"role":"spor-unaffiliated-user"}"#)
                #expect(reused.status == .unprocessableContent && reused.text.contains("idempotency-key-reused"))
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM accounts WHERE email = 'retry@example.com'") == ["1"])
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM accounts WHERE email = 'other@example.com'") == ["1"])
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM access_requests WHERE role = 'spor-industry-user'") == ["1"])
        }
    }

    @Test("Two concurrent requests with one key: one wins, the other gets 409 (or the replayed answer)")
    func concurrent() async throws {
        try await Fixture.with { f in
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let body = #"{"email":"race@example.com","displayName":"Race","password":"correct horse battery"}"#
                let results = try await withThrowingTaskGroup(of: API.Reply.self) { group in
                    for _ in 0..<2 { group.addTask { try await post(api, "/v1/accounts", key: "race", body) } }
                    var all: [API.Reply] = []
                    for try await result in group { all.append(result) }
                    return all
                }
                let statuses = results.map(\.status.code).sorted()
                #expect(statuses == [201, 201] || statuses == [201, 409], "\(statuses)")
                let created = results.filter { $0.status == .created }
                #expect(created.count == 1 || created.contains { $0.headers[Self.replayed] == "true" })
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM accounts WHERE email = 'race@example.com'") == ["1"])
        }
    }

    @Test("Row 4 of the identity issue: a sign-in sent with an Idempotency-Key stores no bearer token and is not replayed")
    func signInIsNeverStored() async throws {
        try await Fixture.with { f in
            let user = try await f.user("retry")
            let email = try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(user.pgUUID)").first)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let body = #"{"email":"\#(email)","password":"\#(Fixture.password)"}"#
                let first = try await post(api, "/v1/sessions", key: "sign-in-1", body)
                let again = try await post(api, "/v1/sessions", key: "sign-in-1", body)
                #expect(first.status == .created && again.status == .created)
                #expect(again.headers[Self.replayed] == nil)
                let tokens = [first["token"] as? String, again["token"] as? String].compactMap { $0 }
                #expect(tokens.count == 2 && tokens[0] != tokens[1])
                // Nothing was kept for the key, so no stored response holds either token.
                #expect(try await f.ownerQuery("SELECT count(*)::text FROM idempotency_keys WHERE key = 'sign-in-1'") == ["0"])
                let stored = try await f.ownerQuery("SELECT coalesce(string_agg(convert_from(response_body, 'UTF8'), ''), '') FROM idempotency_keys")
                #expect(!tokens.contains { token in stored.contains { $0.contains(token) } })
            }
        }
    }
}
