import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension SQLRuleTests {
    /// R21's SQL half: every violation written straight in SQL as the application role; the jobs' clock
    /// (settings.job_clock_offset, the owner's) stands in for the days passing.
    @Suite("R21: time-bound grants (in SQL)")
    struct Grants {

        @Test("R21: a requested end is in the future, for an organisation role, and never changes")
        func requestedEnd() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                _ = try await f.superUser(of: org)
                let applicant = try await f.user("applicant")
                let token = applicant.bearerToken
                #expect(
                    await attempt(f, as: applicant) { conn in
                        _ = try await conn.texts(
                            "SELECT id::text FROM spor_file_request(\(token), 'spor-industry-user', \(org.rawValue), NULL, now() - interval '1 day')")
                    } == Answer("grant-end-in-past", "R21"))
                #expect(
                    await attempt(f, as: applicant) { conn in
                        _ = try await conn.texts(
                            "SELECT id::text FROM spor_file_request(\(token), 'spor-unaffiliated-user', NULL, NULL, now() + interval '1 day')")
                    } == Answer("validation-failed", "R21"))
                // Control: a future end for an organisation role is filed, and kept.
                let filed = try await f.requests.submit(
                    actor: applicant, role: .industryUser, organisation: org, justification: nil,
                    accessUntil: Date().addingTimeInterval(30 * 86_400)
                ).request
                #expect(filed.accessUntil != nil)
                #expect(
                    await attempt(f, as: applicant) { conn in
                        _ = try await conn.texts(
                            "UPDATE access_requests SET access_until = now() + interval '900 days' WHERE id = \(filed.id.rawValue) RETURNING id::text"
                        )
                    } == Answer("immutable", "R18"))
            }
        }

        @Test("R21: an approver shortens a requested end, never lengthens it, and the end never changes afterwards")
        func grantedEnd() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let applicant = try await f.user("applicant")
                let asked = Date().addingTimeInterval(30 * 86_400)
                let request = try await f.requests.submit(
                    actor: applicant, role: .industryUser, organisation: org, justification: nil, accessUntil: asked
                ).request.id.rawValue
                let token = superUser.bearerToken
                for (until, answer) in [
                    ("now() + interval '31 days'", Answer("grant-lengthened", "R21")),
                    ("now() - interval '1 hour'", Answer("grant-end-in-past", "R21")),
                ] {
                    let got = await attempt(f, as: superUser) { conn in
                        _ = try await conn.texts(
                            "SELECT id::text FROM spor_decide_request(\(token), \(request), true, NULL, true, \(unescaped: until))")
                    }
                    #expect(got == answer, "\(until)")
                }
                // Control: a shorter end is granted.
                #expect(
                    await attempt(f, as: superUser) { conn in
                        _ = try await conn.texts(
                            "SELECT id::text FROM spor_decide_request(\(token), \(request), true, NULL, true, now() + interval '10 days')")
                    } == nil)
                let days = try await f.ownerValue(
                    "SELECT round(extract(epoch FROM ends_at - now()) / 86400)::text FROM role_assignments WHERE access_request_id = \(request)")
                #expect(days == "10")
                #expect(
                    await attempt(f, as: superUser) { conn in
                        _ = try await conn.texts(
                            "UPDATE role_assignments SET ends_at = ends_at + interval '1 year' WHERE access_request_id = \(request) RETURNING id::text"
                        )
                    } == Answer("immutable", "R14"))
            }
        }

        @Test("R21: an end is judged on the jobs' clock: with it moved on, an end it has passed is in the past (no grant born ended)")
        func endOnTheJobsClock() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let (_, request) = try await f.industryRequest(of: org)
                try await f.setJobClock(ahead: "10 days")
                let token = superUser.bearerToken
                #expect(
                    await attempt(f, as: superUser) { conn in
                        _ = try await conn.texts(
                            "SELECT id::text FROM spor_decide_request(\(token), \(request), true, NULL, true, now() + interval '5 days')")
                    } == Answer("grant-end-in-past", "R21"))
                #expect(
                    await attempt(f, as: superUser) { conn in
                        _ = try await conn.texts(
                            "SELECT id::text FROM spor_decide_request(\(token), \(request), true, NULL, true, now() + interval '11 days')")
                    } == nil)
            }
        }

        @Test("R21: past its end a super user is no longer one, before any job has run (R8, R9, R13, R14)")
        func pastTheEndIsNotActive() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let desk = try await f.staff(.serviceDesk)
                // The organisation's only super user, granted by the desk until 5 days from now.
                let (holder, first) = try await f.firstSuperUserRequest(of: org, ticket: true)
                _ = try await f.requests.decide(
                    actor: desk, request: AccessRequestID(first), channel: .serviceDesk, action: .approve,
                    grantUntil: Date().addingTimeInterval(5 * 86_400))
                let (_, pending) = try await f.industryRequest(of: org)
                #expect(try await f.ownerValue("SELECT spor_active_super_user_count(\(org.rawValue))::text") == "1")

                try await f.setJobClock(ahead: "6 days")
                #expect(try await f.ownerValue("SELECT spor_active_super_user_count(\(org.rawValue))::text") == "0")
                let applicant = try await f.user("late")
                // R9: no industry request for an organisation whose only super user's role has ended.
                #expect(
                    await attempt(f, as: applicant) { conn in
                        _ = try await conn.texts(
                            "SELECT id::text FROM spor_file_request(\(applicant.bearerToken), 'spor-industry-user', \(org.rawValue), NULL)")
                    } == Answer("no-super-user", "R9"))
                // R13: the former super user sees the organisation's requests no more, and cannot decide them.
                #expect(
                    await attempt(f, as: holder) { conn in
                        let seen = try await conn.texts("SELECT id::text FROM access_requests WHERE id = \(pending)")
                        guard seen.isEmpty else { throw FixtureError("still sees \(seen)") }
                        _ = try await conn.texts("SELECT id::text FROM spor_decide_request(\(holder.bearerToken), \(pending), true, NULL)")
                    } == Answer("not-found", "R13"))
                // R8: the next super-user request is a first one again, for the service desk.
                let next = try await f.user("next")
                let routed = try await f.requests.submit(actor: next, role: .superUser, organisation: org, justification: nil).request
                #expect(routed.approverKind == .emaServiceDesk)
                // R14: an assignment past its end cannot be revoked (it has ended), nor ended by the clock before its end.
                #expect(
                    await attempt(f, as: desk) { conn in
                        _ = try await conn.texts(
                            """
                            UPDATE role_assignments SET revoked_at = now(), revoked_by = \(desk.pgUUID)
                            WHERE access_request_id = \(first) RETURNING id::text
                            """)
                    } == Answer("not-found", "R14"))
                try await f.setJobClock(ahead: "0 days")
                #expect(
                    await attempt(f, as: holder) { conn in
                        _ = try await conn.texts(
                            "UPDATE role_assignments SET revoked_at = ends_at, lapsed = true WHERE access_request_id = \(first) RETURNING id::text")
                    } == Answer("not-authorised", "R21"))
            }
        }

        @Test("R17, R21: a role past its end is no effective SPOR role for an OMS change request, in both halves")
        func pastTheEndIsNoEffectiveRole() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let member = try await f.user("member")
                let request = try await f.requests.submit(
                    actor: member, role: .industryUser, organisation: org, justification: nil,
                    accessUntil: Date().addingTimeInterval(5 * 86_400)
                ).request
                _ = try await f.requests.decide(actor: superUser, request: request.id, channel: .organisation, action: .approve)
                let insert: PostgresQuery =
                    "INSERT INTO oms_change_requests (requester_id, name, country, city) VALUES (\(member.pgUUID), 'Newco', 'BE', 'Ghent')"
                @Sendable func file() async -> String {
                    await Verdicts.of {
                        _ = try await f.oms.file(
                            actor: member, name: "Newco", country: "BE", city: "Ghent", address: nil, justification: nil,
                            documents: [Upload(fileName: "register.pdf", contentType: .pdf, bytes: Fixture.pdf)])
                    }
                }
                // Control: while the role lasts, the member files one.
                #expect(await file() == "success")
                try await f.setJobClock(ahead: "6 days")
                #expect(await attempt(f, as: member) { conn in try await conn.query(insert, logger: log) } == Answer("no-effective-role", "R17"))
                #expect(await file() == "no-effective-role", "the Swift half reads the same facts")
            }
        }

        @Test("R21: the grants job ends a lapsed grant once, audited, its holder and the service desk told")
        func jobEndsLapsedGrants() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let desk = try await f.staff(.serviceDesk)
                let (holder, first) = try await f.firstSuperUserRequest(of: org, ticket: true)
                _ = try await f.requests.decide(
                    actor: desk, request: AccessRequestID(first), channel: .serviceDesk, action: .approve,
                    grantUntil: Date().addingTimeInterval(20 * 86_400))
                #expect(try await f.expiry.runGrantJobs() == (0, 0))

                try await f.setJobClock(ahead: "7 days")
                #expect(try await f.expiry.runGrantJobs() == (0, 1), "the 14-day notice")
                #expect(try await f.expiry.runGrantJobs() == (0, 0), "once")
                #expect(
                    try await f.ownerQuery(
                        """
                        SELECT DISTINCT CASE recipient_account_id WHEN \(holder.pgUUID) THEN 'holder' WHEN \(desk.pgUUID) THEN 'desk' END
                        FROM notification_outbox WHERE template = 'grant-ending' ORDER BY 1
                        """) == ["desk", "holder"], "the last super user's end is told to the desk too")

                try await f.setJobClock(ahead: "18 days")
                #expect(try await f.expiry.runGrantJobs() == (0, 1), "the 3-day notice")
                try await f.setJobClock(ahead: "21 days")
                #expect(try await f.expiry.runGrantJobs() == (1, 0), "ended")
                #expect(try await f.expiry.runGrantJobs() == (0, 0), "once")
                #expect(
                    try await f.ownerValue(
                        "SELECT (lapsed AND revoked_by IS NULL AND revoked_at = ends_at)::text FROM role_assignments WHERE access_request_id = \(first)"
                    ) == "true")
                #expect(
                    try await f.ownerQuery("SELECT action FROM audit_events WHERE action = 'role-assignment.ended'") == ["role-assignment.ended"])
                #expect(
                    try await f.ownerQuery(
                        """
                        SELECT subject_type FROM notification_outbox WHERE template = 'grant-ended'
                        AND recipient_account_id IN (\(holder.pgUUID), \(desk.pgUUID)) ORDER BY subject_type
                        """) == ["organisation", "role_assignment"])
                #expect(
                    try await f.ownerQuery(
                        "SELECT status || ' ' || days_before FROM reporting.role_grants g JOIN reporting.reminder_history h ON h.subject_id = g.assignment_id::text ORDER BY days_before"
                    ) == ["ended 3", "ended 14"])
            }
        }

        @Test("R21: the application role cannot run the grants job or read its notices")
        func applicationRoleCannot() async throws {
            try await Fixture.with { f in
                let someone = try await f.user("someone")
                for sql in ["SELECT spor_end_lapsed_grants(10)", "SELECT spor_send_grant_notices(10)", "SELECT * FROM grant_notices"] {
                    let answer = await attempt(f, as: someone) { conn in
                        _ = try await conn.query(PostgresQuery(unsafeSQL: sql), logger: TestDatabase.logger).collect()
                    }
                    #expect(answer == .sqlState("42501"), "\(sql): \(answer.map(\.description) ?? "allowed")")
                }
            }
        }
    }
}

/// The refusal code of a store call (for the Swift half's verdict), or "success".
enum Verdicts {
    static func of(_ body: () async throws -> Void) async -> String {
        do {
            try await body()
            return "success"
        } catch let refusal as Refusal {
            return refusal.code.rawValue
        } catch {
            return "\(error)"
        }
    }
}
