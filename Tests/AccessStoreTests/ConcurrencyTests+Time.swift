import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension ConcurrencyTests {
    // MARK: R21, R22: the jobs and the review decisions under concurrency

    @Test("R21: instances running the grants job at once end each lapsed grant once and send each notice once", .timeLimit(.minutes(2)))
    func grantJobsAtOnce() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            for _ in 0..<12 {
                let member = try await f.user("member")
                let request = try await f.requests.submit(
                    actor: member, role: .industryUser, organisation: org, justification: nil,
                    accessUntil: Date().addingTimeInterval(10 * 86_400)
                ).request
                _ = try await f.requests.decide(actor: superUser, request: request.id, channel: .organisation, action: .approve)
            }
            try await Self.warmUp(f, connections: 8)
            func run(_ instances: Int) async throws -> (ended: Int, notices: Int) {
                try await withThrowingTaskGroup(of: (ended: Int, notices: Int).self) { group in
                    for _ in 0..<instances { group.addTask { try await f.expiry.runGrantJobs(batch: 5) } }
                    var total = (ended: 0, notices: 0)
                    for try await round in group { total = (total.ended + round.ended, total.notices + round.notices) }
                    return total
                }
            }
            try await f.setJobClock(ahead: "8 days")
            var notices = 0
            for _ in 0..<3 { notices += try await run(4).notices }
            #expect(notices == 12, "the 3-day notice of each grant, once")
            try await f.setJobClock(ahead: "11 days")
            var ended = 0
            for _ in 0..<3 { ended += try await run(4).ended }
            #expect(ended == 12)
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM audit_events WHERE action = 'role-assignment.ended' GROUP BY subject_id HAVING count(*) > 1"
                ).isEmpty, "one audit event per end")
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE template = 'grant-ended'") == ["12"])
        }
    }

    @Test(
        "R22, R14: two super users revoking each other's role in a review at once leave one of them; one item, decided twice at once, once",
        .timeLimit(.minutes(2)))
    func reviewDecisionsAtOnce() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let first = try await f.superUser(of: org)
            let second = try await f.superUser(of: org)
            let third = try await f.superUser(of: org)
            try await f.setJobClock(ahead: "13 months")
            let reviews = AccessReviewStore(database: f.database)
            #expect(try await AccessReviewStore(database: f.worker).runReviewJobs().opened == 1)
            let review = try #require(Int64(try await f.ownerQuery("SELECT id::text FROM access_reviews").first ?? ""))
            func item(of account: TestAccount) async throws -> Int64 {
                try #require(
                    Int64(
                        try await f.ownerQuery(
                            "SELECT id::text FROM access_review_items WHERE review_id = \(review) AND account_id = \(account.pgUUID)"
                        ).first ?? ""))
            }
            let firstItem = try await item(of: first)
            let secondItem = try await item(of: second)
            let thirdItem = try await item(of: third)
            try await Self.warmUp(f, connections: 4)

            // The third super user first leaves, so two remain; then each revokes the other at the same moment.
            _ = try await reviews.decide(actor: first, review: review, [.init(item: thirdItem, decision: .revoked)])
            let crossed = try await withThrowingTaskGroup(of: String.self) { group in
                for (actor, target) in [(first, secondItem), (second, firstItem)] {
                    group.addTask {
                        do {
                            _ = try await reviews.decide(actor: actor, review: review, [.init(item: target, decision: .revoked)])
                            return "revoked"
                        } catch {
                            return Self.code(of: error)
                        }
                    }
                }
                var all: [String] = []
                for try await answer in group { all.append(answer) }
                return all.sorted()
            }
            // The later one finds itself no longer a super user (not-found) or the other as the last one (last-super-user).
            #expect(crossed.filter { $0 == "revoked" }.count == 1, "\(crossed)")
            #expect(Set(crossed).isSubset(of: ["revoked", "last-super-user", "not-found"]), "\(crossed)")
            #expect(try await f.ownerQuery("SELECT spor_active_super_user_count(\(org.rawValue))::text") == ["1"])

            // One item decided by two deciders at once: the survivor is the only super user now, so the service desk
            // decides their item; two agents certify it at the same moment, and one decision stands.
            let survivor = try #require(
                try await f.ownerQuery(
                    "SELECT account_id::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL"
                ).first)
            let survivorItem = try #require(
                Int64(
                    try await f.ownerQuery(
                        "SELECT id::text FROM access_review_items WHERE review_id = \(review) AND account_id = \(survivor)::uuid"
                    ).first ?? ""))
            let agents = [try await f.staff(.serviceDesk), try await f.staff(.serviceDesk)]
            let twice = try await withThrowingTaskGroup(of: String.self) { group in
                for agent in agents {
                    group.addTask {
                        do {
                            _ = try await reviews.decide(actor: agent, review: review, [.init(item: survivorItem, decision: .certified)])
                            return "certified"
                        } catch {
                            return Self.code(of: error)
                        }
                    }
                }
                var all: [String] = []
                for try await answer in group { all.append(answer) }
                return all.sorted()
            }
            #expect(twice == ["certified", "not-pending"], "\(twice)")
            #expect(
                try await f.ownerQuery("SELECT count(*)::text FROM audit_events WHERE action = 'access-review.certified'") == ["1"])
        }
    }
}
