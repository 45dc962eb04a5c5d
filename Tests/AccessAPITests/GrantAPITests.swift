import AccessAPITestSupport
import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import Testing

// R21 over HTTP: time-bound grants, driven on the jobs' clock (settings.job_clock_offset: days pass without waiting).
@Suite("R21 over HTTP: time-bound grants, their notices, their end and their renewal")
struct GrantAPITests {
    static func iso(_ date: Date) -> String { date.formatted(.iso8601) }
    static func days(_ n: Double) -> String { iso(Date().addingTimeInterval(n * 86_400)) }

    @Test("Asked until a date, shortened by the super user, shown in /v1/me; lengthening or the past is a 422 that changes nothing")
    func askShortenShow() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let applicant = try await f.user("applicant")
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let past = try await api.call(
                    .post, "/v1/access-requests", token: applicant.bearerToken,
                    ["role": "spor-industry-user", "organisationId": org.rawValue, "accessUntil": Self.days(-1)])
                #expect(past.status == .unprocessableContent && past.code == "grant-end-in-past" && past["rule"] as? String == "R21")
                let unaffiliated = try await api.call(
                    .post, "/v1/access-requests", token: applicant.bearerToken,
                    ["role": "spor-unaffiliated-user", "accessUntil": Self.days(10)])
                #expect(unaffiliated.status == .unprocessableContent && unaffiliated["field"] as? String == "accessUntil")

                let filed = try await api.call(
                    .post, "/v1/access-requests", token: applicant.bearerToken,
                    ["role": "spor-industry-user", "organisationId": org.rawValue, "accessUntil": Self.days(30)])
                #expect(filed.status == .created && filed["accessUntil"] is String, "\(filed.text)")
                let id = try #require(filed["id"] as? Int)
                let approve = "/v1/organisations/\(org.rawValue)/access-requests/\(id)/approve"

                let longer = try await api.call(.post, approve, token: superUser.bearerToken, ["accessUntil": Self.days(40)])
                #expect(longer.status == .unprocessableContent && longer.code == "grant-lengthened", "\(longer.text)")
                let still = try await api.call(.get, "/v1/access-requests/\(id)", token: applicant.bearerToken)
                #expect(still["status"] as? String == "pending", "a refused approval changes nothing")

                let approved = try await api.call(.post, approve, token: superUser.bearerToken, ["accessUntil": Self.days(20)])
                #expect(approved.status == .ok, "\(approved.text)")
                let me = try await api.call(.get, "/v1/me", token: applicant.bearerToken)
                let roles = me["roleAssignments"] as? [[String: Any]] ?? []
                let industry = try #require(roles.first { $0["role"] as? String == "spor-industry-user" })
                let endsAt = try #require((industry["endsAt"] as? String).flatMap { try? Date($0, strategy: .iso8601) })
                #expect(abs(endsAt.timeIntervalSinceNow - 20 * 86_400) < 120, "the shorter end was granted")
                let members = try await api.call(.get, "/v1/organisations/\(org.rawValue)/members", token: superUser.bearerToken)
                let member = members.items.first { $0["accountId"] as? String == applicant.description }
                #expect((member?["roles"] as? [[String: Any]])?.first?["endsAt"] is String, "\(members.text)")
            }
        }
    }

    @Test("Notices 14 and 3 days before, the end on the day (no longer a member), and renewal by a new request")
    func noticesEndAndRenewal() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let applicant = try await f.user("applicant")
            let admin = try await f.staff(.admin)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let filed = try await api.call(
                    .post, "/v1/access-requests", token: applicant.bearerToken,
                    ["role": "spor-industry-user", "organisationId": org.rawValue, "accessUntil": Self.days(20)])
                let id = try #require(filed["id"] as? Int)
                let approved = try await api.call(
                    .post, "/v1/organisations/\(org.rawValue)/access-requests/\(id)/approve", token: superUser.bearerToken, [:])
                #expect(approved.status == .ok)

                try await f.setJobClock(ahead: "7 days")
                #expect(try await f.expiry.runGrantJobs() == (0, 1))
                for account in [applicant, superUser] {
                    let outbox = try await api.call(.get, "/v1/admin/notifications?recipient=\(account.id.rawValue)", token: admin.bearerToken)
                    #expect(outbox.items.contains { $0["template"] as? String == "grant-ending" }, "\(outbox.text)")
                }

                // Renewal before the end: a new request (not "already held"), approved, replaces the old grant.
                let renewal = try await api.call(
                    .post, "/v1/access-requests", token: applicant.bearerToken,
                    ["role": "spor-industry-user", "organisationId": org.rawValue, "accessUntil": Self.days(60)])
                #expect(renewal.status == .created, "\(renewal.text)")
                let renewalID = try #require(renewal["id"] as? Int)
                let renewed = try await api.call(
                    .post, "/v1/organisations/\(org.rawValue)/access-requests/\(renewalID)/approve", token: superUser.bearerToken, [:])
                #expect(renewed.status == .ok, "\(renewed.text)")
                #expect(
                    try await f.ownerQuery(
                        """
                        SELECT coalesce(revoke_reason, 'active') FROM role_assignments
                        WHERE account_id = \(applicant.pgUUID) AND role = 'spor-industry-user' ORDER BY id
                        """) == ["renewed by access request \(renewalID)", "active"])

                // The renewed grant ends too: on the day, the member is gone from the organisation.
                try await f.setJobClock(ahead: "61 days")
                let (ended, _) = try await f.expiry.runGrantJobs()
                #expect(ended == 1)
                let members = try await api.call(.get, "/v1/organisations/\(org.rawValue)/members", token: superUser.bearerToken)
                #expect(!members.items.contains { $0["accountId"] as? String == applicant.description })
                let audit = try await api.call(.get, "/v1/audit-events?organisationId=\(org.rawValue)", token: superUser.bearerToken)
                #expect(audit.items.contains { $0["action"] as? String == "role-assignment.ended" }, "\(audit.text)")
            }
        }
    }

    @Test("The service desk grants a first super user until a date; past it the organisation has no super user and the desk is told")
    func superUserLapse() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let desk = try await f.staff(.serviceDesk)
            let candidate = try await f.user("candidate")
            let request = try await f.requests.submit(actor: candidate, role: .superUser, organisation: org, justification: nil).request
            let ticket = try await f.openTicket(for: request, by: candidate)
            try await TestApplication.build(f.db).test(.router) { client in
                let api = API(client: client)
                let approved = try await api.call(
                    .post, "/v1/service-desk/tickets/\(ticket.id)/approve", token: desk.bearerToken, ["accessUntil": Self.days(5)])
                #expect(approved.status == .ok, "\(approved.text)")
                let list = "/v1/organisations/\(org.rawValue)/access-requests"
                #expect(try await api.call(.get, list, token: candidate.bearerToken).status == .ok)

                try await f.setJobClock(ahead: "6 days")
                #expect(try await api.call(.get, list, token: candidate.bearerToken).status == .notFound, "R13: no longer a super user")
                let industry = try await api.request("spor-industry-user", org.rawValue, token: try await f.user("member").bearerToken)
                #expect(industry.status == .conflict && industry.code == "no-super-user")
                #expect(try await f.expiry.runGrantJobs().ended == 1)
                let told = try await f.ownerQuery(
                    "SELECT subject_type FROM notification_outbox WHERE template = 'grant-ended' AND recipient_account_id = \(desk.pgUUID)")
                #expect(told == ["organisation"])
            }
        }
    }
}
