import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension SQLRuleTests {
    @Suite("R4–R7, R9: what may be requested, and what a request grants")
    struct Requests {
        // MARK: R4 roles

        @Test("R4: a staff role cannot be requested (r4_requestable_roles)")
        func staffRoleNotRequestable() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let user = try await f.user()
                for staffRole in StaffRole.allCases {
                    let refused = await attempt(f, as: user) { conn in
                        try await conn.query(
                            """
                            INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                            VALUES (\(org.rawValue), \(user.pgUUID), \(staffRole.rawValue), 'pending', 'organisation-super-users')
                            """, logger: log)
                    }
                    #expect(refused == Answer("r4_requestable_roles"), "\(staffRole.rawValue)")
                }
                #expect(try await f.ownerValue("SELECT count(*)::text FROM access_requests") == "0")
            }
        }

        @Test("R4: the unaffiliated role names no organisation; an industry role names one (r8_route_new_request)")
        func unaffiliatedHasNoOrganisation() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let user = try await f.user()
                let refused = await attempt(f, as: user) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (\(org.rawValue), \(user.pgUUID), 'spor-unaffiliated-user', 'approved', 'automatic')
                        """, logger: log)
                }
                #expect(refused == Answer("organisation-not-allowed", "R4"))
                let missing = await attempt(f, as: user) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (NULL, \(user.pgUUID), 'spor-industry-user', 'pending', 'organisation-super-users')
                        """, logger: log)
                }
                #expect(missing == Answer("organisation-required", "R4"))
            }
        }

        @Test("R4: a role assignment needs the holder's own approved request for that role")
        func assignmentNeedsApprovedRequest() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let superUsersRequest = try #require(
                    try await f.ownerQuery(
                        "SELECT id::text FROM access_requests WHERE requester_id = \(superUser.pgUUID)"
                    ).first.flatMap { Int64($0) })
                let (applicant, pending) = try await f.industryRequest(of: org)

                // Granting oneself the role of one's own request while it is still pending.
                let fromPending = await attempt(f, as: applicant) { conn in
                    try await conn.query(
                        """
                        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id)
                        VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-user', 'access-request', \(pending))
                        """, logger: log)
                }
                #expect(fromPending == Answer("not-authorised", "R4"))

                // Borrowing somebody else's approved request.
                let fromOthers = await attempt(f, as: applicant) { conn in
                    try await conn.query(
                        """
                        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user)
                        VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-super-user', 'access-request', \(superUsersRequest), true)
                        """, logger: log)
                }
                #expect(fromOthers == Answer("not-authorised", "R4"))

                // A rejected request grants nothing either.
                _ = try await f.requests.decide(
                    actor: superUser, request: AccessRequestID(pending), channel: .organisation,
                    action: .reject(reason: "not one of ours"))
                let fromRejected = await attempt(f, as: applicant) { conn in
                    try await conn.query(
                        """
                        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id)
                        VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-user', 'access-request', \(pending))
                        """, logger: log)
                }
                #expect(fromRejected == Answer("not-authorised", "R4"))
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM role_assignments WHERE account_id = \(applicant.pgUUID)") == "0")
            }
        }

        @Test("R4: organisation roles come only from approved requests: no staff grant, not even by an EMA administrator")
        func noStaffGrants() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let user = try await f.user()
                let desk = try await f.staff(.serviceDesk)
                let steward = try await f.staff(.dataSteward)
                let admin = try await f.staff(.admin)
                for granter in [desk, steward, user, admin] {
                    for role in ["spor-industry-user", "spor-industry-super-user"] {
                        let refused = await attempt(f, as: granter) { conn in
                            let id = try await conn.text(
                                """
                                INSERT INTO role_assignments (organisation_id, account_id, role, source, granted_by)
                                VALUES (\(org.rawValue), \(user.pgUUID), \(role), 'staff-grant', \(granter.pgUUID)) RETURNING id::text
                                """)
                            try await conn.audit(
                                actor: granter, organisation: org, action: "role-assignment.granted",
                                subjectType: "role_assignment", subjectID: id)
                        }
                        #expect(refused == Answer("not-authorised", "R4"), "\(role) granted by \(granter)")
                    }
                }
                #expect(try await f.ownerValue("SELECT count(*)::text FROM role_assignments WHERE account_id = \(user.pgUUID)") == "0")
            }
        }

        @Test("R4: an approved request is granted in the same transaction (grant-missing at commit)")
        func approvalWithoutGrant() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let (applicant, request) = try await f.industryRequest(of: org)
                let refused = await attempt(f, as: superUser) { conn in
                    try await conn.query(
                        "UPDATE access_requests SET status = 'approved', decided_by = \(superUser.pgUUID) WHERE id = \(request)",
                        logger: log)
                    try await conn.audit(
                        actor: superUser, organisation: org, action: "access-request.approved",
                        subjectType: "access_request", subjectID: String(request))
                    try await conn.notify(template: "request-decided", subjectType: "access_request", subjectID: String(request))
                }
                #expect(refused == Answer("grant-missing", "R4"))
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
                // Control: the same approval with its grant commits.
                let approved = await attempt(f, as: superUser) { conn in
                    try await conn.approve(request, by: superUser, requester: applicant, role: .industryUser, organisation: org, first: false)
                }
                #expect(approved == nil)
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "approved")
            }
        }

        // MARK: R5 unaffiliated role

        @Test("R5: the unaffiliated role is approved by the system at once (routing-mismatch when filed pending)")
        func unaffiliatedIsAutomatic() async throws {
            try await Fixture.with { f in
                let user = try await f.user()
                let refused = await attempt(f, as: user) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (requester_id, role, status, approver_kind)
                        VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'pending', 'automatic')
                        """, logger: log)
                }
                #expect(refused == Answer("routing-mismatch", "R5"))
            }
        }

        @Test("R5: the unaffiliated role becomes effective only after the activation delay")
        func unaffiliatedActivationDelay() async throws {
            try await Fixture.with { f in
                try await f.owner.query("UPDATE settings SET unaffiliated_activation_delay = '1 day'", logger: log)
                let user = try await f.user()
                let refused = await attempt(f, as: user) { conn in
                    let request = try await conn.text(
                        """
                        INSERT INTO access_requests (requester_id, role, status, approver_kind)
                        VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'approved', 'automatic') RETURNING id::text
                        """)
                    try await conn.query(
                        """
                        INSERT INTO role_assignments (account_id, role, source, access_request_id, effective_from)
                        VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'access-request', \(Int64(request)!), now())
                        """, logger: log)
                }
                #expect(refused == Answer("activation-delay", "R5"))
                // Control: effective from now() + the delay commits.
                let granted = await attempt(f, as: user) { conn in
                    let request = try await conn.text(
                        """
                        INSERT INTO access_requests (requester_id, role, status, approver_kind)
                        VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'approved', 'automatic') RETURNING id::text
                        """)
                    try await conn.audit(
                        actor: user, organisation: nil, action: "access-request.submitted",
                        subjectType: "access_request", subjectID: request)
                    let grant = try await conn.text(
                        """
                        INSERT INTO role_assignments (account_id, role, source, access_request_id, effective_from)
                        VALUES (\(user.pgUUID), 'spor-unaffiliated-user', 'access-request', \(Int64(request)!), now() + interval '1 day')
                        RETURNING id::text
                        """)
                    try await conn.audit(
                        actor: user, organisation: nil, action: "role-assignment.granted",
                        subjectType: "role_assignment", subjectID: grant)
                }
                #expect(granted == nil)
                #expect(
                    try await f.ownerValue(
                        "SELECT (effective_from > now() + interval '23 hours')::text FROM role_assignments WHERE account_id = \(user.pgUUID)")
                        == "true")
            }
        }

        // MARK: R6, R7

        @Test("R6: a request names an organisation that exists in OMS")
        func unknownOrganisation() async throws {
            try await Fixture.with { f in
                let user = try await f.user()
                let refused = await attempt(f, as: user) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES ('ORG-999999999', \(user.pgUUID), 'spor-industry-super-user', 'pending', 'ema-service-desk')
                        """, logger: log)
                }
                #expect(refused == Answer("unknown-organisation", "R6"))
            }
        }

        @Test("R7: at most one pending request per user, role and organisation")
        func duplicatePendingRequest() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let (applicant, _) = try await f.firstSuperUserRequest(of: org, ticket: false)
                let refused = await attempt(f, as: applicant) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (\(org.rawValue), \(applicant.pgUUID), 'spor-industry-super-user', 'pending', 'ema-service-desk')
                        """, logger: log)
                }
                #expect(refused == Answer("duplicate-request", "R7"))
                #expect(
                    try await f.ownerValue(
                        "SELECT count(*)::text FROM access_requests WHERE requester_id = \(applicant.pgUUID)") == "1")
            }
        }

        @Test("R7: no request for a role already held")
        func requestForHeldRole() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let refused = await attempt(f, as: superUser) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (\(org.rawValue), \(superUser.pgUUID), 'spor-industry-super-user', 'pending', 'organisation-super-users')
                        """, logger: log)
                }
                #expect(refused == Answer("already-held", "R7"))
            }
        }

        // MARK: R9

        @Test("R9: an industry-user request for an organisation without a super user is refused")
        func noSuperUser() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let user = try await f.user()
                let refused = await attempt(f, as: user) { conn in
                    try await conn.query(
                        """
                        INSERT INTO access_requests (organisation_id, requester_id, role, status, approver_kind)
                        VALUES (\(org.rawValue), \(user.pgUUID), 'spor-industry-user', 'pending', 'organisation-super-users')
                        """, logger: log)
                }
                #expect(refused == Answer("no-super-user", "R9"))
            }
        }
    }
}
