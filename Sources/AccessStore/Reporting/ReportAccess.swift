import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// Reports for the HTTP API: read through `spor_report`, which applies R13 in SQL (staff: everything; super users:
/// per-organisation reports of their own organisations; anyone else: not found).
public struct ReportAccess: Sendable {
    public let database: Database
    public init(database: Database) { self.database = database }

    /// Columns in view order and rows of JSON values (numbers stay numbers).
    public struct Page: Sendable {
        public let columns: [String]
        public let rows: [[ReportValue]]
    }

    public func page(
        _ report: ReportName, actor caller: any Caller, organisation: OrganisationID?, from: Date?, to: Date?, limit: Int, offset: Int
    ) async throws -> Page {
        let json = try await database.transaction(as: caller) { connection, actor in
            try await connection.first(
                """
                SELECT spor_report(\(report.rawValue), \(organisation?.rawValue), \(from), \(to), \(Int32(clamping: limit)),
                                   \(Int32(clamping: offset)))::text
                """, as: String.self, logger: database.logger) ?? "{}"
        }
        let object = (try? JSONSerialization.jsonObject(with: Data(json.utf8))) as? [String: Any] ?? [:]
        let columns = object["columns"] as? [String] ?? []
        let rows = (object["rows"] as? [[Any]] ?? []).map { $0.map(ReportValue.init) }
        return Page(columns: columns, rows: rows)
    }
}

/// One cell of a report.
public enum ReportValue: Sendable, Equatable {
    case null
    case number(Double)
    case text(String)
    case bool(Bool)
    case list([ReportValue])

    init(_ any: Any) {
        switch any {
        case let value as Int: self = .number(Double(value))
        case let value as Double: self = .number(value)
        case let value as Bool: self = .bool(value)
        case let value as NSNumber: self = .number(value.doubleValue)
        case let value as String: self = .text(value)
        case let value as [Any]: self = .list(value.map(ReportValue.init))
        default: self = .null
        }
    }

    /// The value as CSV text: lists joined with "; ", null empty, integral numbers without ".0".
    public var csvText: String {
        switch self {
        case .null: return ""
        case .number(let value): return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
        case .text(let value): return value
        case .bool(let value): return value ? "true" : "false"
        case .list(let values): return values.map(\.csvText).joined(separator: "; ")
        }
    }
}
