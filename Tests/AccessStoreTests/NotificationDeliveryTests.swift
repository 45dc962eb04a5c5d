import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// Records what it was asked to send; fails the first attempt for one recipient when told to.
actor RecordingSender: NotificationSender {
    var sent: [String] = []
    var failOnceFor: String?

    init(failOnceFor: String? = nil) { self.failOnceFor = failOnceFor }

    func send(to recipient: String, subject: String, body: String, template: String) async throws {
        if recipient == failOnceFor {
            failOnceFor = nil
            throw FixtureError("mail relay refused \(recipient)")
        }
        sent.append("\(template):\(recipient)")
    }
}

@Suite("R16: the outbox is delivered at least once")
struct NotificationDeliveryTests {
    @Test("R16: every outbox row is delivered; a failed send is retried on the next pass and recorded")
    func deliversAndRetries() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let alice = try await f.user("alice")
            _ = try await f.requests.submit(actor: alice, role: .superUser, organisation: org, justification: nil)
            let aliceEmail = try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(alice.rawValue)::uuid").first)
            let total = Int(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox").first ?? "") ?? 0
            #expect(total >= 2)  // verification e-mail and the first-super-user instructions, at least

            let sender = RecordingSender(failOnceFor: aliceEmail)
            let delivery = NotificationDelivery(database: f.worker, sender: sender)
            let first = try await delivery.deliverPending(batch: 100)
            #expect(first < total)
            let failed = try await f.ownerQuery(
                "SELECT last_error FROM notification_outbox WHERE delivered_at IS NULL AND last_error IS NOT NULL")
            #expect(failed.count == 1 && failed[0].contains("mail relay refused"))

            let second = try await delivery.deliverPending(batch: 100)
            #expect(first + second == total)
            let undelivered = try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE delivered_at IS NULL")
            #expect(undelivered == ["0"])
            #expect(await sender.sent.count == total)
            #expect(try await delivery.deliverPending(batch: 100) == 0)
        }
    }

    @Test("R18: due requests expire through the store, audited and notified")
    func expiry() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let bob = try await f.user("bob")
            let request = try await f.requests.submit(actor: bob, role: .superUser, organisation: org, justification: nil).request
            #expect(try await f.expiry.expireDue() == 0)
            try await f.owner.withTransaction(logger: TestDatabase.logger) { c in
                try await c.query("ALTER TABLE access_requests DISABLE TRIGGER USER", logger: TestDatabase.logger)
                try await c.query(
                    "UPDATE access_requests SET expires_at = now() - interval '1 minute' WHERE id = \(request.id.rawValue)",
                    logger: TestDatabase.logger)
                try await c.query("ALTER TABLE access_requests ENABLE TRIGGER USER", logger: TestDatabase.logger)
            }
            #expect(try await f.expiry.expireDue() == 1)
            let stored = try await f.requests.request(request.id, actor: bob)
            #expect(stored.status == .expired)
            let events = try await f.ownerQuery(
                "SELECT action FROM audit_events WHERE subject_type = 'access_request' AND subject_id = \(String(request.id.rawValue)) ORDER BY id")
            #expect(events == ["access-request.submitted", "access-request.expired"])
            let notices = try await f.ownerQuery(
                "SELECT subject FROM notification_outbox WHERE subject_id = \(String(request.id.rawValue)) AND template = 'request-decided'")
            #expect(notices.count == 1 && notices[0].contains("expired"))
        }
    }
}
