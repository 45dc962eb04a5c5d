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
