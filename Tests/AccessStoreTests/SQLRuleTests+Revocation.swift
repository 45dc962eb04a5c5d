import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension SQLRuleTests {
    @Suite("R14: revocation never leaves an organisation without its super user")
    struct Revocation {
        @Test("R14: the organisation cannot remove its last super user")
        func lastSuperUser() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let colleague = try await f.superUser(of: org)
                @Sendable func revoke(_ holder: TestAccount, by actor: TestAccount) async -> Answer? {
                    await attempt(f, as: actor) { conn in
                        let ids = try await conn.texts(
                            """
                            UPDATE role_assignments SET revoked_at = now(), revoked_by = \(actor.pgUUID)
                            WHERE account_id = \(holder.pgUUID) AND organisation_id = \(org.rawValue)
                              AND role = 'spor-industry-super-user' AND revoked_at IS NULL
                            RETURNING id::text
                            """)
                        guard ids.count == 1 else { throw FixtureError("revoked \(ids.count) assignments") }
                        try await conn.audit(
                            actor: actor, organisation: org, action: "role-assignment.revoked",
                            subjectType: "role_assignment", subjectID: ids[0])
                    }
                }
                // Control: with two super users one may go.
                #expect(await revoke(colleague, by: superUser) == nil)
                // Now the remaining one cannot remove themselves.
                #expect(await revoke(superUser, by: superUser) == Answer("last-super-user", "R14"))
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND revoked_at IS NULL") == "1")
            }
        }

        @Test("R20: removing the last super user in SQL tells the stranded requesters and the desk, and hands super-user requests back")
        func lastSuperUserRemovedTellsTheStranded() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let desk = try await f.staff(.serviceDesk)
                let (member, memberRequest) = try await f.industryRequest(of: org)
                let candidate = try await f.user("candidate")
                let candidateRequest = try await f.requests.submit(
                    actor: candidate, role: .superUser, organisation: org, justification: nil
                ).request.id.rawValue
                let revoked = await attempt(f, as: desk) { conn in
                    let ids = try await conn.texts(
                        """
                        UPDATE role_assignments SET revoked_at = now(), revoked_by = \(desk.pgUUID), revoke_reason = 'left the company'
                        WHERE account_id = \(superUser.pgUUID) AND role = 'spor-industry-super-user' AND revoked_at IS NULL RETURNING id::text
                        """)
                    guard ids.count == 1 else { throw FixtureError("revoked \(ids.count) assignments") }
                    try await conn.audit(
                        actor: desk, organisation: org, action: "role-assignment.revoked", subjectType: "role_assignment", subjectID: ids[0])
                }
                #expect(revoked == nil)
                #expect(
                    try await f.ownerQuery(
                        """
                        SELECT template || ' ' || subject_type FROM notification_outbox
                        WHERE recipient_account_id = \(member.pgUUID) AND template = 'request-stranded' AND subject_id = \(String(memberRequest))
                        """) == ["request-stranded access_request"])
                #expect(
                    try await f.ownerQuery(
                        """
                        SELECT (position(\(String(memberRequest)) IN body) > 0)::text FROM notification_outbox
                        WHERE recipient_account_id = \(desk.pgUUID) AND template = 'request-stranded' AND subject_type = 'organisation'
                        AND subject_id = \(org.rawValue)
                        """) == ["true"])
                #expect(
                    try await f.ownerValue("SELECT approver_kind FROM access_requests WHERE id = \(candidateRequest)") == "ema-service-desk")
                #expect(
                    try await f.ownerQuery(
                        "SELECT template FROM notification_outbox WHERE recipient_account_id = \(candidate.pgUUID) ORDER BY id DESC LIMIT 1")
                        == ["request-filed-first-super-user"])
                // Nothing was decided for them: both requests are still pending.
                #expect(
                    try await f.ownerQuery(
                        "SELECT status FROM access_requests WHERE id IN (\(memberRequest), \(candidateRequest)) ORDER BY id") == [
                            "pending", "pending",
                        ])
            }
        }

        @Test("R14: the service desk may remove the last super user; the next super-user request is a first one again")
        func serviceDeskRemovesLastSuperUser() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let desk = try await f.staff(.serviceDesk)
                let revoked = await attempt(f, as: desk) { conn in
                    let ids = try await conn.texts(
                        """
                        UPDATE role_assignments SET revoked_at = now(), revoked_by = \(desk.pgUUID), revoke_reason = 'left the company'
                        WHERE account_id = \(superUser.pgUUID) AND revoked_at IS NULL RETURNING id::text
                        """)
                    guard ids.count == 1 else { throw FixtureError("revoked \(ids.count) assignments") }
                    try await conn.audit(
                        actor: desk, organisation: org, action: "role-assignment.revoked",
                        subjectType: "role_assignment", subjectID: ids[0])
                }
                #expect(revoked == nil)
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND revoked_at IS NULL") == "0")
                // R8 again: the next super-user request goes to the service desk.
                let next = try await f.user()
                let filed = await attempt(f, as: next) { conn in
                    let id = try await conn.text(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (\(org.rawValue), \(next.pgUUID), 'spor-industry-super-user', 'pending', 'ema-service-desk') RETURNING id::text
                        """)
                    try await conn.audit(
                        actor: next, organisation: org, action: "access-request.submitted",
                        subjectType: "access_request", subjectID: id)
                }
                #expect(filed == nil)
            }
        }
    }
}
