import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import Testing

/// Records what it was asked to send, and answers as scripted per recipient (sent when nothing is scripted).
actor ScriptedSender: NotificationSender {
    var sent: [String] = []
    var script: [String: [DeliveryOutcome]]

    init(_ script: [String: [DeliveryOutcome]] = [:]) { self.script = script }

    func send(_ messages: [OutboxMessage]) async -> [DeliveryOutcome] {
        messages.map { message in
            if var planned = script[message.recipient], !planned.isEmpty {
                let outcome = planned.removeFirst()
                script[message.recipient] = planned
                if case .sent = outcome { sent.append("\(message.template):\(message.recipient)") }
                return outcome
            }
            sent.append("\(message.template):\(message.recipient)")
            return .sent("250 ok")
        }
    }
}

@Suite("R16: the outbox is delivered at least once")
struct NotificationDeliveryTests {
    /// Retries at once (no back-off), so a test need not wait.
    static let noBackOff = RetryPolicy(initialDelay: .zero, maximumDelay: .zero, maximumAttempts: 3, lease: .seconds(60))

    static func state(_ f: Fixture, of email: String) async throws -> [String] {
        try await f.ownerQuery(
            """
            SELECT concat_ws(' ', CASE WHEN delivered_at IS NOT NULL THEN 'sent' WHEN dead_at IS NOT NULL THEN 'dead' ELSE 'queued' END,
                             attempts, last_error)
            FROM notification_outbox WHERE recipient_email = \(email) ORDER BY id
            """)
    }

    @Test("R16: every message is delivered; a transient failure is recorded and tried again; nothing is sent twice")
    func deliversAndRetries() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let alice = try await f.user("alice")
            _ = try await f.requests.submit(actor: alice, role: .superUser, organisation: org, justification: nil)
            let aliceEmail = try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(alice.rawValue)::uuid").first)
            let total = Int(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox").first ?? "") ?? 0
            #expect(total >= 2)  // verification e-mail and the first-super-user instructions, at least

            let sender = ScriptedSender([aliceEmail: [.transient("451 4.3.0 try again later")]])
            let delivery = NotificationDelivery(database: f.worker, sender: sender, retry: Self.noBackOff)
            let first = try await delivery.deliverPending(batch: 100)
            #expect(first.claimed == total && first.sent == total - 1 && first.failed == 1 && first.dead == 0)
            #expect(try await Self.state(f, of: aliceEmail).contains("queued 1 451 4.3.0 try again later"))

            let second = try await delivery.deliverPending(batch: 100)
            #expect(second.claimed == 1 && second.sent == 1)
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE delivered_at IS NULL") == ["0"])
            #expect(await sender.sent.count == total)
            #expect(try await delivery.deliverPending(batch: 100).claimed == 0)
            #expect(try await delivery.figures() == OutboxFigures(queued: 0, dead: 0, oldestQueuedAge: 0))
        }
    }

    @Test("R16: a permanent failure ends the message as dead with the reply; the others still flow; so do too many transient ones")
    func permanentFailureIsDead() async throws {
        try await Fixture.with { f in
            let bounced = try await f.user("bounced")
            let flaky = try await f.user("flaky")
            let fine = try await f.user("fine")
            let email = { (a: TestAccount) in try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(a.pgUUID)").first) }
            let (bouncedEmail, flakyEmail, fineEmail) = (try await email(bounced), try await email(flaky), try await email(fine))
            let sender = ScriptedSender([
                bouncedEmail: [.permanent("550 5.1.1 mailbox unavailable")],
                flakyEmail: Array(repeating: .transient("421 4.4.2 timeout"), count: 5),
            ])
            let delivery = NotificationDelivery(database: f.worker, sender: sender, retry: Self.noBackOff)
            var rounds: [DeliveryRound] = []
            for _ in 0..<5 { rounds.append(try await delivery.deliverPending(batch: 100)) }
            #expect(try await Self.state(f, of: bouncedEmail).contains("dead 1 550 5.1.1 mailbox unavailable"))
            // Three attempts (the policy's maximum), then dead.
            #expect(try await Self.state(f, of: flakyEmail).contains("dead 3 421 4.4.2 timeout"))
            #expect(await sender.sent.contains("verify-email:\(fineEmail)"))
            #expect(rounds.map(\.dead).reduce(0, +) == 2)
            #expect(rounds.map(\.failed).reduce(0, +) == 3)
            #expect(rounds.last?.claimed == 0)
            let figures = try await delivery.figures()
            #expect(figures.queued == 0 && figures.dead == 2)
        }
    }

    @Test("R16: a message whose worker died is claimed again when its lease expires, and not before; a late outcome changes nothing")
    func leaseExpires() async throws {
        try await Fixture.with { f in
            _ = try await f.user("leased")
            let sender = ScriptedSender()
            // A lease long enough that a loaded machine does not outlive it between two calls.
            let lease = RetryPolicy(initialDelay: .zero, maximumDelay: .zero, maximumAttempts: 3, lease: .seconds(4))
            let crashed = NotificationDelivery(database: f.worker, sender: sender, retry: lease)
            let claimed = try await crashed.claim(batch: 100)
            #expect(!claimed.isEmpty && claimed.allSatisfy { $0.attempt == 1 })
            // The worker "dies" here: sent, perhaps, but never recorded. Another worker sees nothing yet ...
            let other = NotificationDelivery(database: f.worker, sender: sender, retry: lease)
            #expect(try await other.claim(batch: 100).isEmpty)
            // ... and everything once the lease is over: the same messages, a second attempt.
            var again = DeliveryRound()
            for _ in 0..<100 where again.claimed == 0 {
                try await Task.sleep(for: .milliseconds(200))
                again = try await other.deliverPending(batch: 100)
            }
            #expect(again.claimed == claimed.count && again.sent == claimed.count)
            // The first worker wakes up and reports a failure: the delivery stands.
            try await crashed.record(claimed.map { ($0, .permanent("550 too late")) })
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE delivered_at IS NULL") == ["0"])
        }
    }

    @Test("R16: two workers delivering at once send every message exactly once")
    func twoWorkersNeverSendOneTwice() async throws {
        try await Fixture.with { f in
            for i in 0..<40 { _ = try await f.user("many\(i)") }
            let total = Int(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox").first ?? "") ?? 0
            let senders = [ScriptedSender(), ScriptedSender()]
            let workers = senders.map { NotificationDelivery(database: f.worker, sender: $0, retry: Self.noBackOff) }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in workers {
                    group.addTask { while try await worker.deliverPending(batch: 5).claimed > 0 {} }
                }
                try await group.waitForAll()
            }
            let sent = await senders[0].sent + senders[1].sent
            #expect(sent.count == total && Set(sent).count == total)
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE delivered_at IS NULL OR attempts <> 1") == ["0"])
        }
    }

    @Test("R16: the back-off doubles from the first pause up to the cap, with half of it random")
    func backOff() {
        let policy = RetryPolicy(initialDelay: .seconds(30), maximumDelay: .seconds(3600))
        #expect(policy.delay(afterAttempt: 1, unit: 0) == .seconds(15))
        #expect(policy.delay(afterAttempt: 1, unit: 1) == .seconds(30))
        #expect(policy.delay(afterAttempt: 3, unit: 1) == .seconds(120))
        #expect(policy.delay(afterAttempt: 20, unit: 1) == .seconds(3600))
        #expect(policy.delay(afterAttempt: 20, unit: 0) == .seconds(1800))
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
