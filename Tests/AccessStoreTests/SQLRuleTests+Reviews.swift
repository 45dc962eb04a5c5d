import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension SQLRuleTests {
    /// R22's SQL half: decisions written straight in SQL as the application role (UPDATE of an item's decision
    /// columns), the jobs run as the worker; the jobs' clock (settings.job_clock_offset) stands in for the months.
    @Suite("R22: access reviews (in SQL)")
    struct Reviews {

        /// An organisation with two super users and a member, reviewed: (first super user, second, member, review id).
        static func reviewed(_ f: Fixture) async throws -> (OrganisationID, TestAccount, TestAccount, TestAccount, String) {
            let org = try await f.organisation()
            let first = try await f.superUser(of: org)
            let second = try await f.superUser(of: org)
            let (member, request) = try await f.industryRequest(of: org)
            _ = try await f.requests.decide(actor: first, request: AccessRequestID(request), channel: .organisation, action: .approve)
            try await f.setJobClock(ahead: "13 months")
            let reviews = AccessReviewStore(database: f.worker)
            #expect(try await reviews.runReviewJobs() == (1, 0))
            let review = try await f.ownerValue("SELECT id::text FROM access_reviews WHERE organisation_id = \(org.rawValue)")
            return (org, first, second, member, review)
        }

        static func decide(
            _ f: Fixture, as actor: TestAccount, review: String, holder: TestAccount, _ decision: String
        ) async -> Answer? {
            await attempt(f, as: actor) { conn in
                let ids = try await conn.texts(
                    """
                    UPDATE access_review_items SET decision = \(decision), decided_by = \(actor.pgUUID), decided_at = now()
                    WHERE review_id = \(review)::bigint AND account_id = \(holder.pgUUID) RETURNING id::text
                    """)
                guard ids.count == 1 else { throw FixtureError("decided \(ids.count) items") }
            }
        }

        @Test("R22: a review opens once the interval has passed, once however many instances run the job, with every active role")
        func opening() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                _ = try await f.superUser(of: org)
                _ = try await f.industryRequest(of: org)
                let reviews = AccessReviewStore(database: f.worker)
                #expect(try await reviews.runReviewJobs() == (0, 0), "not before 12 months")
                try await f.setJobClock(ahead: "13 months")
                let opened = try await withThrowingTaskGroup(of: Int.self) { group in
                    for _ in 0..<4 { group.addTask { try await reviews.runReviewJobs().opened } }
                    return try await group.reduce(0, +)
                }
                #expect(opened == 1)
                #expect(
                    try await f.ownerQuery(
                        "SELECT role FROM access_review_items i JOIN access_reviews r ON r.id = i.review_id WHERE r.organisation_id = \(org.rawValue)"
                    ) == ["spor-industry-super-user"], "the pending industry request is not a role")
            }
        }

        @Test("R22: a super user decides others' items, never their own; the desk only an only super user's; once; a revocation revokes")
        func decisions() async throws {
            try await Fixture.with { f in
                let (org, first, second, member, review) = try await Self.reviewed(f)
                let desk = try await f.staff(.serviceDesk)
                #expect(await Self.decide(f, as: first, review: review, holder: first, "certified") == Answer("self-approval", "R22"))
                #expect(
                    await Self.decide(f, as: desk, review: review, holder: first, "certified") == Answer("delegated-to-organisation", "R22"),
                    "the organisation has another super user to decide it")
                // Control: another super user certifies, and revokes the member at once.
                #expect(await Self.decide(f, as: second, review: review, holder: first, "certified") == nil)
                #expect(await Self.decide(f, as: second, review: review, holder: first, "revoked") == Answer("not-pending", "R22"))
                #expect(await Self.decide(f, as: first, review: review, holder: member, "revoked") == nil)
                #expect(
                    try await f.ownerValue(
                        """
                        SELECT (revoked_by = \(first.pgUUID))::text FROM role_assignments
                        WHERE account_id = \(member.pgUUID) AND organisation_id = \(org.rawValue)
                        """) == "true")
                #expect(
                    try await f.ownerQuery(
                        "SELECT action FROM audit_events WHERE action LIKE 'access-review.%' ORDER BY id")
                        == ["access-review.opened", "access-review.certified", "access-review.revoked"])
                // The only other super user's item: R14 still says the last one goes only by the desk.
                #expect(await Self.decide(f, as: first, review: review, holder: second, "revoked") == nil)
                #expect(try await f.ownerValue("SELECT spor_active_super_user_count(\(org.rawValue))::text") == "1")
            }
        }

        @Test("R22: the service desk decides the only super user's item; nobody decides after the due date or forges an outcome")
        func deskAndDueDate() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let only = try await f.superUser(of: org)
                let desk = try await f.staff(.serviceDesk)
                try await f.setJobClock(ahead: "13 months")
                let reviews = AccessReviewStore(database: f.worker)
                _ = try await reviews.runReviewJobs()
                let review = try await f.ownerValue("SELECT id::text FROM access_reviews WHERE organisation_id = \(org.rawValue)")
                #expect(
                    await attempt(f, as: only) { conn in
                        _ = try await conn.texts(
                            "UPDATE access_review_items SET outcome = 'undecided' WHERE review_id = \(review)::bigint RETURNING id::text")
                    } == .sqlState("42501"), "the application role writes no outcome")
                #expect(
                    await attempt(f, as: desk) { conn in
                        _ = try await conn.texts(
                            """
                            UPDATE role_assignments SET revoked_at = now(), revoked_by_review = \(review)::bigint
                            WHERE account_id = \(only.pgUUID) RETURNING id::text
                            """)
                    } == Answer("not-authorised", "R22"), "only a due review revokes undecided items")
                try await f.setJobClock(ahead: "13 months 31 days")
                #expect(await Self.decide(f, as: desk, review: review, holder: only, "certified") == Answer("not-pending", "R22"))
                try await f.setJobClock(ahead: "13 months")
                #expect(await Self.decide(f, as: desk, review: review, holder: only, "certified") == nil)
            }
        }

        @Test("R22: at the due date undecided items are flagged, or revoked by the review when the settings say so")
        func closing() async throws {
            try await Fixture.with { f in
                let (org, _, second, member, review) = try await Self.reviewed(f)
                _ = try await f.ownerQuery("UPDATE settings SET review_revokes_undecided = true RETURNING 'ok'")
                // The second super user drops out meanwhile; the member is left undecided.
                _ = try await f.requests.revoke(
                    actor: second,
                    assignment: Int64(
                        try await f.ownerValue(
                            "SELECT id::text FROM role_assignments WHERE account_id = \(second.pgUUID) AND organisation_id = \(org.rawValue)"))!,
                    channel: .own)
                try await f.setJobClock(ahead: "13 months 31 days")
                let reviews = AccessReviewStore(database: f.worker)
                #expect(try await reviews.runReviewJobs().closed == 1)
                #expect(try await reviews.runReviewJobs().closed == 0, "once")
                #expect(
                    try await f.ownerQuery(
                        """
                        SELECT CASE account_id WHEN \(member.pgUUID) THEN 'member' WHEN \(second.pgUUID) THEN 'second' ELSE 'first' END
                               || ' ' || outcome
                        FROM access_review_items WHERE review_id = \(review)::bigint ORDER BY 1
                        """) == ["first revoked-undecided", "member revoked-undecided", "second ended"])
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM role_assignments WHERE revoked_by_review = \(review)::bigint AND revoked_by IS NULL") == "2")
                #expect(
                    try await f.ownerValue(
                        "SELECT status || ' ' || revoked_undecided || ' ' || ended_meanwhile FROM reporting.access_review_completion"
                    ) == "closed 2 1")
            }
        }

        @Test("R22: the application role cannot run the reviews job, open a review, or write an item's subject")
        func applicationRoleCannot() async throws {
            try await Fixture.with { f in
                let someone = try await f.user("someone")
                for sql in [
                    "SELECT spor_open_due_reviews(10)", "SELECT spor_close_due_reviews(10)",
                    "INSERT INTO access_reviews (organisation_id, opened_at, due_at) VALUES ('ORG-100000001', now(), now() + interval '1 day')",
                    "UPDATE access_review_items SET account_id = gen_random_uuid()",
                ] {
                    let answer = await attempt(f, as: someone) { conn in
                        _ = try await conn.query(PostgresQuery(unsafeSQL: sql), logger: TestDatabase.logger).collect()
                    }
                    #expect(answer == .sqlState("42501"), "\(sql): \(answer.map(\.description) ?? "allowed")")
                }
            }
        }
    }
}
