import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// Reminders and escalation (issue 12): the worker job spor_send_reminders, on the jobs' clock (settings.
// job_clock_offset moves it days ahead without waiting and without back-dating any row).

@Suite("Reminders: pending requests remind their super users, overdue tickets the service desk, once each")
struct ReminderTests {

    @Test("Nothing before it is due; then one reminder per request and per ticket; never twice")
    func remindersOnce() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let desk = try await f.staff(.serviceDesk)
            let (_, request) = try await f.industryRequest(of: org)
            let other = try await f.organisation()
            let (_, firstRequest) = try await f.firstSuperUserRequest(of: other, ticket: true)
            let ticket = try await f.ownerValue("SELECT id::text FROM service_desk_tickets WHERE access_request_id = \(firstRequest)")

            #expect(try await f.expiry.sendReminders() == 0, "nothing is due yet")
            try await f.setJobClock(ahead: "6 days")
            #expect(try await f.expiry.sendReminders() == 1, "the ticket is overdue after 24 h; the request not before 7 days")
            try await f.setJobClock(ahead: "8 days")
            #expect(try await f.expiry.sendReminders() == 1, "now the request")
            #expect(try await f.expiry.sendReminders() == 0, "once each")

            #expect(
                try await f.ownerQuery(
                    """
                    SELECT template FROM notification_outbox WHERE recipient_account_id = \(superUser.pgUUID)
                    AND subject_type = 'access_request' AND subject_id = \(String(request)) AND template = 'request-reminder'
                    """) == ["request-reminder"])
            #expect(
                try await f.ownerQuery(
                    """
                    SELECT template FROM notification_outbox WHERE recipient_account_id = \(desk.pgUUID)
                    AND subject_type = 'service_desk_ticket' AND subject_id = \(ticket) AND template = 'ticket-overdue'
                    """) == ["ticket-overdue"])
            #expect(
                try await f.ownerQuery("SELECT kind || ' ' || subject_id FROM reporting.reminder_history ORDER BY kind")
                    == ["request-reminder \(request)", "ticket-overdue \(ticket)"])
        }
    }

    @Test("Instances sending at once send each reminder once", .timeLimit(.minutes(1)))
    func concurrentInstances() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            for _ in 0..<5 { _ = try await f.industryRequest(of: org) }
            try await f.setJobClock(ahead: "8 days")
            let sent = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<6 { group.addTask { try await f.expiry.sendReminders() } }
                var total = 0
                for try await n in group { total += n }
                return total
            }
            #expect(sent == 5)
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE template = 'request-reminder'") == ["5"])
        }
    }

    @Test("The application role cannot send reminders, read or write their history, or move the jobs' clock (it may read it: R21)")
    func applicationRoleCannot() async throws {
        try await Fixture.with { f in
            let someone = try await f.user("someone")
            for sql in [
                "SELECT spor_send_reminders(10)", "SELECT * FROM reminders",
                "INSERT INTO reminders (kind, subject_type, subject_id) VALUES ('ticket-overdue', 'service_desk_ticket', '1')",
                "UPDATE settings SET job_clock_offset = interval '30 days'",
            ] {
                let answer = await SQLRuleTests.attempt(f, as: someone) { conn in
                    _ = try await conn.query(PostgresQuery(unsafeSQL: sql), logger: TestDatabase.logger).collect()
                }
                #expect(answer == .sqlState("42501"), "\(sql): \(answer.map(\.description) ?? "allowed")")
            }
            // Reading the clock is allowed since R21: whether a time-bound grant is still active depends on it.
            #expect(await SQLRuleTests.attempt(f, as: someone) { conn in _ = try await conn.texts("SELECT spor_job_now()::text") } == nil)
        }
    }
}
