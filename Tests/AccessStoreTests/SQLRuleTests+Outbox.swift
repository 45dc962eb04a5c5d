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
    }
}
