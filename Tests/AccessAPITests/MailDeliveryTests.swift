import AccessAPI
import AccessAPITestSupport
import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import MailTransport
import SMTPTestSupport
import Testing

/// R16 end to end: the service's outbox worker delivers to a real SMTP server (aiosmtpd, `scripts/smtp-sink.py`)
/// or into a mail folder, as `serve` runs it.
@Suite("R16: e-mail reaches people (SMTP and the mail folder)")
struct MailDeliveryTests {
    static let password = "correct horse battery"

    /// The service with its background workers, delivering by SMTP to `sink` (quick polling, quick retries).
    static func smtp(_ sink: SMTPSink, _ change: @escaping @Sendable (inout SMTPConfiguration) -> Void = { _ in })
        -> @Sendable (inout AppConfiguration) -> Void
    {
        { configuration in
            var smtp = SMTPConfiguration(host: "127.0.0.1", port: sink.port, security: .startTLSIfOffered)
            smtp.commandTimeout = .seconds(5)
            change(&smtp)
            configuration.runBackgroundWorkers = true
            configuration.mail = MailConfiguration(
                transport: .smtp(smtp), fromAddress: "no-reply@spor.test", fromName: "EMA Account Management",
                publicURL: "https://spor.test/", retry: RetryPolicy(initialDelay: .milliseconds(200), maximumDelay: .milliseconds(400)),
                pollInterval: .milliseconds(100))
        }
    }

    static func register(_ api: API, _ email: String) async throws {
        let reply = try await api.call(.post, "/v1/accounts", ["email": email, "displayName": "Zoë Müller", "password": password])
        guard reply.status == .created else { throw FixtureError("registration of \(email) failed: \(reply.json)") }
    }

    /// The verification link of a received message, as a path and query the test client can call.
    static func link(in mail: ReceivedMail) throws -> String {
        let body = mail.body
        let range = try #require(body.range(of: "https://spor.test/v1/accounts/verify?token="))
        let url = body[range.lowerBound...].prefix { !$0.isWhitespace }
        return String(url.dropFirst("https://spor.test".count))
    }

    /// Polls the admin listing until the message to `email` is in `status`.
    static func waitForStatus(_ api: API, admin: String, _ email: String, _ status: String) async throws -> [String: Any] {
        for _ in 0..<100 {
            let items = try await api.call(.get, "/v1/admin/notifications?recipient=\(email)", token: admin).items
            if let item = items.first, item["status"] as? String == status { return item }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw FixtureError("the message to \(email) never became \(status)")
    }

    @Test("R2/R16: the registration e-mail arrives by SMTP, a real message, and its link activates the account")
    func registrationMailHasWorkingLink() async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        try await Fixture.with { f in
            try await TestApplication.build(f.db, configure: Self.smtp(sink)).test(.router) { client in
                let api = API(client: client)
                try await Self.register(api, "zoe@example.com")
                let mail = try #require(try await sink.waitForMessages(count: 1).first)
                #expect(mail.recipients == ["zoe@example.com"] && mail.mailFrom == "no-reply@spor.test")
                #expect(mail.header("To") == "zoe@example.com")
                #expect(mail.header("From")?.hasSuffix("<no-reply@spor.test>") == true)
                #expect(mail.header("Subject") == "Confirm your e-mail address for the EMA Account Management portal")
                #expect(mail.header("Auto-Submitted") == "auto-generated")
                let id = try #require(try await f.ownerQuery("SELECT id::text FROM notification_outbox WHERE template = 'verify-email'").first)
                #expect(mail.header("Message-ID")?.hasPrefix("<outbox-\(id).") == true)
                #expect(mail.header("Message-ID")?.hasSuffix("@spor.test>") == true)
                #expect(mail.header("Date") != nil)
                #expect(mail.body.contains("Welcome, Zoë Müller."))
                #expect(mail.data.split(separator: "\r\n").allSatisfy { $0.count <= 998 })

                // The link works once, and then the account signs in.
                let link = try Self.link(in: mail)
                #expect(try await api.call(.post, "/v1/sessions", ["email": "zoe@example.com", "password": Self.password]).code == "account-pending")
                #expect(try await api.call(.get, link).status == .ok)
                #expect(try await api.call(.get, link).status == .unprocessableContent)
                #expect(try await api.call(.post, "/v1/sessions", ["email": "zoe@example.com", "password": Self.password]).status == .created)
                // Recorded as sent (just after the server's reply).
                var delivered: [String] = []
                for _ in 0..<50 {
                    delivered = try await f.ownerQuery("SELECT (delivered_at IS NOT NULL)::text FROM notification_outbox WHERE id = \(id)::bigint")
                    if delivered == ["true"] { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(delivered == ["true"])
            }
        }
    }

    @Test("R16: STARTTLS with a self-signed certificate trusted through a CA file, and AUTH: the message arrives")
    func startTLSAndAuth() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("spor-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        let certificate = try SelfSignedCertificate.make(in: folder)
        let sink = try await SMTPSink.start(
            .init(tls: certificate, requireStartTLS: true, authUser: "spor", authPassword: "s3cret pass"))
        defer { sink.stop() }
        try await Fixture.with { f in
            let configure = Self.smtp(sink) { smtp in
                smtp.host = "localhost"
                smtp.security = .startTLSRequired
                smtp.caFile = certificate.certificateFile
                smtp.username = "spor"
                smtp.password = "s3cret pass"
            }
            try await TestApplication.build(f.db, configure: configure).test(.router) { client in
                try await Self.register(API(client: client), "tls@example.com")
                let mail = try #require(try await sink.waitForMessages(count: 1).first)
                #expect(mail.recipients == ["tls@example.com"])
            }
        }
    }

    @Test("R16: a 4xx reply is tried again and the message delivered once")
    func transientThenDelivered() async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        try await Fixture.with { f in
            let admin = try await f.staff(.admin)
            try await TestApplication.build(f.db, configure: Self.smtp(sink)).test(.router) { client in
                let api = API(client: client)
                let token = try await api.signIn(admin, fixture: f, password: "staff password 123")
                try await Self.register(api, "tempfail-1@example.com")
                let sent = try await Self.waitForStatus(api, admin: token, "tempfail-1@example.com", "sent")
                #expect(sent["attempts"] as? Int == 2)
                #expect((sent["lastError"] as? String)?.contains("451") == true)
                try await Task.sleep(for: .milliseconds(500))
                #expect(try sink.received().filter { $0.recipients == ["tempfail-1@example.com"] }.count == 1)
            }
        }
    }

    @Test("R16: a 550 for one recipient ends that message as dead with the reply; later messages still flow; an admin requeues it")
    func rejectedRecipientIsDead() async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        try await Fixture.with { f in
            let admin = try await f.staff(.admin)
            let user = try await f.user("nosy")
            try await TestApplication.build(f.db, configure: Self.smtp(sink)).test(.router) { client in
                let api = API(client: client)
                let token = try await api.signIn(admin, fixture: f, password: "staff password 123")
                try await Self.register(api, "reject-me@example.com")
                try await Self.register(api, "after@example.com")
                let dead = try await Self.waitForStatus(api, admin: token, "reject-me@example.com", "dead")
                #expect((dead["lastError"] as? String)?.contains("550") == true && dead["attempts"] as? Int == 1)
                _ = try await Self.waitForStatus(api, admin: token, "after@example.com", "sent")
                #expect(try sink.received().contains { $0.recipients == ["after@example.com"] })
                #expect(try sink.received().allSatisfy { $0.recipients != ["reject-me@example.com"] })

                // Requeue: admin only (others 404), dead ones only (409), audited.
                let id = try #require(dead["id"] as? Int)
                let userToken = try await api.signIn(user, fixture: f)
                #expect(try await api.call(.post, "/v1/admin/notifications/\(id)/requeue", token: userToken).status == .notFound)
                #expect(try await api.call(.post, "/v1/admin/notifications/999999/requeue", token: token).status == .notFound)
                let requeued = try await api.call(.post, "/v1/admin/notifications/\(id)/requeue", token: token)
                #expect(requeued.status == .ok && requeued["attempts"] as? Int == 0)
                #expect(
                    try await f.ownerQuery(
                        "SELECT action FROM audit_events WHERE subject_type = 'notification' AND subject_id = \(String(id))")
                        == ["notification.requeued"])
                // The server still refuses it: dead again, and a second requeue of a sent message is a conflict.
                _ = try await Self.waitForStatus(api, admin: token, "reject-me@example.com", "dead")
                let sent = try #require(
                    try await api.call(.get, "/v1/admin/notifications?recipient=after@example.com", token: token).items.first?["id"] as? Int)
                let again = try await api.call(.post, "/v1/admin/notifications/\(sent)/requeue", token: token)
                #expect(again.status == .conflict && again.code == "not-dead")
            }
        }
    }

    @Test("R16: the mail server down for a while, then up: nothing is lost, nothing sent twice")
    func serverDownThenUp() async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        sink.stop()
        try await Fixture.with { f in
            let metrics = HTTPMetrics()
            try await TestApplication.build(f.db, metrics: metrics, configure: Self.smtp(sink)).test(.router) { client in
                let api = API(client: client)
                for i in 1...3 { try await Self.register(api, "down-\(i)@example.com") }
                // Attempts fail while the server is down ...
                for _ in 0..<50 {
                    if try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE attempts >= 2") == ["3"] { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                #expect(
                    try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE attempts >= 2 AND delivered_at IS NULL") == ["3"])
                #expect(metrics.exposition().contains("spor_mail_queue_depth 3"))
                // ... and once it is back, every message arrives exactly once.
                try await sink.restart()
                let received = try await sink.waitForMessages(count: 3)
                try await Task.sleep(for: .milliseconds(500))
                #expect(try sink.received().count == 3)
                #expect(Set(received.flatMap(\.recipients)) == ["down-1@example.com", "down-2@example.com", "down-3@example.com"])
                for _ in 0..<30 where !metrics.exposition().contains("spor_mail_queue_depth 0") {
                    try await Task.sleep(for: .milliseconds(100))
                }
                let figures = metrics.exposition()
                #expect(figures.contains("spor_mail_queue_depth 0") && figures.contains("spor_mail_sent_total 3"))
                #expect(figures.contains("spor_mail_oldest_queued_age_seconds 0"))
                #expect(!figures.contains("spor_mail_failed_total 0"))
            }
        }
    }

    @Test("R16: a worker killed between sending and recording: the message is sent again with the same Message-ID, not lost")
    func killedBetweenSendAndRecord() async throws {
        let sink = try await SMTPSink.start()
        defer { sink.stop() }
        try await Fixture.with { f in
            _ = try await f.user("twice")
            let composer = MailComposer(fromAddress: "no-reply@spor.test", fromName: nil, publicURL: "https://spor.test")
            let client = SMTPClient(
                configuration: SMTPConfiguration(host: "127.0.0.1", port: sink.port, security: .startTLSIfOffered), logger: TestDatabase.logger)
            let policy = RetryPolicy(initialDelay: .zero, maximumDelay: .zero, lease: .seconds(4))
            let delivery = NotificationDelivery(database: f.worker, sender: SMTPSender(client: client, composer: composer), retry: policy)
            // The first worker claims (nobody else can claim it now) and sends, then dies before recording.
            let claimed = try await delivery.claim(batch: 10)
            #expect(claimed.count == 1)
            #expect(try await delivery.deliverPending().claimed == 0)
            _ = await delivery.sender.send(claimed)
            // Once the lease is over, another round sends it again.
            var again = DeliveryRound()
            for _ in 0..<100 where again.sent == 0 {
                again = try await delivery.deliverPending()
                if again.sent == 0 { try await Task.sleep(for: .milliseconds(100)) }
            }
            #expect(again.sent == 1)
            let copies = try await sink.waitForMessages(count: 2)
            #expect(copies.count == 2 && copies[0].header("Message-ID") == copies[1].header("Message-ID"))
            #expect(try await f.ownerQuery("SELECT attempts::text FROM notification_outbox WHERE delivered_at IS NOT NULL") == ["2"])
        }
    }

    @Test("R16: without a mail server each message is an .eml file in the mail folder, with the verification link")
    func mailDrop() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("spor-mail-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        try await Fixture.with { f in
            let configure: @Sendable (inout AppConfiguration) -> Void = { configuration in
                configuration.runBackgroundWorkers = true
                configuration.mail = MailConfiguration(
                    transport: .drop(directory: folder.path), publicURL: "https://spor.test", pollInterval: .milliseconds(100))
            }
            try await TestApplication.build(f.db, configure: configure).test(.router) { client in
                let api = API(client: client)
                try await Self.register(api, "drop@example.com")
                var files: [URL] = []
                for _ in 0..<50 where files.isEmpty {
                    files = ((try? FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)) ?? [])
                        .filter { $0.pathExtension == "eml" }
                    if files.isEmpty { try await Task.sleep(for: .milliseconds(100)) }
                }
                let file = try #require(files.first)
                #expect(file.lastPathComponent.hasSuffix("-verify-email.eml") && files.count == 1)
                let text = try String(contentsOf: file, encoding: .utf8)
                #expect(text.contains("To: drop@example.com\r\n") && text.contains("Auto-Submitted: auto-generated\r\n"))
                let mail = ReceivedMail(mailFrom: "", recipients: [], data: text)
                #expect(try await api.call(.get, try Self.link(in: mail)).status == .ok)
            }
        }
    }
}
