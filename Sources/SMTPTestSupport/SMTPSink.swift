import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A real SMTP server for tests: `scripts/smtp-sink.py` (aiosmtpd) in its own process, storing every accepted
/// message in a folder. Recipients script failures: `reject*@` gets 550, the first RCPT of `tempfail*@` gets 451,
/// `slow*@` delays the reply to DATA by 3 s.
public final class SMTPSink: @unchecked Sendable {
    /// How the sink is started.
    public struct Options: Sendable {
        /// The address to listen on.
        public var host: String
        /// The port to listen on; nil picks a free one.
        public var port: Int?
        /// The certificate for STARTTLS, or for implicit TLS with `implicitTLS`; nil: no TLS.
        public var tls: SelfSignedCertificate?
        /// TLS from the first byte (needs `tls`) instead of STARTTLS.
        public var implicitTLS: Bool
        /// Refuse commands other than EHLO/STARTTLS/QUIT before STARTTLS (needs `tls`).
        public var requireStartTLS: Bool
        /// When set, AUTH is required and only these credentials are accepted.
        public var authUser: String?
        public var authPassword: String?
        /// The AUTH mechanisms offered (e.g. `["LOGIN"]`); nil: PLAIN and LOGIN.
        public var authMechanisms: [String]?
        /// Announce 8BITMIME (aiosmtpd's default); false: the client has to send 7-bit data.
        public var eightBitMIME: Bool
        /// Accept connections but never answer (for timeout tests).
        public var silent: Bool

        public init(
            host: String = "127.0.0.1", port: Int? = nil, tls: SelfSignedCertificate? = nil, implicitTLS: Bool = false, requireStartTLS: Bool = false,
            authUser: String? = nil, authPassword: String? = nil, authMechanisms: [String]? = nil, eightBitMIME: Bool = true,
            silent: Bool = false
        ) {
            self.host = host
            self.port = port
            self.tls = tls
            self.implicitTLS = implicitTLS
            self.requireStartTLS = requireStartTLS
            self.authUser = authUser
            self.authPassword = authPassword
            self.authMechanisms = authMechanisms
            self.eightBitMIME = eightBitMIME
            self.silent = silent
        }
    }

    /// The port the sink listens on (on `Options.host`, 127.0.0.1 by default).
    public let port: Int
    /// The folder of the received messages (`NNNNNN.json`).
    public let directory: URL
    private let options: Options
    private let workDirectory: URL
    private let lock = NSLock()
    private var process: Process?

    private init(port: Int, options: Options, workDirectory: URL, process: Process) {
        self.port = port
        self.options = options
        self.workDirectory = workDirectory
        self.directory = workDirectory.appendingPathComponent("received")
        self.process = process
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: workDirectory)
    }

    /// Starts a sink and waits (at most 10 s) until it accepts connections. Throws with the sink's stderr when it
    /// cannot start (for example when python3 or aiosmtpd is missing).
    public static func start(_ options: Options = .init()) async throws -> SMTPSink {
        let work = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-sink-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work.appendingPathComponent("received"), withIntermediateDirectories: true)
        do {
            let (process, port) = try await launch(options, port: options.port ?? 0, workDirectory: work)
            return SMTPSink(port: port, options: options, workDirectory: work, process: process)
        } catch {
            try? FileManager.default.removeItem(at: work)
            throw error
        }
    }

    /// The messages received so far, in arrival order.
    public func received() throws -> [ReceivedMail] {
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path)
            .filter { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
            .sorted()
        return try names.map { name in
            let data = try Data(contentsOf: directory.appendingPathComponent(name))
            let record = try JSONDecoder().decode(Record.self, from: data)
            return ReceivedMail(
                mailFrom: record.mailFrom, recipients: record.recipients, mailOptions: record.mailOptions ?? [], data: record.data)
        }
    }

    /// Waits until at least `count` messages arrived and returns all received ones; throws after `timeout`.
    public func waitForMessages(count: Int, timeout: Duration = .seconds(20)) async throws -> [ReceivedMail] {
        let deadline = ContinuousClock.now + timeout
        while true {
            let mails = try received()
            if mails.count >= count {
                return mails
            }
            if ContinuousClock.now >= deadline {
                throw SMTPSinkError(description: "expected \(count) messages, the sink received \(mails.count) within \(timeout)")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Stops the sink: SIGTERM, then SIGKILL after 3 s. Idempotent; also done on deinit.
    public func stop() {
        let process = lock.withLock {
            defer { self.process = nil }
            return self.process
        }
        guard let process, process.isRunning else {
            return
        }
        process.terminate()
        let deadline = Date().addingTimeInterval(3)
        while process.isRunning && Date() < deadline {
            usleep(20_000)
        }
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        process.waitUntilExit()
    }

    /// Stops the sink and starts it again on the same port with the same folder of received messages.
    public func restart() async throws {
        stop()
        let (process, _) = try await Self.launch(options, port: port, workDirectory: workDirectory)
        lock.withLock { self.process = process }
    }

    private struct Record: Decodable {
        let mailFrom: String
        let recipients: [String]
        let mailOptions: [String]?
        let data: String

        enum CodingKeys: String, CodingKey {
            case mailFrom = "mail_from"
            case recipients = "rcpt_tos"
            case mailOptions = "mail_options"
            case data
        }
    }

    /// `scripts/smtp-sink.py`, found from this source file.
    private static let script = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("scripts/smtp-sink.py")

    private static func launch(_ options: Options, port: Int, workDirectory: URL) async throws -> (Process, Int) {
        var arguments = [
            "python3", script.path, "--host", options.host, "--port", String(port),
            "--dir", workDirectory.appendingPathComponent("received").path,
        ]
        if let tls = options.tls {
            arguments += ["--tls-cert", tls.certificateFile, "--tls-key", tls.keyFile]
        }
        if options.implicitTLS {
            arguments.append("--implicit-tls")
        }
        if options.requireStartTLS {
            arguments.append("--require-starttls")
        }
        if let user = options.authUser {
            arguments += ["--auth-user", user, "--auth-password", options.authPassword ?? ""]
        }
        if let mechanisms = options.authMechanisms {
            arguments += ["--auth-mechanisms", mechanisms.joined(separator: ",")]
        }
        if !options.eightBitMIME {
            arguments.append("--no-8bitmime")
        }
        if options.silent {
            arguments.append("--silent")
        }
        let stdoutFile = workDirectory.appendingPathComponent("stdout.log")
        let stderrFile = workDirectory.appendingPathComponent("stderr.log")
        _ = FileManager.default.createFile(atPath: stdoutFile.path, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrFile.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: stdoutFile)
        process.standardError = try FileHandle(forWritingTo: stderrFile)
        try process.run()

        let deadline = ContinuousClock.now + .seconds(10)
        while true {
            let output = (try? String(contentsOf: stdoutFile, encoding: .utf8)) ?? ""
            if let line = output.split(separator: "\n").first(where: { $0.hasPrefix("ready ") }),
                let readyPort = Int(line.dropFirst("ready ".count).trimmingCharacters(in: .whitespaces))
            {
                return (process, readyPort)
            }
            if !process.isRunning || ContinuousClock.now >= deadline {
                if process.isRunning {
                    process.terminate()
                }
                process.waitUntilExit()
                let stderr = (try? String(contentsOf: stderrFile, encoding: .utf8)) ?? ""
                var message = "the SMTP sink (\(script.path)) did not start: \(stderr.trimmingCharacters(in: .whitespacesAndNewlines))"
                if stderr.contains("aiosmtpd") || stderr.contains("python3") {
                    message += " (needs python3 and aiosmtpd; install aiosmtpd: python3 -m pip install aiosmtpd)"
                }
                throw SMTPSinkError(description: message)
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }
}

/// One message the sink accepted.
public struct ReceivedMail: Sendable, Equatable {
    /// The envelope sender (MAIL FROM).
    public let mailFrom: String
    /// The envelope recipients that were accepted (RCPT TO).
    public let recipients: [String]
    /// The parameters of MAIL FROM, e.g. `BODY=8BITMIME`, `SIZE=1234`.
    public let mailOptions: [String]
    /// The message as received: CRLF line ends, dot-unstuffed.
    public let data: String

    public init(mailFrom: String, recipients: [String], mailOptions: [String] = [], data: String) {
        self.mailFrom = mailFrom
        self.recipients = recipients
        self.mailOptions = mailOptions
        self.data = data
    }

    /// The header section, CRLF line ends, without the blank line that ends it.
    public var headerSection: String {
        guard let end = data.range(of: "\r\n\r\n") else {
            return data
        }
        return String(data[..<end.lowerBound])
    }

    /// The body: everything after the blank line that ends the header section.
    public var body: String {
        guard let end = data.range(of: "\r\n\r\n") else {
            return ""
        }
        return String(data[end.upperBound...])
    }

    /// The value of the first header field `name` (case-insensitive), unfolded, without leading whitespace.
    public func header(_ name: String) -> String? {
        let unfolded = headerSection.replacingOccurrences(of: "\r\n ", with: " ").replacingOccurrences(of: "\r\n\t", with: "\t")
        for line in unfolded.components(separatedBy: "\r\n") {
            guard let colon = line.firstIndex(of: ":") else {
                continue
            }
            if line[..<colon].lowercased() == name.lowercased() {
                return String(line[line.index(after: colon)...].drop(while: { $0 == " " || $0 == "\t" }))
            }
        }
        return nil
    }
}

/// A certificate and key made with the `openssl` command, for the sink's TLS; trust it with its own file.
public struct SelfSignedCertificate: Sendable, Equatable {
    /// PEM certificate for CN=localhost, subjectAltName DNS:localhost and IP:127.0.0.1; also the CA file to trust.
    public let certificateFile: String
    /// PEM private key, unencrypted.
    public let keyFile: String

    /// Makes `certificate.pem` and `key.pem` in `directory` (created if needed), valid for 2 days.
    public static func make(in directory: URL) throws -> SelfSignedCertificate {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("certificate.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", certificate,
        ]
        let errors = Pipe()
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        try process.run()
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self)
            throw SMTPSinkError(description: "openssl req failed (\(process.terminationStatus)): \(text)")
        }
        return SelfSignedCertificate(certificateFile: certificate, keyFile: key)
    }
}

/// The sink or the certificate could not be made, or messages did not arrive in time.
public struct SMTPSinkError: Error, CustomStringConvertible {
    public let description: String
}
