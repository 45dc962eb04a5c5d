import AccessDomain
import AccessStore
import Foundation
import OpenAPIRuntime

extension APIHandler {
    /// `GET /v1/reports/{name}`: JSON by default, CSV when the client prefers `text/csv`.
    func getReport(_ input: Operations.GetReport.Input) async throws -> Operations.GetReport.Output {
        let actor = try RequestActor.required()
        guard let report = ReportName(rawValue: input.path.name.rawValue) else { throw Problem.notFound("There is no such report.") }
        let organisation = try input.query.organisationId.map { try Validate.organisation($0, field: "organisationId") }
        if let from = input.query.from, let to = input.query.to, from >= to {
            throw Problem.validation("from must be before to.", field: "from")
        }
        let limit = try Paging.limit(input.query.limit)
        let offset = try Paging.offset(input.query.cursor)
        // R13, Swift half (spor_report checks the same in SQL): staff read everything; a super user only the
        // per-organisation reports of an organisation they hold the super-user role in; anyone else: not found.
        let profile = try await sessions.profile(of: actor)
        if profile.staffRoles.isEmpty {
            let superUserHere =
                organisation.map { org in
                    profile.assignments.contains { $0.role == .superUser && $0.organisation == org }
                } ?? false
            guard report.isPerOrganisation, superUserHere else {
                throw Refusal(.notFound, .r13, "There is no report \(report.rawValue) for you here.")
            }
        }
        let page = try await reports.page(
            report, actor: actor, organisation: organisation, from: input.query.from, to: input.query.to,
            limit: limit + 1, offset: offset)
        let rows = Array(page.rows.prefix(limit))
        let next = page.rows.count > limit ? Paging.cursor(offset: offset + limit) : nil

        if Self.prefersCSV(input.headers.accept) {
            return .ok(.init(body: .csv(HTTPBody(Self.csv(columns: page.columns, rows: rows)))))
        }
        let items = try rows.map { row in
            Components.Schemas.ReportPage.ItemsPayloadPayload(
                additionalProperties: try OpenAPIObjectContainer(
                    unvalidatedValue: Dictionary(uniqueKeysWithValues: zip(page.columns, row.map(Self.plain)))))
        }
        return .ok(.init(body: .json(.init(report: report.rawValue, columns: page.columns, items: items, nextCursor: next))))
    }

    static func prefersCSV(_ accept: [AcceptHeaderContentType<Operations.GetReport.AcceptableContentType>]) -> Bool {
        let sorted = accept.sortedByQuality()
        guard let first = sorted.first else { return false }
        if case .csv = first.contentType { return true }
        return false
    }

    /// RFC 4180: header row, CRLF, fields quoted when they hold a comma, quote or line break.
    static func csv(columns: [String], rows: [[ReportValue]]) -> String {
        func field(_ text: String) -> String {
            text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" })
                ? "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : text
        }
        return ([columns.map(field)] + rows.map { $0.map { field($0.csvText) } })
            .map { $0.joined(separator: ",") + "\r\n" }.joined()
    }

    static func plain(_ value: ReportValue) -> (any Sendable)? {
        switch value {
        case .null: nil
        case .number(let number): number == number.rounded() && abs(number) < 1e15 ? Int(number) : number
        case .text(let text): text
        case .bool(let flag): flag
        case .list(let values): values.map(plain)
        }
    }
}
