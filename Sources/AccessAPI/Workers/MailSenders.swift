import AccessStore
import Foundation
import Logging
import MailTransport
import NIOPosix

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// How the outbox leaves the service: by SMTP, or as `.eml` files in a folder (the default, for a person to read).
public struct MailConfiguration: Sendable {
    public enum Transport: Sendable {
        /// RFC 5322 files, one per message, named after its outbox id.
        case drop(directory: String)
        case smtp(SMTPConfiguration)
    }

    public var transport: Transport
    /// The sender's address (envelope and `From`) and display name.
    public var fromAddress: String
    public var fromName: String?
    /// The service's address as people reach it: verification links start with it.
    public var publicURL: String
    public var retry: RetryPolicy
    /// How often the worker looks for due messages when the queue is empty.
    public var pollInterval: Duration

    public init(
        transport: Transport = .drop(directory: ".data/mail"), fromAddress: String = "no-reply@localhost",
        fromName: String? = "EMA Account Management", publicURL: String = "http://127.0.0.1:8080",
        retry: RetryPolicy = RetryPolicy(), pollInterval: Duration = .seconds(2)
    ) {
        self.transport = transport
        self.fromAddress = fromAddress
        self.fromName = fromName
        self.publicURL = publicURL
        self.retry = retry
        self.pollInterval = pollInterval
    }

    /// Parses `--mail-from`: `address` or `Display Name <address>`.
    public static func parseSender(_ text: String) throws -> (address: String, name: String?) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let open = trimmed.lastIndex(of: "<"), trimmed.hasSuffix(">") {
            let address = String(trimmed[trimmed.index(after: open)..<trimmed.index(before: trimmed.endIndex)])
            var name = trimmed[..<open].trimmingCharacters(in: .whitespaces)
            if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 { name = String(name.dropFirst().dropLast()) }
            guard Self.isAddress(address) else { throw MailConfigurationError("--mail-from: \(address) is not an e-mail address") }
            return (address, name.isEmpty ? nil : name)
        }
        guard Self.isAddress(trimmed) else { throw MailConfigurationError("--mail-from: \(trimmed) is not an e-mail address") }
        return (trimmed, nil)
    }

    static func isAddress(_ text: String) -> Bool {
        let parts = text.split(separator: "@", omittingEmptySubsequences: false)
        return parts.count == 2 && !parts[0].isEmpty && !parts[1].isEmpty
            && !text.contains(where: { $0.isWhitespace || $0 == "<" || $0 == ">" || $0 == "\r" || $0 == "\n" })
    }

    /// The sender that fits the transport.
    func makeSender(logger: Logger) -> any NotificationSender {
        let composer = MailComposer(fromAddress: fromAddress, fromName: fromName, publicURL: publicURL)
        switch transport {
        case .drop(let directory): return MailDropSender(directory: directory, composer: composer, logger: logger)
        case .smtp(let smtp): return SMTPSender(client: SMTPClient(configuration: smtp, logger: logger), composer: composer)
        }
    }
}

public struct MailConfigurationError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Turns an outbox row into an e-mail: the public address in its links, a `Message-ID` that is the same on every
/// attempt (outbox id and creation time, at the sender's domain), and the creation time as its `Date`.
public struct MailComposer: Sendable {
    public let fromAddress: String
    public let fromName: String?
    public let publicURL: String

    public init(fromAddress: String, fromName: String?, publicURL: String) {
        self.fromAddress = fromAddress
        self.fromName = fromName
        var url = publicURL
        while url.hasSuffix("/") { url.removeLast() }
        self.publicURL = url
    }

    public func message(for row: OutboxMessage) -> MailMessage {
        let domain = fromAddress.split(separator: "@").last.map(String.init) ?? "localhost"
        return MailMessage(
            from: fromAddress, fromName: fromName, to: row.recipient, subject: row.subject,
            body: row.body.replacingOccurrences(of: "{{public-url}}", with: publicURL), date: row.createdAt,
            messageID: "outbox-\(row.id).\(Int64(row.createdAt.timeIntervalSince1970))@\(domain)")
    }
}

/// Writes each message as an RFC 5322 file into a folder (`cat .data/mail/*.eml`): `00000042-verify-email.eml`.
/// Writing is atomic (a temporary file renamed), and a message sent again replaces its own file.
public struct MailDropSender: NotificationSender {
    public let directory: String
    let composer: MailComposer
    let logger: Logger

    public init(directory: String, composer: MailComposer, logger: Logger) {
        self.directory = directory
        self.composer = composer
        self.logger = logger
    }

    public func send(_ messages: [OutboxMessage]) async -> [DeliveryOutcome] {
        // File writes block: on the thread pool, never on an event loop (Swift concurrency may run on them).
        let write: @Sendable () -> [DeliveryOutcome] = { [directory, composer, logger] in
            Self.write(messages, to: directory, composer: composer, logger: logger)
        }
        return (try? await NIOThreadPool.singleton.runIfActive(write)) ?? write()
    }

    /// Each message: its text into a hidden temporary file of this process (`.NAME.PID.tmp`, so `*.eml` never
    /// matches a half-written one), flushed to disk, then renamed over `NAME`; the folder itself is flushed once for
    /// the whole batch, before any message is reported sent. Plain POSIX calls: Foundation's atomic `Data.write`
    /// was nearly half of the service's CPU under the load benchmark.
    private static func write(_ messages: [OutboxMessage], to directory: String, composer: MailComposer, logger: Logger) -> [DeliveryOutcome] {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            return messages.map { _ in .transient("cannot create \(directory): \(error)") }
        }
        let pid = getpid()
        var outcomes: [DeliveryOutcome] = messages.map { row in
            let number = String(row.id)
            let name = String(repeating: "0", count: max(0, 8 - number.count)) + number + "-" + row.template + ".eml"
            let path = directory + "/" + name
            let temporary = directory + "/." + name + ".\(pid).tmp"
            if let failure = writeDurably(Array(composer.message(for: row).rendered().utf8), to: temporary) {
                unlink(temporary)
                return .transient("cannot write \(temporary): \(failure)")
            }
            guard rename(temporary, path) == 0 else {
                let failure = String(cString: strerror(errno))
                unlink(temporary)
                return .transient("cannot rename \(temporary) to \(path): \(failure)")
            }
            logger.info("mail dropped", metadata: ["id": "\(row.id)", "to": "\(row.recipient)", "file": "\(path)"])
            return .sent("written to \(path)")
        }
        // The renames are only durable once the folder is: until then no message of the batch counts as sent.
        if let failure = syncFolder(directory) {
            outcomes = outcomes.map { outcome in
                if case .sent = outcome { return .transient("cannot flush \(directory): \(failure)") }
                return outcome
            }
        }
        return outcomes
    }

    /// Writes `bytes` to a new file at `path` and flushes it to disk; the error text, or nil.
    private static func writeDurably(_ bytes: [UInt8], to path: String) -> String? {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        defer { close(descriptor) }
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { buffer in
                writeBytes(descriptor, buffer.baseAddress! + offset, buffer.count - offset)
            }
            if written < 0 {
                if errno == EINTR { continue }
                return String(cString: strerror(errno))
            }
            offset += written
        }
        return fsync(descriptor) == 0 ? nil : String(cString: strerror(errno))
    }

    /// Flushes a folder's entries (renames) to disk; the error text, or nil.
    private static func syncFolder(_ path: String) -> String? {
        let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard descriptor >= 0 else { return String(cString: strerror(errno)) }
        defer { close(descriptor) }
        return fsync(descriptor) == 0 ? nil : String(cString: strerror(errno))
    }
}

/// Sends the messages by SMTP over one connection; each message's reply decides its outcome.
public struct SMTPSender: NotificationSender {
    let client: SMTPClient
    let composer: MailComposer

    public init(client: SMTPClient, composer: MailComposer) {
        self.client = client
        self.composer = composer
    }

    public func send(_ messages: [OutboxMessage]) async -> [DeliveryOutcome] {
        let results = await client.send(messages.map(composer.message(for:)))
        return results.map { result in
            switch result {
            case .success(let reply): .sent(reply.description)
            case .failure(.transient(let reply)): .transient(reply)
            case .failure(.permanent(let reply)): .permanent(reply)
            }
        }
    }
}

/// POSIX `write(2)` (inside `MailDropSender` the name is its own method's).
private func writeBytes(_ descriptor: Int32, _ bytes: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, bytes, count)
}
