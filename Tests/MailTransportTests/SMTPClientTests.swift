import Foundation
import Logging
import MailTransport
import SMTPTestSupport
import Testing

@Suite("SMTP client against aiosmtpd", .timeLimit(.minutes(1)))
struct SMTPClientTests {
    @Test func plainSMTPDeliversMessagesIntact() async throws {
        let sink = try await SMTPSink.start()
        let capture = LogCapture()
        let messages = [
            message(to: "anna@example.org", subject: "First", body: "Line one\n.leading dot\n..two dots\n.\nend\n"),
            message(to: "bram@example.org", subject: "SPOR – approved", body: "Grüße aus Amsterdam – tot ziens.\n"),
            message(to: "carla@example.org", subject: "Third", body: "Plain.\n"),
        ]
        let results = await client(port: sink.port, logger: capture.logger()).send(messages)
        #expect(results.count == 3)
        for result in results {
            #expect(try result.get().code == 250)
        }
        let mails = try await sink.waitForMessages(count: 3)
        #expect(mails.map(\.mailFrom) == Array(repeating: "noreply@spor.example", count: 3))
        #expect(mails.map(\.recipients) == [["anna@example.org"], ["bram@example.org"], ["carla@example.org"]])
        for (mail, sent) in zip(mails, messages) {
            #expect(mail.data == sent.rendered(eightBit: true))
            #expect(mail.header("Message-ID") == "<\(sent.messageID)>")
            #expect(mail.header("Auto-Submitted") == "auto-generated")
        }
        #expect(mails[0].body == "Line one\r\n.leading dot\r\n..two dots\r\n.\r\nend\r\n")
        #expect(mails[1].body == "Grüße aus Amsterdam – tot ziens.\r\n")
        #expect(mails[1].header("Content-Transfer-Encoding") == "8bit")
        #expect(mails[1].mailOptions.contains("BODY=8BITMIME"))
        #expect(!mails[0].mailOptions.contains("BODY=8BITMIME"))
        #expect(mails[0].mailOptions.contains { $0.hasPrefix("SIZE=") })
        #expect(decodeEncodedWords(try #require(mails[1].header("Subject"))) == "SPOR – approved")
        #expect(capture.text.contains("smtp.command: MAIL FROM"), "\(capture.text)")
        #expect(capture.text.contains("smtp.reply: 354"))
    }

    @Test func nonASCIIBodyIsQuotedPrintableWithout8BitMIME() async throws {
        let sink = try await SMTPSink.start(.init(eightBitMIME: false))
        let sent = message(body: "Grüße aus Amsterdam – tot ziens.\n")
        #expect(try await client(port: sink.port).send([sent])[0].get().code == 250)
        let mail = try await sink.waitForMessages(count: 1)[0]
        #expect(mail.data == sent.rendered(eightBit: false))
        #expect(mail.header("Content-Transfer-Encoding") == "quoted-printable")
        #expect(!mail.mailOptions.contains("BODY=8BITMIME"))
        #expect(mail.body == "Gr=C3=BC=C3=9Fe aus Amsterdam =E2=80=93 tot ziens.\r\n")
    }

    @Test(arguments: [nil, ["LOGIN"]] as [[String]?])
    func startTLSWithTrustedCertificateAndAuth(mechanisms: [String]?) async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificate = try SelfSignedCertificate.make(in: directory)
        let sink = try await SMTPSink.start(
            .init(tls: certificate, requireStartTLS: true, authUser: "relay", authPassword: "s3cret-Pässword", authMechanisms: mechanisms))
        let capture = LogCapture()
        var configuration = SMTPConfiguration(
            host: "localhost", port: sink.port, username: "relay", password: "s3cret-Pässword", caFile: certificate.certificateFile)
        let results = await SMTPClient(configuration: configuration, logger: capture.logger()).send([message(to: "anna@example.org")])
        #expect(try results[0].get().code == 250)
        let mails = try await sink.waitForMessages(count: 1)
        #expect(mails[0].recipients == ["anna@example.org"])
        #expect(capture.text.contains("smtp.command: STARTTLS"))
        #expect(capture.text.contains(mechanisms == nil ? "AUTH PLAIN" : "AUTH LOGIN"))
        let secrets = ["s3cret", Data("\0relay\0s3cret-Pässword".utf8).base64EncodedString(), Data("s3cret-Pässword".utf8).base64EncodedString()]
        for secret in secrets {
            #expect(!capture.text.contains(secret), "the log shows credentials")
        }

        configuration.password = "wrong"
        let refused = await SMTPClient(configuration: configuration, logger: capture.logger()).send([message(to: "bram@example.org")])
        let error = try #require(refused[0].failure)
        #expect(!error.isTransient && error.message.contains("535"), "\(error)")
        #expect(!error.message.contains("wrong"))
        #expect(try sink.received().count == 1)
    }

    @Test func startTLSWithUntrustedCertificateIsTransientAndSendsNothing() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificate = try SelfSignedCertificate.make(in: directory)
        let sink = try await SMTPSink.start(.init(tls: certificate, authUser: "relay", authPassword: "secret"))
        let configuration = SMTPConfiguration(host: "localhost", port: sink.port, username: "relay", password: "secret")
        let results = await SMTPClient(configuration: configuration, logger: testLogger()).send([message(), message()])
        for result in results {
            let error = try #require(result.failure)
            #expect(error.isTransient && error.message.contains("TLS"), "\(error)")
        }
        #expect(try sink.received().isEmpty)
    }

    @Test func startTLSRequiredButNotOfferedIsTransientAndSendsNothing() async throws {
        let sink = try await SMTPSink.start()
        let results = await client(port: sink.port, security: .startTLSRequired).send([message()])
        #expect(results == [.failure(.transient("STARTTLS required but not offered by server 127.0.0.1:\(sink.port)"))])
        #expect(try sink.received().isEmpty)
    }

    @Test func credentialsWithoutAuthOfferedIsTransient() async throws {
        let sink = try await SMTPSink.start()
        let configuration = SMTPConfiguration(host: "127.0.0.1", port: sink.port, username: "relay", password: "secret")
        let results = await SMTPClient(configuration: configuration, logger: testLogger()).send([message()])
        let error = try #require(results[0].failure)
        #expect(error.isTransient && error.message.contains("offers no AUTH"), "\(error)")
        #expect(try sink.received().isEmpty)
    }

    #if os(Linux)
        /// 127.0.0.2 is this machine too on Linux, but not one of the names the client treats as loopback.
        @Test func credentialsAreNeverSentInPlaintextToOtherHosts() async throws {
            let sink = try await SMTPSink.start(.init(host: "127.0.0.2", authUser: "relay", authPassword: "secret"))
            let configuration = SMTPConfiguration(host: "127.0.0.2", port: sink.port, username: "relay", password: "secret")
            let results = await SMTPClient(configuration: configuration, logger: testLogger()).send([message()])
            let error = try #require(results[0].failure)
            #expect(error.isTransient && error.message.contains("unencrypted"), "\(error)")
            #expect(try sink.received().isEmpty)
        }
    #endif

    @Test func implicitTLSWithCAFileAndIPAddress() async throws {
        let directory = temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let certificate = try SelfSignedCertificate.make(in: directory)
        let sink = try await SMTPSink.start(.init(tls: certificate, implicitTLS: true, authUser: "relay", authPassword: "secret"))
        let configuration = try SMTPConfiguration(url: "smtps://relay:secret@127.0.0.1:\(sink.port)", caFile: certificate.certificateFile)
        let results = await SMTPClient(configuration: configuration, logger: testLogger()).send([message(to: "anna@example.org")])
        #expect(try results[0].get().code == 250)
        #expect(try await sink.waitForMessages(count: 1)[0].recipients == ["anna@example.org"])
    }

    @Test func refusedRecipientDoesNotStopTheBatch() async throws {
        let sink = try await SMTPSink.start()
        let results = await client(port: sink.port).send([
            message(to: "anna@example.org", subject: "one"), message(to: "reject-me@example.org"), message(to: "carla@example.org", subject: "three"),
        ])
        #expect(try results[0].get().code == 250)
        #expect(results[1].failure == .permanent("550 5.1.1 mailbox unavailable"))
        #expect(results[1].failure?.description == "permanent: 550 5.1.1 mailbox unavailable")
        #expect(try results[2].get().code == 250)
        let mails = try await sink.waitForMessages(count: 2)
        #expect(mails.count == 2)
        #expect(mails.map { $0.header("Subject") } == ["one", "three"])
    }

    @Test func temporaryFailureThenSuccess() async throws {
        let sink = try await SMTPSink.start()
        let mail = message(to: "tempfail@example.org")
        let first = await client(port: sink.port).send([mail])
        #expect(first == [.failure(.transient("451 4.3.0 try again later"))])
        let second = await client(port: sink.port).send([mail])
        #expect(try second[0].get().code == 250)
        #expect(try await sink.waitForMessages(count: 1).count == 1)
        try await Task.sleep(for: .milliseconds(200))
        #expect(try sink.received().count == 1)
    }

    @Test func connectionRefusedIsTransientAndQuickThenServerComesBack() async throws {
        let sink = try await SMTPSink.start()
        sink.stop()
        let started = ContinuousClock.now
        let results = await client(port: sink.port).send([message(), message()])
        #expect(ContinuousClock.now - started < .seconds(3))
        for result in results {
            let error = try #require(result.failure)
            #expect(error.isTransient && error.message.contains("cannot connect"), "\(error)")
        }
        try await sink.restart()
        #expect(try await client(port: sink.port).send([message()])[0].get().code == 250)
        #expect(try await sink.waitForMessages(count: 1).count == 1)
    }

    @Test func silentServerTimesOut() async throws {
        let sink = try await SMTPSink.start(.init(silent: true))
        let started = ContinuousClock.now
        let results = await client(port: sink.port, commandTimeout: .seconds(1)).send([message()])
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .seconds(1) && elapsed < .seconds(4), "\(elapsed)")
        let error = try #require(results[0].failure)
        #expect(error.isTransient && error.message.contains("no reply to greeting"), "\(error)")
    }

    @Test func slowServerTimesOutMidBatchAndTheRestIsTransient() async throws {
        let sink = try await SMTPSink.start()
        // The sink answers the end of data for slow*@ after 3 s; the client waits 2 × 1 s.
        let results = await client(port: sink.port, commandTimeout: .seconds(1)).send([
            message(to: "anna@example.org"), message(to: "slow@example.org"), message(to: "carla@example.org"),
        ])
        #expect(try results[0].get().code == 250)
        let error = try #require(results[1].failure)
        #expect(error.isTransient && error.message.contains("no reply to end of data"), "\(error)")
        #expect(results[2].failure == error)

        // With 2 × 5 s the slow answer comes in time.
        let patient = await client(port: sink.port, commandTimeout: .seconds(5)).send([message(to: "slow@example.org")])
        #expect(try patient[0].get().code == 250)
    }

    @Test func noMessagesNoConnection() async {
        #expect(await client(port: 1).send([]).isEmpty)
    }
}

// MARK: Helpers

func testLogger() -> Logger {
    var logger = Logger(label: "MailTransportTests")
    logger.logLevel = ProcessInfo.processInfo.environment["SMTP_TEST_DEBUG"] == nil ? .info : .trace
    return logger
}

func client(
    port: Int, security: SMTPSecurity = .startTLSIfOffered, commandTimeout: Duration = .seconds(10), logger: Logger = testLogger()
) -> SMTPClient {
    let configuration = SMTPConfiguration(
        host: "127.0.0.1", port: port, security: security, connectTimeout: .seconds(5), commandTimeout: commandTimeout)
    return SMTPClient(configuration: configuration, logger: logger)
}

func message(to: String = "anna@example.org", subject: String = "Access request", body: String = "Hello.\n") -> MailMessage {
    MailMessage(
        from: "noreply@spor.example", fromName: "SPOR Access", to: to, subject: subject, body: body, date: Date(),
        messageID: "\(UUID().uuidString)@spor.example")
}

func temporaryDirectory() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("mail-transport-tests-\(UUID().uuidString)")
}

extension Result {
    var failure: Failure? {
        if case .failure(let error) = self { error } else { nil }
    }
}

/// Collects log lines (message and metadata) for assertions.
final class LogCapture: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []

    var text: String {
        lock.withLock { lines.joined(separator: "\n") }
    }

    func logger() -> Logger {
        Logger(label: "MailTransportTests") { _ in Handler(capture: self) }
    }

    private func append(_ line: String) {
        lock.withLock { lines.append(line) }
    }

    private struct Handler: LogHandler {
        let capture: LogCapture
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            let all = metadata.merging(event.metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }
            capture.append("\(event.level) \(event.message) " + all.map { "\($0.key): \($0.value)" }.joined(separator: ", "))
        }
    }
}
