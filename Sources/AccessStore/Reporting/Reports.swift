import AccessDomain
import Foundation
import Logging
import PostgresNIO

extension ReportName {
    /// Stable row order of each report (the same as `spor_report`'s).
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
        case .reminderHistory: "sent_at, kind, subject_type, subject_id, days_before NULLS FIRST"
        case .roleGrants: "organisation_id NULLS FIRST, assignment_id"
        case .accessReviewCompletion: "organisation_id, opened_at, review_id"
        case .accessReviewItems: "organisation_id, review_id, item_id"
        }
    }
}

/// The one reader of the reporting views. Every read is one statement returning a `ReportPage`'s JSON:
///
/// - for an account (the API): `spor_report`, which applies R13 in SQL (staff: everything; super users: the
///   per-organisation reports of their own organisations; anyone else: not found);
/// - for analysts (the `report` command): the view itself, read as `spor_reporting`, so it shows exactly what an
///   analyst's own SQL would, in PostgreSQL's text form (`table`) or typed (`typedPage`).
public struct Reports: Sendable {
    let database: Database
    var logger: Logger { database.logger }

    /// Reads for accounts, through `database` (the application role).
    public init(database: Database) { self.database = database }

    /// Reads as analysts: `client` may be any login that can switch to the reporting role (the owner, or an analyst's own).
    public init(client: PostgresClient, logger: Logger) {
        self.database = Database(client: client, logger: logger, role: DatabaseRole.reporting)
    }

    /// A page of `report` as the signed-in account may see it (R13), filtered by organisation and time.
    public func page(
        _ report: ReportName, actor caller: any Caller, organisation: OrganisationID?, from: Date?, to: Date?, limit: Int, offset: Int
    ) async throws -> ReportPage {
        let json = try await database.transaction(as: caller) { connection, _ in
            try await connection.first(
                """
                SELECT spor_report(\(report.rawValue), \(organisation?.rawValue), \(from), \(to), \(Int32(clamping: limit)),
                                   \(Int32(clamping: offset)))::text
                """, as: String.self, logger: logger) ?? "{}"
        }
        return try ReportPage(json: json)
    }

    /// The rows of a report as analysts see them in psql (every cell as PostgreSQL's text, NULL as null),
    /// optionally for one organisation; `limit`/`offset` page the long ones.
    public func table(_ report: ReportName, organisation: OrganisationID? = nil, limit: Int = 10_000, offset: Int = 0) async throws
        -> ReportPage
    {
        try await analystPage(report, organisation: organisation, limit: limit, offset: offset, asText: true)
    }

    /// The same rows with JSON types (numbers as numbers, arrays as arrays).
    public func typedPage(_ report: ReportName, organisation: OrganisationID? = nil, limit: Int = 10_000, offset: Int = 0) async throws
        -> ReportPage
    {
        try await analystPage(report, organisation: organisation, limit: limit, offset: offset, asText: false)
    }

    /// The typed rows as a JSON array of objects, keys in view order.
    public func json(_ report: ReportName, organisation: OrganisationID? = nil, limit: Int = 10_000, offset: Int = 0) async throws -> String {
        try await typedPage(report, organisation: organisation, limit: limit, offset: offset).json()
    }

    private func analystPage(_ report: ReportName, organisation: OrganisationID?, limit: Int, offset: Int, asText: Bool) async throws
        -> ReportPage
    {
        try await database.transaction { connection in
            let columns = try await connection.all(
                """
                SELECT column_name::text FROM information_schema.columns
                WHERE table_schema = 'reporting' AND table_name = \(report.rawValue) ORDER BY ordinal_position
                """, as: String.self, logger: logger)
            // Identifiers come from the catalogue and the enum, never from input; values are bound.
            let cells = columns.map { "v.\"\($0)\"" + (asText ? "::text" : "") }.joined(separator: ", ")
            var bindings = PostgresBindings()
            var filter = ""
            if let organisation, report.isPerOrganisation {
                bindings.append(organisation.rawValue)
                filter = "WHERE organisation_id = $1"
            }
            bindings.append(limit)
            bindings.append(offset)
            bindings.append(columns)
            let n = bindings.count
            let sql = """
                SELECT json_build_object('columns', to_json($\(n)::text[]),
                                         'rows', coalesce(json_agg(json_build_array(\(cells)) ORDER BY \(report.orderBy)), '[]'::json))::text
                FROM (SELECT * FROM reporting.\(report.rawValue) v \(filter) ORDER BY \(report.orderBy) LIMIT $\(n - 2) OFFSET $\(n - 1)) v
                """
            let json = try await connection.first(PostgresQuery(unsafeSQL: sql, binds: bindings), as: String.self, logger: logger) ?? "{}"
            return try ReportPage(json: json)
        }
    }
}
