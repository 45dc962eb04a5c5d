import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension SQLRuleTests {
    @Suite("R18: decided is final, requests are never deleted, and expire only when due")
    struct Lifecycle {
        @Test("R18: a request's lifetime comes from the settings only (no 'infinity'); R5: no grant is back-dated")
        func lifetimeAndStartFromTheRules() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let applicant = try await f.user()
                @Sendable func file(expiresAt: String?) async -> Answer? {
                    await attempt(f, as: applicant) { conn in
                        let id = try await conn.text(
                            """
                            INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind, expires_at)
                            VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-user', 'pending', 'organisation-super-users',
                                    \(expiresAt)::timestamptz)
                            RETURNING id::text
                            """)
                        try await conn.audit(
                            actor: applicant, organisation: org, action: "access-request.submitted", subjectType: "access_request",
                            subjectID: id)
                        try await conn.notify(template: "request-filed", subjectType: "access_request", subjectID: id)
                    }
                }
                #expect(await file(expiresAt: "infinity") == Answer("validation-failed", "R18"))
                #expect(await file(expiresAt: "2999-01-01") == Answer("validation-failed", "R18"))
                #expect(try await f.ownerValue("SELECT count(*)::text FROM access_requests WHERE requester_id = \(applicant.pgUUID)") == "0")
                #expect(await file(expiresAt: nil) == nil)
                #expect(
                    try await f.ownerValue(
                        """
                        SELECT (expires_at - created_at = (SELECT request_lifetime FROM settings))::text FROM access_requests
                        WHERE requester_id = \(applicant.pgUUID)
                        """) == "true")

                // A grant dated a day back is refused; the same grant from now is a positive control.
                let request =
                    Int64(
                        try await f.ownerValue("SELECT id::text FROM access_requests WHERE requester_id = \(applicant.pgUUID)")) ?? 0
                @Sendable func approve(from start: String) async -> Answer? {
                    await attempt(f, as: superUser) { conn in
                        try await conn.query(
                            "UPDATE access_requests SET status = 'approved', decided_by = \(superUser.pgUUID) WHERE id = \(request)",
                            logger: log)
                        try await conn.audit(
                            actor: superUser, organisation: org, action: "access-request.approved", subjectType: "access_request",
                            subjectID: String(request))
                        let grant = try await conn.text(
                            """
                            INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, effective_from)
                            VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-user', 'access-request', \(request),
                                    \(unescaped: start))
                            RETURNING id::text
                            """)
                        try await conn.audit(
                            actor: superUser, organisation: org, action: "role-assignment.granted", subjectType: "role_assignment",
                            subjectID: grant)
                        try await conn.notify(template: "request-decided", subjectType: "access_request", subjectID: String(request))
                    }
                }
                #expect(await approve(from: "now() - interval '1 day'") == Answer("activation-delay", "R5"))
                #expect(await approve(from: "now()") == nil)
            }
        }

        @Test("R18: a decided request never changes again")
        func decidedRequestsAreFinal() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let (applicant, request) = try await f.industryRequest(of: org)
                _ = try await f.requests.decide(actor: superUser, request: AccessRequestID(request), channel: .organisation, action: .approve)
                let changes: [(TestAccount, PostgresQuery)] = [
                    (
                        superUser,
                        "UPDATE access_requests SET status = 'rejected', decided_by = \(superUser.pgUUID), decision_reason = 'oops' WHERE id = \(request)"
                    ),
                    (superUser, "UPDATE access_requests SET status = 'pending', decided_by = NULL, decided_at = NULL WHERE id = \(request)"),
                    (applicant, "UPDATE access_requests SET status = 'cancelled', decided_by = \(applicant.pgUUID) WHERE id = \(request)"),
                    (superUser, "UPDATE access_requests SET decision_reason = 'edited later' WHERE id = \(request)"),
                ]
                for (actor, change) in changes {
                    let refused = await attempt(f, as: actor) { conn in try await conn.query(change, logger: log) }
                    #expect(refused == Answer("not-pending", "R18"), "\(change.sql)")
                }
                #expect(
                    try await f.ownerValue("SELECT status || coalesce(decision_reason, '') FROM access_requests WHERE id = \(request)") == "approved")
            }
        }

        @Test("R18: what was requested never changes")
        func requestedRoleIsImmutable() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
                let refused = await attempt(f, as: applicant) { conn in
                    try await conn.query("UPDATE access_requests SET role = 'spor-industry-user' WHERE id = \(request)", logger: log)
                }
                #expect(refused == Answer("immutable", "R18"))
            }
        }

        @Test("R18: requests are never deleted (no privilege for the application, trigger for the owner)")
        func requestsNeverDeleted() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let (applicant, request) = try await f.industryRequest(of: org)
                for actor in [applicant, superUser] {
                    let refused = await attempt(f, as: actor) { conn in
                        try await conn.query("DELETE FROM access_requests WHERE id = \(request)", logger: log)
                    }
                    #expect(refused == .sqlState("42501"))
                }
                let assignment = await attempt(f, as: superUser) { conn in
                    try await conn.query("DELETE FROM role_assignments WHERE account_id = \(superUser.pgUUID)", logger: log)
                }
                #expect(assignment == .sqlState("42501"))
                #expect(await ownerAttempt(f, "DELETE FROM access_requests WHERE id = \(request)") == Answer("immutable", "R18"))
                #expect(await ownerAttempt(f, "DELETE FROM role_assignments") == Answer("immutable", "R18"))
                #expect(await ownerAttempt(f, "DELETE FROM service_desk_tickets") == Answer("immutable", "R18"))
                #expect(try await f.ownerValue("SELECT count(*)::text FROM access_requests WHERE id = \(request)") == "1")
            }
        }

        @Test("R18: a request expires only once its expiry time has passed")
        func noEarlyExpiry() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
                let refused = await attempt(f, as: applicant) { conn in
                    try await conn.query("UPDATE access_requests SET status = 'expired' WHERE id = \(request)", logger: log)
                    try await conn.audit(
                        actor: applicant, organisation: org, action: "access-request.expired",
                        subjectType: "access_request", subjectID: String(request))
                    try await conn.notify(template: "request-decided", subjectType: "access_request", subjectID: String(request))
                }
                #expect(refused == Answer("not-pending", "R18"))
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
            }
        }

        @Test("R18: due requests expire with an audit event and a notification; overdue ones cannot be approved")
        func expiry() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                // Expiry times never move (the decision trigger refuses it), so the lifetime is shortened before filing.
                try await f.owner.query("UPDATE settings SET request_lifetime = interval '200 milliseconds'", logger: log)
                let (_, overdue) = try await f.industryRequest(of: org)
                let (requester, due) = try await f.industryRequest(of: org)
                try await Task.sleep(for: .milliseconds(400))

                let approveOverdue = await attempt(f, as: superUser) { conn in
                    try await conn.query(
                        "UPDATE access_requests SET status = 'approved', decided_by = \(superUser.pgUUID) WHERE id = \(overdue)", logger: log)
                }
                #expect(approveOverdue == Answer("request-expired", "R18"))

                // The sweep is background work: the worker role runs it (the application role may not, see IdentityAttackTests).
                let swept = Collected<String>()
                var outcome: Answer?
                do {
                    try await f.worker.transaction { conn in swept.append(try await conn.text("SELECT spor_expire_due_requests(100)::text")) }
                } catch {
                    outcome = answer(error)
                }
                #expect(outcome == nil)
                #expect(swept.values == ["2"])
                #expect(
                    try await f.ownerQuery(
                        "SELECT status FROM access_requests WHERE id IN (\(overdue), \(due)) ORDER BY id") == ["expired", "expired"])
                #expect(
                    try await f.ownerQuery(
                        "SELECT action FROM audit_events WHERE subject_type = 'access_request' AND subject_id = \(String(due)) ORDER BY id")
                        == ["access-request.submitted", "access-request.expired"])
                #expect(
                    try await f.ownerQuery(
                        "SELECT template || ' ' || recipient_account_id::text FROM notification_outbox WHERE subject_type = 'access_request' AND subject_id = \(String(due)) AND template = 'request-decided'"
                    )
                        == ["request-decided \(requester.description)"])
                // And expired requests are final too.
                let revived = await attempt(f, as: superUser) { conn in
                    try await conn.query(
                        "UPDATE access_requests SET status = 'approved', decided_by = \(superUser.pgUUID) WHERE id = \(due)", logger: log)
                }
                #expect(revived == Answer("not-pending", "R18"))
            }
        }
    }
}
