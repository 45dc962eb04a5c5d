import AccessDomain
import Testing

@Suite("R10: documents are the type they claim by their structure; a ticket quotes its request as a whole number")
struct DocumentTests {
    static let pdf = Array("%PDF-1.4\n% letter\n%%EOF\n".utf8)
    static let png: [UInt8] =
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52]
        + Array(repeating: 0, count: 17) + [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
    static let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, 0xFF, 0xD9]

    @Test("Header and trailer: whole files match, signatures alone and truncated files do not")
    func structure() {
        #expect(DocumentType.pdf.matches(Self.pdf) && DocumentType.png.matches(Self.png) && DocumentType.jpeg.matches(Self.jpeg))
        #expect(DocumentType.sniff(Self.pdf) == .pdf && DocumentType.sniff(Self.png) == .png && DocumentType.sniff(Self.jpeg) == .jpeg)
        for (type, bytes) in [
            (DocumentType.pdf, Array("%PDF-".utf8)), (.pdf, Array("%PDF-1.7 no trailer at all".utf8)), (.pdf, Array("%PDF-x.y\n%%EOF".utf8)),
            (.png, Array(Self.png.dropLast())), (.png, Array(Self.png.prefix(16))), (.jpeg, [0xFF, 0xD8, 0xFF]),
            (.jpeg, Array(Self.jpeg.dropLast())), (.pdf, Self.png), (.png, Self.jpeg),
        ] {
            #expect(!type.matches(bytes), "\(type) \(bytes.prefix(8))")
        }
        // The trailer may be followed by a line end, but must be in the last 1,024 bytes.
        #expect(DocumentType.pdf.matches(Self.pdf + Array(repeating: 0x20, count: 900)))
        #expect(!DocumentType.pdf.matches(Self.pdf + Array(repeating: 0x20, count: 1100)))
    }

    @Test("The request id after \"request ID\" is read as a whole number")
    func quotedRequestID() {
        #expect(TicketPolicy.quotedRequestID(in: "SPOR Super user role access – request ID 100049") == AccessRequestID(100049))
        #expect(TicketPolicy.quotedRequestID(in: "SPOR super user role access – Request id: 10004.") == AccessRequestID(10004))
        #expect(TicketPolicy.quotedRequestID(in: "SPOR super user role access") == nil)
    }
}
