import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL

/// Why a message was not delivered.
public enum SMTPDeliveryError: Error, Sendable, Equatable, CustomStringConvertible {
    /// Try again later: the connection failed, was lost or timed out, TLS or AUTH could not be used, or the server
    /// answered 4xx. Also when STARTTLS is required but not offered, so that nothing is lost while an operator looks.
    case transient(String)
    /// Do not retry: the server refused this message with a 5xx reply (to MAIL, RCPT or DATA), the address is
    /// unusable, or the credentials were refused (535).
    case permanent(String)

    /// The explanation, with the server's reply when there was one, e.g. `451 4.3.0 try again later`.
    public var message: String {
        switch self {
        case .transient(let message), .permanent(let message): message
        }
    }

    /// Whether the message may be tried again later.
    public var isTransient: Bool {
        if case .transient = self { true } else { false }
    }

    /// `transient: ...` or `permanent: ...`.
    public var description: String {
        (isTransient ? "transient: " : "permanent: ") + message
    }
}

/// A small SMTP client (RFC 5321) on SwiftNIO: STARTTLS (RFC 3207) or implicit TLS, AUTH PLAIN or LOGIN, 8BITMIME.
public struct SMTPClient: Sendable {
    public let configuration: SMTPConfiguration
    private let logger: Logger
    private let eventLoopGroup: any EventLoopGroup

    public init(configuration: SMTPConfiguration, logger: Logger, eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
        self.configuration = configuration
        var logger = logger
        logger[metadataKey: "smtp.server"] = "\(configuration.host):\(configuration.port)"
        self.logger = logger
        self.eventLoopGroup = eventLoopGroup
    }

    /// Sends the messages over one connection, in order, each in its own MAIL/RCPT/DATA transaction (RSET after a
    /// refused one), and returns one outcome per message in the same order: the server's final reply to DATA on
    /// success. One refused recipient never stops the rest. If the connection fails mid-way, that message and all
    /// later ones are `.transient` with the error. Never throws; never waits longer than the timeouts.
    public func send(_ messages: [MailMessage]) async -> [Result<SMTPReply, SMTPDeliveryError>] {
        guard !messages.isEmpty else {
            return []
        }
        var results: [Result<SMTPReply, SMTPDeliveryError>] = []
        do {
            let (channel, counter) = try await connect()
            try await channel.executeThenClose { inbound, outbound in
                var session = SMTPSession(
                    configuration: configuration, logger: logger, channel: channel.channel, replies: inbound.makeAsyncIterator(),
                    outbound: outbound, counter: counter, isSecure: configuration.security == .implicitTLS)
                try await session.open()
                for message in messages {
                    results.append(try await session.deliver(message))
                }
                await session.quit()
            }
        } catch {
            let failure = error as? SMTPDeliveryError ?? .transient("\(configuration.host):\(configuration.port): \(describe(error))")
            logger.debug("SMTP session failed", metadata: ["error": "\(failure)"])
            results += Array(repeating: .failure(failure), count: messages.count - results.count)
        }
        return results
    }

    private func connect() async throws -> (NIOAsyncChannel<SMTPReply, ByteBuffer>, NIOLoopBound<ReplyCounter>) {
        let tls = configuration.security == .implicitTLS ? try makeTLSContext(configuration) : nil
        let serverHostname = serverHostname(configuration.host)
        logger.debug("SMTP connecting", metadata: ["smtp.security": "\(configuration.security)"])
        do {
            return try await ClientBootstrap(group: eventLoopGroup)
                .connectTimeout(TimeAmount(configuration.connectTimeout))
                .connect(host: configuration.host, port: configuration.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        if let tls {
                            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                        }
                        let counter = ReplyCounter()
                        try channel.pipeline.syncOperations.addHandlers(
                            ByteToMessageHandler(SMTPReplyDecoder(), maximumBufferSize: 65536), counter)
                        let asyncChannel = try NIOAsyncChannel<SMTPReply, ByteBuffer>(wrappingChannelSynchronously: channel)
                        return (asyncChannel, NIOLoopBound(counter, eventLoop: channel.eventLoop))
                    }
                }
        } catch {
            throw SMTPDeliveryError.transient("cannot connect to \(configuration.host):\(configuration.port): \(describe(error))")
        }
    }
}

/// The TLS client context: the system's trust roots or those of the configured CA file.
private func makeTLSContext(_ configuration: SMTPConfiguration) throws -> NIOSSLContext {
    var tls = TLSConfiguration.makeClientConfiguration()
    if let caFile = configuration.caFile {
        tls.trustRoots = .file(caFile)
    }
    do {
        return try NIOSSLContext(configuration: tls)
    } catch {
        throw SMTPDeliveryError.transient("cannot set up TLS (CA file \(configuration.caFile ?? "none")): \(error)")
    }
}

/// The name for SNI and certificate verification; nil for an IP address (then verified against the address).
private func serverHostname(_ host: String) -> String? {
    (try? SocketAddress(ipAddress: host, port: 0)) == nil ? host : nil
}

private func describe(_ error: any Error) -> String {
    switch error {
    case let error as NIOConnectionError:
        if let dns = error.dnsAError ?? error.dnsAAAAError {
            return "cannot resolve \(error.host): \(dns)"
        }
        return error.connectionErrors.map { "\($0.target): \($0.error)" }.joined(separator: "; ")
    case let error as NIOSSLError:
        return "TLS failed: \(error)"
    case ChannelError.connectTimeout(let timeout):
        return "no connection within \(Duration(timeout))"
    default:
        return "\(error)"
    }
}

/// One connection: its replies, its writer and what the server offers.
private struct SMTPSession {
    let configuration: SMTPConfiguration
    let logger: Logger
    let channel: any Channel
    var replies: NIOAsyncChannelInboundStream<SMTPReply>.AsyncIterator
    let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let counter: NIOLoopBound<ReplyCounter>
    var repliesRead = 0
    var isSecure: Bool
    /// EHLO keywords (upper case) and their parameters.
    var extensions: [String: [String]] = [:]
    var needsReset = false

    var server: String { "\(configuration.host):\(configuration.port)" }

    /// Greeting, EHLO, STARTTLS and AUTH as configured.
    mutating func open() async throws {
        let greeting = try await exchange(ByteBuffer?.none, verb: "greeting")
        guard greeting.code == 220 else {
            throw SMTPDeliveryError.transient("\(server) refused the session: \(greeting)")
        }
        try await hello()
        if !isSecure && configuration.security != .implicitTLS {
            if extensions["STARTTLS"] != nil {
                try await startTLS()
            } else if configuration.security == .startTLSRequired {
                throw SMTPDeliveryError.transient("STARTTLS required but not offered by server \(server)")
            }
        }
        if configuration.username != nil {
            try await authenticate()
        }
    }

    /// EHLO, or HELO when the server does not know EHLO; records the extensions.
    mutating func hello() async throws {
        var reply = try await exchange("EHLO \(configuration.clientName)", verb: "EHLO")
        extensions = [:]
        if reply.code / 100 == 5 {
            reply = try await exchange("HELO \(configuration.clientName)", verb: "HELO")
        } else if reply.code == 250 {
            for line in reply.lines.dropFirst() {
                // `AUTH=LOGIN PLAIN` is an old spelling of `AUTH LOGIN PLAIN`.
                let words = line.replacingOccurrences(of: "=", with: " ").split(separator: " ").map(String.init)
                if let keyword = words.first?.uppercased() {
                    extensions[keyword, default: []] += words.dropFirst()
                }
            }
        }
        guard reply.code == 250 else {
            throw SMTPDeliveryError.transient("\(server) refused EHLO/HELO: \(reply)")
        }
    }

    /// STARTTLS, then TLS in front of the decoder (handshake right away), then EHLO again.
    mutating func startTLS() async throws {
        let reply = try await exchange("STARTTLS", verb: "STARTTLS")
        guard reply.code == 220 else {
            throw SMTPDeliveryError.transient("\(server) refused STARTTLS: \(reply)")
        }
        let context = try makeTLSContext(configuration)
        let hostname = serverHostname(configuration.host)
        let channel = self.channel
        try await channel.eventLoop.submit {
            try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: context, serverHostname: hostname), position: .first)
        }.get()
        isSecure = true
        try await hello()
    }

    /// AUTH PLAIN (preferred) or LOGIN; never over a plain connection unless the server is this machine.
    mutating func authenticate() async throws {
        let user = configuration.username ?? ""
        let password = configuration.password ?? ""
        guard isSecure || configuration.hostIsLoopback else {
            throw SMTPDeliveryError.transient("refusing to send credentials to \(server) over an unencrypted connection")
        }
        guard let offered = extensions["AUTH"].map({ Set($0.map { $0.uppercased() }) }) else {
            throw SMTPDeliveryError.transient("credentials are configured but \(server) offers no AUTH")
        }
        func base64(_ text: String) -> String { Data(text.utf8).base64EncodedString() }
        var reply: SMTPReply
        if offered.contains("PLAIN") {
            reply = try await exchange("AUTH PLAIN " + base64("\0\(user)\0\(password)"), verb: "AUTH PLAIN")
        } else if offered.contains("LOGIN") {
            reply = try await exchange("AUTH LOGIN", verb: "AUTH LOGIN")
            if reply.code == 334 {
                reply = try await exchange(base64(user), verb: "AUTH LOGIN (user name)")
            }
            if reply.code == 334 {
                reply = try await exchange(base64(password), verb: "AUTH LOGIN (password)")
            }
        } else {
            throw SMTPDeliveryError.transient("\(server) offers AUTH \(offered.sorted().joined(separator: " ")), but not PLAIN or LOGIN")
        }
        guard reply.code == 235 else {
            let message = "authentication as \(user) refused by \(server): \(reply)"
            throw reply.code == 535 ? SMTPDeliveryError.permanent(message) : .transient(message)
        }
    }

    /// One MAIL/RCPT/DATA transaction. Returns the outcome of a refusal; throws when the connection is unusable.
    mutating func deliver(_ message: MailMessage) async throws -> Result<SMTPReply, SMTPDeliveryError> {
        if needsReset {
            needsReset = false
            let reply = try await exchange("RSET", verb: "RSET")
            guard reply.code == 250 else {
                throw SMTPDeliveryError.transient("\(server) refused RSET: \(reply)")
            }
        }
        func usable(_ address: String) -> Bool {
            address.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value != 0x7F && $0 != "<" && $0 != ">" }
        }
        guard usable(message.from), usable(message.to), !message.to.isEmpty else {
            return .failure(.permanent("unusable address in <\(message.from)> or <\(message.to)>"))
        }
        let eightBit = extensions["8BITMIME"] != nil
        let data = dotStuffed(message.rendered(eightBit: eightBit))
        var mail = "MAIL FROM:<\(message.from)>"
        if eightBit && !message.bodyIsASCII {
            mail += " BODY=8BITMIME"
        }
        if extensions["SIZE"] != nil {
            mail += " SIZE=\(data.readableBytes)"
        }
        if !(message.from + message.to).utf8.allSatisfy({ $0 < 0x80 }) {
            guard extensions["SMTPUTF8"] != nil else {
                return .failure(.permanent("<\(message.from)> or <\(message.to)> needs SMTPUTF8, which \(server) does not offer"))
            }
            mail += " SMTPUTF8"
        }
        for (command, verb) in [(mail, "MAIL FROM"), ("RCPT TO:<\(message.to)>", "RCPT TO")] {
            let reply = try await exchange(command, verb: verb)
            guard reply.code / 100 == 2 else {
                return try refused(reply, verb: verb)
            }
        }
        let reply = try await exchange("DATA", verb: "DATA")
        guard reply.code == 354 else {
            return try refused(reply, verb: "DATA")
        }
        let final = try await exchange(data, verb: "end of data", timeout: configuration.commandTimeout * 2)
        return final.code / 100 == 2 ? .success(final) : try refused(final, verb: "end of data")
    }

    /// The outcome of a 4xx or 5xx reply to a command of the transaction.
    private mutating func refused(_ reply: SMTPReply, verb: String) throws -> Result<SMTPReply, SMTPDeliveryError> {
        needsReset = verb != "end of data"
        switch reply.code / 100 {
        case 4: return .failure(.transient(reply.description))
        case 5: return .failure(.permanent(reply.description))
        default: throw SMTPDeliveryError.transient("unexpected reply to \(verb) from \(server): \(reply)")
        }
    }

    /// QUIT, ignoring what happens.
    mutating func quit() async {
        _ = try? await exchange("QUIT", verb: "QUIT", timeout: min(configuration.commandTimeout, .seconds(5)))
    }

    /// Writes a command (if any) and reads the reply, closing the connection when it has not arrived within `timeout`.
    /// A 421 reply (the server is closing the connection) throws.
    mutating func exchange(_ command: String?, verb: String, timeout: Duration? = nil) async throws -> SMTPReply {
        try await exchange(command.map { ByteBuffer(string: $0 + "\r\n") }, verb: verb, timeout: timeout)
    }

    mutating func exchange(_ data: ByteBuffer?, verb: String, timeout: Duration? = nil) async throws -> SMTPReply {
        let timeout = timeout ?? configuration.commandTimeout
        let deadline = ContinuousClock.now + timeout
        let (channel, counter, expected) = (self.channel, self.counter, repliesRead + 1)
        let timer = channel.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            if counter.value.count < expected {
                channel.close(promise: nil)
            }
        }
        defer { timer.cancel() }
        do {
            var writeError: (any Error)?
            if let data {
                logger.debug("SMTP command", metadata: ["smtp.command": "\(verb)"])
                do {
                    try await outbound.write(data)
                } catch {
                    writeError = error  // the inbound side usually knows why (say, a failed TLS handshake)
                }
            }
            guard let reply = try await replies.next(), writeError == nil else {
                throw writeError ?? SMTPProtocolError(description: "connection closed by the server")
            }
            repliesRead += 1
            logger.debug("SMTP reply", metadata: ["smtp.command": "\(verb)", "smtp.reply": "\(reply.code)"])
            if reply.code == 421 {
                throw SMTPDeliveryError.transient("\(server) is closing the connection: \(reply)")
            }
            return reply
        } catch let error as SMTPDeliveryError {
            throw error
        } catch {
            if Task.isCancelled {
                throw SMTPDeliveryError.transient("cancelled at \(verb) with \(server)")
            }
            if ContinuousClock.now >= deadline - .milliseconds(5) {
                throw SMTPDeliveryError.transient("no reply to \(verb) from \(server) within \(timeout)")
            }
            throw SMTPDeliveryError.transient("\(server), at \(verb): \(describe(error))")
        }
    }
}

/// The message as sent after DATA: a line starting with "." gets another "." (RFC 5321 §4.5.2), then ".\r\n".
private func dotStuffed(_ message: String) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.reserveCapacity(message.utf8.count + 64)
    var lineStart = true
    for byte in message.utf8 {
        if lineStart && byte == UInt8(ascii: ".") {
            buffer.writeInteger(UInt8(ascii: "."))
        }
        buffer.writeInteger(byte)
        lineStart = byte == UInt8(ascii: "\n")
    }
    if !lineStart {
        buffer.writeString("\r\n")
    }
    buffer.writeString(".\r\n")
    return buffer
}
