import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// R8, R11, R12: who approves — the EMA service desk for a first super user, the organisation's super users
// afterwards, and never the requester.

extension SQLRuleTests {
    @Suite("R8, R11, R12: who approves a request")
    struct Routing {
        // MARK: R8 routing

        @Test("R8: a super-user request is routed to the service desk exactly when the organisation has no super user")
        func routingAtSubmission() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let user = try await f.user()
                let toOrganisation = await attempt(f, as: user) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (\(org.rawValue), \(user.pgUUID), 'spor-industry-super-user', 'pending', 'organisation-super-users')
                        """, logger: log)
                }
                #expect(toOrganisation == Answer("routing-mismatch", "R8"))

                _ = try await f.superUser(of: org)
                let other = try await f.user()
                let toServiceDesk = await attempt(f, as: other) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (\(org.rawValue), \(other.pgUUID), 'spor-industry-super-user', 'pending', 'ema-service-desk')
                        """, logger: log)
                }
                #expect(toServiceDesk == Answer("routing-mismatch", "R8"))
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM access_requests WHERE requester_id IN (\(user.pgUUID), \(other.pgUUID))") == "0")
            }
        }

        @Test("R8: only the EMA service desk approves a first super user")
        func firstSuperUserNeedsEMA() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let (_, request) = try await f.firstSuperUserRequest(of: org, ticket: true)
                for role in [StaffRole.dataSteward, .admin] {
                    let staff = try await f.staff(role)
                    let refused = await attempt(f, as: staff) { conn in
                        try await conn.query(
                            "UPDATE access_requests SET status = 'approved', decided_by = \(staff.pgUUID) WHERE id = \(request)",
                            logger: log)
                    }
                    #expect(refused == Answer("first-super-user-needs-ema", "R8"), "\(role.rawValue)")
                }
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
            }
        }

        // MARK: R11 routing at decision time

        @Test("R11: the service desk cannot approve once the organisation has a super user")
        func delegatedAfterFirstSuperUser() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let desk = try await f.staff(.serviceDesk)
                let (first, firstRequest) = try await f.firstSuperUserRequest(of: org, ticket: true)
                let (second, secondRequest) = try await f.firstSuperUserRequest(of: org, ticket: true)
                _ = try await f.requests.decide(actor: desk, request: AccessRequestID(firstRequest), channel: .serviceDesk, action: .approve)
                #expect(
                    try await f.ownerValue(
                        "SELECT account_id::text FROM role_assignments WHERE organisation_id = \(org.rawValue)") == first.description)

                for status in ["approved", "rejected"] {
                    let refused = await attempt(f, as: desk) { conn in
                        try await conn.query(
                            """
                            UPDATE access_requests SET status = \(status), decided_by = \(desk.pgUUID), decision_reason = 'no'
                            WHERE id = \(secondRequest)
                            """, logger: log)
                    }
                    #expect(refused == Answer("delegated-to-organisation", "R11"), "\(status)")
                }
                // R19: granting the first super user re-routed the other candidate's request to the organisation at once
                // (and closed its ticket as delegated), so nothing is left for the desk to decide...
                #expect(try await f.ownerValue("SELECT approver_kind FROM access_requests WHERE id = \(secondRequest)") == "organisation-super-users")
                _ = second
                // ...and a pending request can only be routed to its current approvers (the organisation now).
                let back = await attempt(f, as: desk) { conn in
                    try await conn.query(
                        "UPDATE access_requests SET approver_kind = 'ema-service-desk' WHERE id = \(secondRequest)", logger: log)
                }
                #expect(back == Answer("routing-mismatch", "R8"))
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(secondRequest)") == "pending")
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM role_assignments WHERE account_id = \(second.pgUUID)") == "0")
            }
        }

        @Test("R11: no second first-super-user assignment, however it is written")
        func noSecondFirstSuperUser() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let colleague = try await f.user("colleague")
                let filed = try await f.requests.submit(actor: colleague, role: .superUser, organisation: org, justification: nil)
                #expect(filed.request.approverKind == .organisationSuperUsers)
                let request = filed.request.id.rawValue
                let refused = await attempt(f, as: superUser) { conn in
                    try await conn.approve(request, by: superUser, requester: colleague, role: .superUser, organisation: org, first: true)
                }
                #expect(refused == Answer("routing-mismatch", "R11"))

                let admin = try await f.staff(.admin)
                let granted = await attempt(f, as: admin) { conn in
                    try await conn.query(
                        """
                        INSERT INTO role_assignments (organisation_id, account_id, role, source, granted_by, first_super_user)
                        VALUES (\(org.rawValue), \(colleague.pgUUID), 'spor-industry-super-user', 'staff-grant', \(admin.pgUUID), true)
                        """, logger: log)
                }
                #expect(granted == Answer("routing-mismatch", "R11"))
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND first_super_user") == "1")
                // Control: the same approval as an ordinary (not first) super user commits.
                let approved = await attempt(f, as: superUser) { conn in
                    try await conn.approve(request, by: superUser, requester: colleague, role: .superUser, organisation: org, first: false)
                }
                #expect(approved == nil)
            }
        }

        @Test("R11: racing service desk approvals give an organisation exactly one first super user")
        func racingFirstSuperUserApprovals() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                var arranged: [(desk: TestAccount, requester: TestAccount, request: Int64)] = []
                for _ in 0..<4 {
                    let (requester, request) = try await f.firstSuperUserRequest(of: org, ticket: true)
                    arranged.append((try await f.staff(.serviceDesk), requester, request))
                }
                let contenders = arranged
                let outcomes = await withTaskGroup(of: Answer?.self) { group in
                    for contender in contenders {
                        group.addTask {
                            await attempt(f, as: contender.desk) { conn in
                                try await conn.approve(
                                    contender.request, by: contender.desk, requester: contender.requester,
                                    role: .superUser, organisation: org, first: true)
                            }
                        }
                    }
                    var all: [Answer?] = []
                    for await outcome in group { all.append(outcome) }
                    return all
                }
                #expect(outcomes.filter { $0 == nil }.count == 1, "\(outcomes)")
                #expect(outcomes.compactMap { $0 } == Array(repeating: Answer("delegated-to-organisation", "R11"), count: 3), "\(outcomes)")
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user'")
                        == "1")
            }
        }

        // MARK: R12

        @Test("R12: nobody approves or rejects their own request")
        func selfApproval() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let _ = try await f.superUser(of: org)  // a second super user, so the request is decidable by someone
                let own = try await f.requests.submit(actor: superUser, role: .industryUser, organisation: org, justification: nil)
                let request = own.request.id.rawValue
                for status in ["approved", "rejected"] {
                    let refused = await attempt(f, as: superUser) { conn in
                        try await conn.query(
                            """
                            UPDATE access_requests SET status = \(status), decided_by = \(superUser.pgUUID), decision_reason = 'mine'
                            WHERE id = \(request)
                            """, logger: log)
                    }
                    #expect(refused == Answer("self-approval", "R12"), "\(status)")
                }
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
            }
        }
    }
}
