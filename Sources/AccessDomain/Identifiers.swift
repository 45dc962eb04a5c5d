/// An organisation of the OMS dictionary: `ORG-` and nine digits, e.g. `ORG-100000123` (R1).
public struct OrganisationID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: String

    /// Accepts exactly `ORG-` followed by nine digits; anything else is nil.
    public init?(_ text: String) {
        let digits = text.dropFirst(4)
        guard text.hasPrefix("ORG-"), digits.count == 9, digits.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        self.rawValue = text
    }

    public init(number: Int64) {
        self.rawValue = "ORG-" + String(repeating: "0", count: max(0, 9 - String(number).count)) + String(number)
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = OrganisationID(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "not an organisation id like ORG-100000123"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// The "Access Request ID" users quote to the service desk: numeric, from 10000.
public struct AccessRequestID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: Int64
    public init(_ rawValue: Int64) { self.rawValue = rawValue }
    public var description: String { String(rawValue) }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// An account (a person). UUIDs in the database; opaque here.
public struct AccountID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String
    public init(_ rawValue: String) { self.rawValue = rawValue }
    public var description: String { rawValue }
}
