import AccessAPI
import AccessStore
import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Idempotency-Key")
struct IdempotencyTests {
    func post(_ client: any TestClientProtocol, _ uri: String, key: String, token: String? = nil, _ body: String) async throws -> (
        HTTPResponse.Status, String, String?
    ) {
        var headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("Idempotency-Key")!: key]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
            (response.status, String(buffer: response.body), response.headers[HTTPField.Name("Idempotency-Replayed")!])
        }
    }

    @Test("A retry with the same key and body returns the first answer and creates nothing; another body is 422")
    func replay() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            try await SeedScenarioTests.app(f.db).test(.router) { client in
                let body = #"{"email":"retry@example.com","displayName":"Retry","password":"correct horse battery"}"#
                let first = try await post(client, "/v1/accounts", key: "k-1", body)
                let second = try await post(client, "/v1/accounts", key: "k-1", body)
                #expect(first.0 == .created && second.0 == .created)
                #expect(first.1 == second.1 && second.2 == "true")
                let other = try await post(
                    client, "/v1/accounts", key: "k-1", #"{"email":"other@example.com","displayName":"O","password":"correct horse battery"}"#)
                #expect(other.0 == .unprocessableContent && other.1.contains("idempotency-key-reused"))

                // Signed in: a retried access request files one request.
                let verify = try #require(
                    try await f.ownerQuery(
                        "SELECT body FROM notification_outbox WHERE template = 'verify-email' AND recipient_email = 'retry@example.com'"
                    ).first)
                _ = try await API(client: client).call(.post, "/v1/accounts/verify", ["token": String(verify.split(separator: " ").last ?? "")])
                let session = try await API(client: client).call(
                    .post, "/v1/sessions", ["email": "retry@example.com", "password": "correct horse battery"])
                let token = try #require(session["token"] as? String)
                let answers = [["question": "a", "answer": "1"], ["question": "b", "answer": "2"], ["question": "c", "answer": "3"]]
                _ = try await API(client: client).call(.put, "/v1/me/security-questions", token: token, ["answers": answers])
                let request = #"{"role":"spor-industry-user","organisationId":"\#(org.rawValue)"}"#
                let a = try await post(client, "/v1/access-requests", key: "file-1", token: token, request)
                let b = try await post(client, "/v1/access-requests", key: "file-1", token: token, request)
                #expect(a.0 == .created && b.0 == .created && a.1 == b.1)
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM accounts WHERE email = 'retry@example.com'") == ["1"])
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM accounts WHERE email = 'other@example.com'") == ["0"])
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM access_requests WHERE role = 'spor-industry-user'") == ["1"])
        }
    }

    @Test("Two concurrent requests with one key: one wins, the other gets 409 (or the replayed answer)")
    func concurrent() async throws {
        try await Fixture.with { f in
            try await SeedScenarioTests.app(f.db).test(.router) { client in
                let body = #"{"email":"race@example.com","displayName":"Race","password":"correct horse battery"}"#
                let results = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String, String?).self) { group in
                    for _ in 0..<2 { group.addTask { try await post(client, "/v1/accounts", key: "race", body) } }
                    var all: [(HTTPResponse.Status, String, String?)] = []
                    for try await result in group { all.append(result) }
                    return all
                }
                let statuses = results.map(\.0.code).sorted()
                #expect(statuses == [201, 201] || statuses == [201, 409], "\(statuses)")
                let created = results.filter { $0.0 == .created }
                #expect(created.count == 1 || created.contains { $0.2 == "true" })
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM accounts WHERE email = 'race@example.com'") == ["1"])
        }
    }
}
