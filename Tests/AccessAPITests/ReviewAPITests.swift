import AccessAPITestSupport
import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import Testing

// R22 over HTTP: an access review opened by the job on the jobs' clock (settings.job_clock_offset), listed, decided
// one item at a time and many at once, and its completion in the reporting view.
@Suite("R22 over HTTP: access reviews listed, decided one by one and many at once")
struct ReviewAPITests {
    @Test("Super users certify and revoke others' roles, never their own; the desk decides the only super user's; all or none")
    func reviewOverHTTP() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let first = try await f.superUser(of: org)
            let second = try await f.superUser(of: org)
            var joined: [TestAccount] = []
            for _ in 0..<3 {
                let member = try await f.user("member")
                let request = try await f.requests.submit(actor: member, role: .industryUser, organisation: org, justification: nil).request
                _ = try await f.requests.decide(actor: first, request: request.id, channel: .organisation, action: .approve)
                joined.append(member)
            }
            let members = joined
            let outsider = try await f.superUser(of: try await f.organisation())
            try await f.setJobClock(ahead: "13 months")
            #expect(try await AccessReviewStore(database: f.worker).runReviewJobs().opened == 2)

            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let base = "/v1/organisations/\(org.rawValue)/access-reviews"
                #expect(try await api.call(.get, base, token: outsider.bearerToken).status == .notFound, "R13")
                let list = try await api.call(.get, base, token: first.bearerToken)
                #expect(list.status == .ok, "\(list.text)")
                let review = try #require(list.items.first)
                #expect(review["status"] as? String == "open" && review["items"] as? Int == 5 && review["undecided"] as? Int == 5)
                let reviewID = try #require(review["id"] as? Int)

                // Paging through the items, two at a time.
                var items: [[String: Any]] = []
                var cursor: String?
                repeat {
                    let page = try await api.call(
                        .get, "\(base)/\(reviewID)/items?limit=2" + (cursor.map { "&cursor=\($0)" } ?? ""), token: first.bearerToken)
                    #expect(page.status == .ok, "\(page.text)")
                    items += page.items
                    cursor = page["nextCursor"] as? String
                } while cursor != nil
                #expect(items.count == 5)
                // R13: another organisation's review is not found through this organisation's address, even for staff.
                let staff = try await f.staff(.serviceDesk)
                let other = try #require(
                    Int(try await f.ownerQuery("SELECT id::text FROM access_reviews WHERE organisation_id <> \(org.rawValue)").first ?? ""))
                #expect(try await api.call(.get, "\(base)/\(other)/items", token: staff.bearerToken).status == .notFound)
                #expect(try await api.call(.get, "\(base)/\(other)/items", token: first.bearerToken).status == .notFound)
                func item(of account: TestAccount) throws -> Int {
                    try #require(items.first { $0["accountId"] as? String == account.description }?["id"] as? Int)
                }

                let own = try await api.call(
                    .post, "\(base)/\(reviewID)/items/\(try item(of: first))/decision", token: first.bearerToken, ["decision": "certified"])
                #expect(own.status == .forbidden && own.code == "self-approval" && own["rule"] as? String == "R22", "\(own.text)")

                // Many at once, all or none: one of them is the caller's own, so nothing is decided.
                let mixed = try await api.call(
                    .post, "\(base)/\(reviewID)/decisions", token: first.bearerToken,
                    [
                        "decisions": [
                            ["itemId": try item(of: members[0]), "decision": "certified"],
                            ["itemId": try item(of: first), "decision": "certified"],
                        ]
                    ])
                #expect(mixed.status == .forbidden && mixed.code == "self-approval")
                let repeated = try await api.call(
                    .post, "\(base)/\(reviewID)/decisions", token: first.bearerToken,
                    [
                        "decisions": [
                            ["itemId": try item(of: members[0]), "decision": "certified"],
                            ["itemId": try item(of: members[0]), "decision": "revoked"],
                        ]
                    ])
                #expect(repeated.status == .unprocessableContent && repeated["field"] as? String == "decisions", "\(repeated.text)")
                let many = try await api.call(
                    .post, "\(base)/\(reviewID)/decisions", token: first.bearerToken,
                    [
                        "decisions": [
                            ["itemId": try item(of: members[0]), "decision": "certified"],
                            ["itemId": try item(of: members[1]), "decision": "revoked", "comment": "left the company"],
                            ["itemId": try item(of: second), "decision": "certified"],
                        ]
                    ])
                #expect(many.status == .ok && many.items.count == 3, "\(many.text)")
                let again = try await api.call(
                    .post, "\(base)/\(reviewID)/items/\(try item(of: members[0]))/decision", token: second.bearerToken,
                    ["decision": "revoked"])
                #expect(again.status == .conflict && again.code == "not-pending")
                let bad = try await api.call(
                    .post, "\(base)/\(reviewID)/items/\(try item(of: members[2]))/decision", token: second.bearerToken,
                    ["decision": "maybe"])
                #expect(bad.status == .unprocessableContent || bad.status == .badRequest, "\(bad.text)")
                let desk = try await f.staff(.serviceDesk)
                let delegated = try await api.call(
                    .post, "\(base)/\(reviewID)/items/\(try item(of: first))/decision", token: desk.bearerToken, ["decision": "certified"])
                #expect(delegated.status == .conflict && delegated.code == "delegated-to-organisation", "\(delegated.text)")
                let certified = try await api.call(
                    .post, "\(base)/\(reviewID)/items/\(try item(of: first))/decision", token: second.bearerToken,
                    ["decision": "certified"])
                #expect(certified.status == .ok && certified["decision"] as? String == "certified", "\(certified.text)")

                // The revoked member is no longer one; the review's figures follow.
                let memberList = try await api.call(.get, "/v1/organisations/\(org.rawValue)/members", token: first.bearerToken)
                #expect(!memberList.items.contains { $0["accountId"] as? String == members[1].description })
                let after = try await api.call(.get, base, token: second.bearerToken)
                let figures = try #require(after.items.first)
                #expect(figures["certified"] as? Int == 3 && figures["revoked"] as? Int == 1 && figures["undecided"] as? Int == 1)
                #expect(
                    try await f.ownerQuery(
                        "SELECT completion_percent::text FROM reporting.access_review_completion WHERE organisation_id = \(org.rawValue)")
                        == ["80.0"])
            }
        }
    }
}
