import NIOCore

/// A reply of the SMTP server: its code and the text of each line (without the code).
public struct SMTPReply: Sendable, Equatable, CustomStringConvertible {
    public let code: Int
    public let lines: [String]

    public init(code: Int, lines: [String]) {
        self.code = code
        self.lines = lines
    }

    /// The code and the lines joined by spaces, e.g. `550 5.1.1 mailbox unavailable`.
    public var description: String {
        ([String(code)] + lines.filter { !$0.isEmpty }).joined(separator: " ")
    }
}

/// The server sent something that is not an SMTP reply.
struct SMTPProtocolError: Error, CustomStringConvertible {
    let description: String
}

/// Decodes CRLF-terminated reply lines into replies (`250-...` continues, `250 ...` ends a reply). It also watches
/// what is written: data that arrives after the reply to STARTTLS, before TLS starts, is an error (RFC 3207 §5).
struct SMTPReplyDecoder: WriteObservingByteToMessageDecoder {
    typealias InboundOut = SMTPReply
    typealias OutboundIn = ByteBuffer

    private var lines: [String] = []
    private var awaitingStartTLSReply = false

    mutating func write(data: ByteBuffer) {
        awaitingStartTLSReply = data.readableBytesView.elementsEqual("STARTTLS\r\n".utf8)
    }

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let newline = buffer.readableBytesView.firstIndex(of: UInt8(ascii: "\n")) else {
            return .needMoreData
        }
        var line = buffer.readString(length: newline - buffer.readerIndex + 1)!.utf8.dropLast()
        if line.last == UInt8(ascii: "\r") {
            line = line.dropLast()
        }
        let bytes = Array(line)
        guard bytes.count >= 3, bytes[0..<3].allSatisfy({ (0x30...0x39).contains($0) }),
            bytes.count == 3 || bytes[3] == UInt8(ascii: " ") || bytes[3] == UInt8(ascii: "-")
        else {
            throw SMTPProtocolError(description: "malformed reply line '\(String(decoding: bytes.prefix(80), as: UTF8.self))'")
        }
        lines.append(String(decoding: bytes.dropFirst(4), as: UTF8.self))
        if bytes.count > 3 && bytes[3] == UInt8(ascii: "-") {
            return .continue
        }
        let reply = SMTPReply(code: Int(String(decoding: bytes[0..<3], as: UTF8.self))!, lines: lines)
        lines = []
        if awaitingStartTLSReply && buffer.readableBytes > 0 {
            throw SMTPProtocolError(description: "unexpected data after the reply to STARTTLS")
        }
        awaitingStartTLSReply = false
        context.fireChannelRead(wrapInboundOut(reply))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        try decode(context: context, buffer: &buffer)
    }
}

/// Counts the replies that arrived (on the event loop), so that a timeout never closes a connection whose reply came
/// in time but was not yet read.
final class ReplyCounter: ChannelInboundHandler {
    typealias InboundIn = SMTPReply
    typealias InboundOut = SMTPReply

    private(set) var count = 0

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        count += 1
        context.fireChannelRead(data)
    }
}
