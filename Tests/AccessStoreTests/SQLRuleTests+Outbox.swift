import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension SQLRuleTests {
    @Suite("R16: notified changes carry their outbox row in the same transaction")
    struct Outbox {
        @Test("R16: a request routed to the super users carries its notification in the same transaction")
        func notificationRequired() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                _ = try await f.superUser(of: org)
                let applicant = try await f.user()
                @Sendable func file(notify: Bool) async -> Answer? {
                    await attempt(f, as: applicant) { conn in
                        let id = try await conn.text(
                            """
                            INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                            VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-user', 'pending', 'organisation-super-users')
                            RETURNING id::text
                            """)
                        try await conn.audit(
                            actor: applicant, organisation: org, action: "access-request.submitted",
                            subjectType: "access_request", subjectID: id)
                        if notify { try await conn.notify(template: "request-filed", subjectType: "access_request", subjectID: id) }
                    }
                }
                #expect(await file(notify: false) == Answer("notification-required", "R16"))
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM access_requests WHERE requester_id = \(applicant.pgUUID)") == "0")
                #expect(await file(notify: true) == nil)
            }
        }

        @Test("R16: a decision carries its notification to the requester")
        func decisionNotificationRequired() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let (_, request) = try await f.industryRequest(of: org)
                let refused = await attempt(f, as: superUser) { conn in
                    try await conn.query(
                        """
                        UPDATE access_requests SET status = 'rejected', decided_by = \(superUser.pgUUID), decision_reason = 'unknown person'
                        WHERE id = \(request)
                        """, logger: log)
                    try await conn.audit(
                        actor: superUser, organisation: org, action: "access-request.rejected",
                        subjectType: "access_request", subjectID: String(request))
                }
                #expect(refused == Answer("notification-required", "R16"))
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
            }
        }

        @Test(
            "R16: a decision's message has its template and recipient: the owner's own writes are trusted at commit (0053) and read back, and a wrong kind or person is reported"
        )
        func templateAndRecipientChecked() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                // Written directly as the owner (the only role that may still insert outbox rows), in a transaction.
                @Sendable func reject(_ request: Int64, template: String, to recipient: TestAccount) async -> Answer? {
                    do {
                        try await f.owner.withTransaction(logger: log) { conn in
                            _ = try await conn.texts("SELECT spor_bind_actor(\(superUser.pgUUID))::text")
                            try await conn.query(
                                """
                                UPDATE access_requests SET status = 'rejected', decided_by = \(superUser.pgUUID), decision_reason = 'unknown person'
                                WHERE id = \(request)
                                """, logger: log)
                            try await conn.audit(
                                actor: superUser, organisation: org, action: "access-request.rejected", subjectType: "access_request",
                                subjectID: String(request))
                            try await conn.query(
                                """
                                INSERT INTO notification_outbox (recipient_account_id, recipient_email, template, subject, body, subject_type, subject_id)
                                SELECT a.id, a.email, \(template), 's', 'b', 'access_request', \(String(request)) FROM accounts a
                                WHERE a.id = \(recipient.pgUUID)
                                """, logger: log)
                        }
                        return nil
                    } catch {
                        return SQLRuleTests.answer(error)
                    }
                }
                let check = "R16: every decided access request told its requester"
                func reported(_ request: Int64) async throws -> Bool {
                    try await f.brokenBookkeeping().contains { $0.hasPrefix(check) && $0.contains("access request \(request)") }
                }
                // Positive control: the right kind, to the requester, commits and reads back whole.
                let (requester, right) = try await f.industryRequest(of: org)
                #expect(await reject(right, template: "request-decided", to: requester) == nil)
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(right)") == "rejected")
                #expect(try await f.brokenBookkeeping() == [])
                // The owner could switch any check off, so it is not checked at commit; the read-back reports it.
                let (other, wrongKind) = try await f.industryRequest(of: org)
                #expect(await reject(wrongKind, template: "request-filed", to: other) == nil)
                #expect(try await reported(wrongKind))
                let (_, wrongPerson) = try await f.industryRequest(of: org)
                #expect(await reject(wrongPerson, template: "request-decided", to: superUser) == nil)
                #expect(try await reported(wrongPerson))
                #expect(try await !reported(right))
            }
        }

        @Test("R16: spor_notify writes only what a change of this transaction needs, to the recipients the rule names")
        func notifyOnlyForChanges() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let (requester, request) = try await f.industryRequest(of: org)
                let before = try await f.ownerValue("SELECT count(*)::text FROM notification_outbox")
                // Nobody acting; a subject not changed here; a template that does not fit; a template its state does not tell.
                let cases: [(TestAccount?, PostgresQuery, Answer)] = [
                    (nil, "SELECT spor_notify('access_request', \(String(request)), 'request-filed')", Answer("not-authenticated", "R13")),
                    (requester, "SELECT spor_notify('access_request', \(String(request)), 'request-filed')", Answer("not-found", "R16")),
                    (requester, "SELECT spor_notify('account', \(requester.description), 'verify-email')", Answer("validation-failed", "R16")),
                ]
                for (actor, call, expected) in cases {
                    let answer = await attempt(f, as: actor) { conn in _ = try await conn.texts(call) }
                    #expect(answer == expected, "\(call.sql)")
                }
                let wrongKind = await attempt(f, as: superUser) { conn in
                    try await conn.query(
                        """
                        UPDATE access_requests SET status = 'rejected', decided_by = \(superUser.pgUUID), decision_reason = 'no'
                        WHERE id = \(request)
                        """, logger: log)
                    _ = try await conn.texts("SELECT spor_notify('access_request', \(String(request)), 'request-filed')")
                }
                #expect(wrongKind == Answer("not-found", "R16"))
                #expect(try await f.ownerValue("SELECT count(*)::text FROM notification_outbox") == before)
                // The application role writes no outbox row itself.
                let direct = await attempt(f, as: superUser) { conn in
                    try await conn.query(
                        """
                        INSERT INTO notification_outbox (recipient_account_id, recipient_email, template, subject, body, subject_type, subject_id)
                        SELECT a.id, a.email, 'request-decided', 's', 'b', 'access_request', \(String(request)) FROM accounts a
                        WHERE a.id = \(requester.pgUUID)
                        """, logger: log)
                }
                #expect(direct == .sqlState("42501"))
                // Asked again and again in one transaction, the message is queued once per recipient (0036).
                let repeated = await attempt(f, as: superUser) { conn in
                    try await conn.query(
                        """
                        UPDATE access_requests SET status = 'rejected', decided_by = \(superUser.pgUUID), decision_reason = 'no'
                        WHERE id = \(request)
                        """, logger: log)
                    try await conn.audit(
                        actor: superUser, organisation: org, action: "access-request.rejected", subjectType: "access_request",
                        subjectID: String(request))
                    for _ in 0..<5 {
                        #expect(try await conn.text("SELECT spor_notify('access_request', \(String(request)), 'request-decided')::text") == "1")
                    }
                }
                #expect(repeated == nil)
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM notification_outbox WHERE subject_id = \(String(request)) AND template = 'request-decided'")
                        == "1")
            }
        }
    }
}
