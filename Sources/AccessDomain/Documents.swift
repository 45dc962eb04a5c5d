/// The kinds of uploaded document accepted — the affiliation letter (R10) and OMS supporting documents (R17) —
/// recognised by their structure (first and last bytes), not by what the client claims. The `documents` table
/// checks the same bytes.
public enum DocumentType: String, Sendable, Codable, CaseIterable {
    case pdf = "application/pdf"
    case png = "image/png"
    case jpeg = "image/jpeg"

    /// Largest document accepted.
    public static let maximumSize = 10 * 1024 * 1024

    /// The first bytes every file of this type starts with.
    public var magic: [UInt8] {
        switch self {
        case .pdf: Array("%PDF-".utf8)
        case .png: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        case .jpeg: [0xFF, 0xD8, 0xFF]
        }
    }

    /// The type the bytes really are, or nil.
    public static func sniff(_ bytes: [UInt8]) -> DocumentType? {
        allCases.first { $0.matches(bytes) }
    }

    /// Whether the bytes are a file of this type: its signature at the start and its end marker at the end, as
    /// the `documents` table checks them too (0030). A PDF has a `%PDF-n.n` header and a `%%EOF` trailer in its
    /// last 1,024 bytes; a PNG its signature, an IHDR chunk first and the IEND chunk last; a JPEG its SOI marker
    /// (FF D8 FF) first and its EOI marker (FF D9) last. `%PDF-` alone is not a PDF.
    public func matches(_ bytes: [UInt8]) -> Bool {
        guard bytes.starts(with: magic) else { return false }
        switch self {
        case .pdf:
            let digit = { (b: UInt8) in (0x30...0x39).contains(b) }
            guard bytes.count >= 13, digit(bytes[5]), bytes[6] == 0x2E, digit(bytes[7]) else { return false }
            return Self.contains(Array("%%EOF".utf8), in: bytes.suffix(1024))
        case .png:
            let iend: [UInt8] = [0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]
            return bytes.count >= 8 + 25 + 12 && Array(bytes[12..<16]) == Array("IHDR".utf8) && bytes.suffix(12).elementsEqual(iend)
        case .jpeg:
            return bytes.count >= 5 && bytes.suffix(2).elementsEqual([0xFF, 0xD9])
        }
    }

    static func contains(_ needle: [UInt8], in haystack: ArraySlice<UInt8>) -> Bool {
        guard haystack.count >= needle.count else { return false }
        var index = haystack.startIndex
        while index <= haystack.endIndex - needle.count {
            if haystack[index..<index + needle.count].elementsEqual(needle) { return true }
            index += 1
        }
        return false
    }
}
