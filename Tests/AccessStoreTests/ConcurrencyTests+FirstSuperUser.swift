import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension ConcurrencyTests {
    // MARK: R11

    @Test("R11: 50 concurrent first-super-user approvals grant exactly one first super user", .timeLimit(.minutes(2)))
    func concurrentFirstSuperUserApprovals() async throws {
        try await Fixture.with { f in
            let count = 50
            let org = try await f.organisation()
            var requests: [AccessRequest] = []
            for i in 0..<count {
                let user = try await f.user("candidate\(i)")
                let submission = try await f.requests.submit(actor: user, role: .superUser, organisation: org, justification: nil)
                try #require(submission.request.approverKind == .emaServiceDesk)
                try await f.openTicket(for: submission.request, by: user)
                requests.append(submission.request)
            }
            var agents: [TestAccount] = []
            for _ in 0..<count { agents.append(try await f.staff(.serviceDesk)) }
            try await Self.warmUp(f, connections: count)

            let results = try await withThrowingTaskGroup(of: (Int, Result<Decision, any Error>).self) { group in
                for i in 0..<count {
                    let (agent, request) = (agents[i], requests[i].id)
                    group.addTask {
                        do {
                            return (
                                i,
                                .success(
                                    try await f.requests.decide(
                                        actor: agent, request: request, channel: .serviceDesk, action: .approve))
                            )
                        } catch {
                            return (i, .failure(error))
                        }
                    }
                }
                var all: [Int: Result<Decision, any Error>] = [:]
                for try await (i, result) in group { all[i] = result }
                return all
            }

            let winners = results.compactMap { i, result in (try? result.get()).map { (i, $0) } }
            try #require(winners.count == 1, "exactly one approval commits; got \(winners.count)")
            let (winner, decision) = winners[0]
            #expect(decision.request.status == .approved)
            #expect(decision.grant?.firstSuperUser == true)
            #expect(decision.grant?.role == .superUser)
            let failures = results.compactMap { i, result -> (Int, any Error)? in
                if case .failure(let error) = result { return (i, error) } else { return nil }
            }
            #expect(failures.count == count - 1)
            for (i, error) in failures {
                let refusal = error as? Refusal
                #expect(refusal?.code == .delegatedToOrganisation && refusal?.rule == .r11, "request \(requests[i].id): \(error)")
            }

            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL"
                )
                    == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND first_super_user") == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT account_id::text FROM role_assignments WHERE organisation_id = \(org.rawValue)")
                    == [requests[winner].requester.description])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM audit_events WHERE organisation_id = \(org.rawValue) AND action = 'role-assignment.granted'")
                    == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT status FROM access_requests WHERE id = \(requests[winner].id.rawValue)") == ["approved"])

            // The losers' requests stay pending, re-routed to the organisation's super users, each re-route audited once.
            let losers = failures.map { String(requests[$0.0].id.rawValue) }.sorted { Int64($0)! < Int64($1)! }
            #expect(
                try await f.ownerQuery(
                    "SELECT id::text FROM access_requests WHERE organisation_id = \(org.rawValue) AND status = 'pending' ORDER BY id")
                    == losers)
            let pending = try await f.ownerQuery(
                """
                SELECT id::text FROM access_requests WHERE organisation_id = \(org.rawValue) AND status = 'pending'
                AND approver_kind = 'organisation-super-users' ORDER BY id
                """)
            let rerouted = try await f.ownerQuery(
                """
                SELECT subject_id FROM audit_events WHERE organisation_id = \(org.rawValue) AND action = 'access-request.rerouted'
                AND subject_type = 'access_request' ORDER BY subject_id::bigint
                """)
            #expect(rerouted == pending, "every re-route is audited once, and only re-routes")
            // Every loser, whenever its transaction began, sees the winner's grant after the organisation lock.
            #expect(pending == losers)
            #expect(try await f.brokenBookkeeping() == [])
        }
    }

    @Test(
        "R11: concurrent first-super-user approvals written directly in SQL still yield one first super user",
        .timeLimit(.minutes(2)))
    func concurrentFirstSuperUserApprovalsInSQL() async throws {
        try await Fixture.with { f in
            let count = 20
            let org = try await f.organisation()
            var requests: [AccessRequest] = []
            for i in 0..<count {
                let user = try await f.user("candidate\(i)")
                let submission = try await f.requests.submit(actor: user, role: .superUser, organisation: org, justification: nil)
                try #require(submission.request.approverKind == .emaServiceDesk)
                try await f.openTicket(for: submission.request, by: user)
                requests.append(submission.request)
            }
            var agents: [TestAccount] = []
            for _ in 0..<count { agents.append(try await f.staff(.serviceDesk)) }
            try await Self.warmUp(f, connections: count)

            let results = try await withThrowingTaskGroup(of: (Int, Result<Int64, any Error>).self) { group in
                for i in 0..<count {
                    let agent = agents[i]
                    let agentID = agent.pgUUID
                    let requesterID = requests[i].requester.pgUUID
                    let request = requests[i].id.rawValue
                    let orgID = org.rawValue
                    group.addTask {
                        do {
                            let box = Box()
                            try await f.asApplication(actor: agent) { conn in
                                try await conn.query(
                                    "UPDATE access_requests SET status = 'approved', decided_by = \(agentID) WHERE id = \(request)",
                                    logger: TestDatabase.logger)
                                let assignment = try await Self.single(
                                    conn.query(
                                        """
                                        INSERT INTO role_assignments (organisation_id, account_id, role, source, access_request_id, first_super_user)
                                        VALUES (\(orgID), \(requesterID), 'spor-industry-super-user', 'access-request', \(request), true)
                                        RETURNING id
                                        """, logger: TestDatabase.logger))
                                try await conn.query(
                                    """
                                    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id)
                                    VALUES (\(orgID), \(agentID), 'access-request.approved', 'access_request', \(String(request)))
                                    """, logger: TestDatabase.logger)
                                try await conn.query(
                                    """
                                    INSERT INTO audit_events (organisation_id, actor_id, action, subject_type, subject_id)
                                    VALUES (\(orgID), \(agentID), 'role-assignment.granted', 'role_assignment', \(String(assignment)))
                                    """, logger: TestDatabase.logger)
                                try await conn.query(
                                    "SELECT spor_notify('access_request', \(String(request)), 'request-decided')",
                                    logger: TestDatabase.logger
                                ).collect()
                                await box.set(assignment)
                            }
                            return (i, .success(await box.value ?? -1))
                        } catch {
                            return (i, .failure(error))
                        }
                    }
                }
                var all: [Int: Result<Int64, any Error>] = [:]
                for try await (i, result) in group { all[i] = result }
                return all
            }

            let winners = results.filter { (try? $0.value.get()) != nil }.map(\.key)
            try #require(winners.count == 1, "exactly one transaction commits; got \(winners.count)")
            for (i, result) in results where i != winners[0] {
                if case .failure(let error) = result {
                    #expect(Self.code(of: error) == RefusalCode.delegatedToOrganisation.rawValue, "request \(requests[i].id): \(error)")
                }
            }
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL"
                )
                    == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM role_assignments WHERE organisation_id = \(org.rawValue) AND first_super_user") == ["1"])
            #expect(
                try await f.ownerQuery(
                    "SELECT account_id::text FROM role_assignments WHERE organisation_id = \(org.rawValue)")
                    == [requests[winners[0]].requester.description])
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM access_requests WHERE organisation_id = \(org.rawValue) AND status = 'pending'")
                    == ["\(count - 1)"])
        }
    }
}
