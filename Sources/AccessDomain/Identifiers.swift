import Foundation

/// A value from outside (a path, a query or a body) that is not a valid domain value. It travels as the
/// `underlyingError` of a `DecodingError`, so the HTTP layer can answer 422 naming the field and the rule.
public struct InvalidDomainValue: Error, Sendable, Equatable, CustomStringConvertible {
    /// The text that was given.
    public let text: String
    /// What a valid value looks like, as a person would say it ("look like ORG-100000123").
    public let expectation: String

    public init(text: String, expectation: String) {
        self.text = text
        self.expectation = expectation
    }

    public var description: String { "must \(expectation)" }

    /// The `DecodingError` a domain type's `init(from:)` throws for `text`.
    static func decodingError(_ text: String, _ expectation: String, at codingPath: [any CodingKey]) -> DecodingError {
        .dataCorrupted(
            .init(
                codingPath: codingPath, debugDescription: "must \(expectation)",
                underlyingError: InvalidDomainValue(text: text, expectation: expectation)))
    }
}

/// An organisation of the OMS dictionary: `ORG-` and nine digits, e.g. `ORG-100000123` (R1).
public struct OrganisationID: Hashable, Sendable, Codable, CustomStringConvertible, Comparable {
    public let rawValue: String
    static let expectation = "look like ORG-100000123"

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
            throw InvalidDomainValue.decodingError(text, Self.expectation, at: decoder.codingPath)
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

/// An account (a person): a UUID, written in lower case as PostgreSQL prints it.
public struct AccountID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: UUID
    static let expectation = "be an account id (a UUID)"

    public init(_ rawValue: UUID) { self.rawValue = rawValue }

    /// Accepts a UUID in any letter case; anything else is nil.
    public init?(_ text: String) {
        guard text.count == 36, let uuid = UUID(uuidString: text) else { return nil }
        self.rawValue = uuid
    }

    /// A new random account id.
    public static func random() -> AccountID { AccountID(UUID()) }

    /// The lower-case text form (`3f2c…`), as the database and the API show it.
    public var description: String { rawValue.uuidString.lowercased() }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = AccountID(text) else {
            throw InvalidDomainValue.decodingError(text, Self.expectation, at: decoder.codingPath)
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
