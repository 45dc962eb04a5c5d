import Foundation

/// One page of a reporting view, whoever reads it: column names in view order and one row of cells per line.
///
/// Both readers (`Reports.page` for an account over the API, `Reports.table`/`typedPage` for analysts) receive the
/// same JSON shape from PostgreSQL, `{"columns": [...], "rows": [[...], ...]}`, and decode it here.
public struct ReportPage: Sendable, Equatable {
    public let columns: [String]
    public let rows: [[ReportValue]]

    public init(columns: [String], rows: [[ReportValue]]) {
        self.columns = columns
        self.rows = rows
    }

    /// Decodes `{"columns": [...], "rows": [[...]]}`; anything else is an empty page.
    init(json: String) throws {
        struct Shape: Decodable {
            let columns: [String]?
            let rows: [[ReportValue]]?
        }
        let shape = try JSONDecoder().decode(Shape.self, from: Data(json.utf8))
        self.init(columns: shape.columns ?? [], rows: shape.rows ?? [])
    }

    /// The cells as text (NULL as nil), as `csv()` and `text()` print them.
    public var cells: [[String?]] { rows.map { $0.map { $0 == .null ? nil : $0.csvText } } }

    /// RFC 4180 CSV: header row, CRLF line ends, fields quoted when they hold a comma, quote or line break. A text
    /// cell that a spreadsheet would read as a formula (starting with `=`, `+`, `-`, `@`, a tab or a carriage
    /// return: an OMS name `=HYPERLINK(...)`, say) is neutralised as OWASP advises: prefixed with `'` and quoted.
    /// Numbers are written as they are.
    public func csv() -> String {
        func field(_ value: String?, formulaSafe: Bool) -> String {
            guard var value else { return "" }
            var quote = value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
            if formulaSafe, let first = value.unicodeScalars.first, Self.formulaStarts.contains(first) {
                value = "'" + value
                quote = true
            }
            return quote ? "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : value
        }
        let header = columns.map { field($0, formulaSafe: true) }
        let body = rows.map { row in
            row.map { cell -> String in
                switch cell {
                case .null: ""
                case .number, .bool: field(cell.csvText, formulaSafe: false)
                case .text, .list: field(cell.csvText, formulaSafe: true)
                }
            }
        }
        return ([header] + body).map { $0.joined(separator: ",") + "\r\n" }.joined()
    }

    /// The first characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
    static let formulaStarts: Set<Unicode.Scalar> = ["=", "+", "-", "@", "\t", "\r"]

    /// An aligned text table for terminals.
    public func text() -> String {
        let all = [columns] + cells.map { $0.map { $0 ?? "" } }
        let widths = columns.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(columns), rule] + all.dropFirst().map(line)).joined(separator: "\n")
            + "\n(\(rows.count) row\(rows.count == 1 ? "" : "s"))"
    }

    /// A JSON array of objects, keys in view order.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        func encoded(_ value: some Encodable) throws -> String { String(decoding: try encoder.encode(value), as: UTF8.self) }
        let objects = try rows.map { row in
            "{" + (try zip(columns, row).map { try encoded($0) + ":" + encoded($1) }).joined(separator: ",") + "}"
        }
        return "[" + objects.joined(separator: ",") + "]"
    }
}

/// One cell of a report.
public enum ReportValue: Sendable, Equatable, Codable {
    case null
    case number(Double)
    case text(String)
    case bool(Bool)
    case list([ReportValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let flag = try? container.decode(Bool.self) {
            self = .bool(flag)
        } else if let number = try? container.decode(Double.self) {
            self = .number(number)
        } else if let text = try? container.decode(String.self) {
            self = .text(text)
        } else {
            self = .list(try container.decode([ReportValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .number(let value):
            if let integral = integral { try container.encode(integral) } else { try container.encode(value) }
        case .text(let value): try container.encode(value)
        case .bool(let value): try container.encode(value)
        case .list(let values): try container.encode(values)
        }
    }

    /// The number as an integer when it is one (counts), else nil.
    public var integral: Int64? {
        guard case .number(let value) = self, value == value.rounded(), abs(value) < 1e15 else { return nil }
        return Int64(value)
    }

    /// The value as CSV text: lists joined with "; ", null empty, integral numbers without ".0".
    public var csvText: String {
        switch self {
        case .null: return ""
        case .number(let value): return integral.map(String.init) ?? String(value)
        case .text(let value): return value
        case .bool(let value): return value ? "true" : "false"
        case .list(let values): return values.map(\.csvText).joined(separator: "; ")
        }
    }
}
