import AccessDomain
import Foundation
import Logging
import PostgresNIO

extension ReportName {
    /// Stable row order of each report.
    var orderBy: String {
        switch self {
        case .organisationsWithoutSuperUser: "organisation_id, requested_at NULLS LAST, access_request_id"
        case .organisationsWithSingleSuperUser: "organisation_id"
        case .pendingAccessRequests: "organisation_id, role, approver_kind, age_bucket"
        case .serviceDeskSLA: "opened_at, ticket_id"
        case .roleHolders: "organisation_id NULLS FIRST, role"
        case .approvalActivity: "day, organisation_id, approver_email, outcome"
        case .requestFunnel: "month, role"
        case .omsChangeRequests: "status"
        }
    }
}

/// A report's rows: column names in view order, values as text (NULL as nil).
public struct ReportTable: Sendable, Equatable {
    public let columns: [String]
    public let rows: [[String?]]

    public init(columns: [String], rows: [[String?]]) {
        self.columns = columns
        self.rows = rows
    }

    /// RFC 4180 CSV: header row, CRLF line ends, fields quoted when they hold a comma, quote or line break.
    public func csv() -> String {
        func field(_ value: String?) -> String {
            guard let value else { return "" }
            if value.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
                return "\"" + value.replacingOccurrences(of: "\"", with: "\"\"") + "\""
            }
            return value
        }
        return ([columns.map(field)] + rows.map { $0.map(field) }).map { $0.joined(separator: ",") + "\r\n" }.joined()
    }

    /// An aligned text table for terminals.
    public func text() -> String {
        let cells = [columns] + rows.map { $0.map { $0 ?? "" } }
        let widths = columns.indices.map { column in cells.map { $0[column].count }.max() ?? 0 }
        func line(_ row: [String]) -> String {
            row.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces)
        }
        let rule = widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")
        return ([line(columns), rule] + rows.map { line($0.map { $0 ?? "" }) }).joined(separator: "\n")
            + "\n(\(rows.count) row\(rows.count == 1 ? "" : "s"))"
    }
}

/// Reads reports. Each read is one transaction acting as `spor_reporting`, so it sees exactly what analysts see.
public struct Reports: Sendable {
    let database: Database
    var logger: Logger { database.logger }

    /// `client` may be any login that can switch to the reporting role (the owner, or an analyst's own).
    public init(client: PostgresClient, logger: Logger) {
        self.database = Database(client: client, logger: logger, role: DatabaseRole.reporting)
    }

    /// The rows of a report, optionally for one organisation; `limit`/`offset` page the long ones.
    public func table(
        _ report: ReportName, organisation: OrganisationID? = nil, limit: Int = 10_000, offset: Int = 0
    ) async throws -> ReportTable {
        try await database.transaction { connection in
            let columns = try await connection.all(
                """
                SELECT column_name::text FROM information_schema.columns
                WHERE table_schema = 'reporting' AND table_name = \(report.rawValue) ORDER BY ordinal_position
                """, as: String.self, logger: logger)
            // Identifiers come from the catalogue and the enum, never from input; values are bound.
            let cells = columns.map { "\"\($0)\"::text" }.joined(separator: ", ")
            let query = Self.query(
                select: "to_json(ARRAY[\(cells)])::text", report: report, organisation: organisation, limit: limit, offset: offset)
            let rows = try await connection.all(query, as: String.self, logger: logger).map { text -> [String?] in
                let values = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [Any] ?? []
                return values.map { $0 as? String }
            }
            return ReportTable(columns: columns, rows: rows)
        }
    }

    /// `SELECT <select> FROM reporting.<view> [WHERE organisation_id = $1] ORDER BY … LIMIT … OFFSET …`.
    static func query(select: String, report: ReportName, organisation: OrganisationID?, limit: Int, offset: Int) -> PostgresQuery {
        var bindings = PostgresBindings()
        var sql = "SELECT \(select) FROM reporting.\(report.rawValue) v"
        if let organisation, report.isPerOrganisation {
            bindings.append(organisation.rawValue)
            sql += " WHERE organisation_id = $1"
        }
        bindings.append(limit)
        bindings.append(offset)
        sql += " ORDER BY \(report.orderBy) LIMIT $\(bindings.count - 1) OFFSET $\(bindings.count)"
        return PostgresQuery(unsafeSQL: sql, binds: bindings)
    }

    /// The rows of a report as a JSON array of objects (columns in view order, numbers as numbers).
    public func json(_ report: ReportName, organisation: OrganisationID? = nil, limit: Int = 10_000, offset: Int = 0) async throws -> String {
        try await database.transaction { connection in
            let inner = Self.query(select: "*", report: report, organisation: organisation, limit: limit, offset: offset)
            let query = PostgresQuery(
                unsafeSQL: "SELECT coalesce(json_agg(v ORDER BY \(report.orderBy)), '[]'::json)::text FROM (\(inner.sql)) v",
                binds: inner.binds)
            return try await connection.first(query, as: String.self, logger: logger) ?? "[]"
        }
    }
}
