/// The kinds of uploaded document accepted — the affiliation letter (R10) and OMS supporting documents (R17) —
/// recognised by their first bytes, not by what the client claims. The `documents` table checks the same bytes.
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
        allCases.first { bytes.starts(with: $0.magic) }
    }

    /// Whether the bytes are a file of this type.
    public func matches(_ bytes: [UInt8]) -> Bool { bytes.starts(with: magic) }
}
