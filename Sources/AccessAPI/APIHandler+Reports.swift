import AccessDomain
import AccessOpenAPI
import AccessStore
import Foundation
import OpenAPIRuntime

extension APIHandler {
    /// `GET /v1/reports/{name}`: JSON by default, CSV when the client prefers `text/csv`.
    func getReport(_ input: Operations.GetReport.Input) async throws -> Operations.GetReport.Output {
        let actor = try RequestActor.required()
        let report = input.path.name
        let organisation = input.query.organisationId
        if let from = input.query.from, let to = input.query.to, from >= to {
            throw Problem.validation("from must be before to.", field: "from")
        }
        let limit = try Paging.limit(input.query.limit)
        let offset = try Paging.offset(input.query.cursor)
        // R13, Swift half (spor_report checks the same in SQL).
        let profile = try await sessions.profile(of: actor)
        try ApprovalPolicy.canRead(
            report, organisation: organisation, actor: Actor(id: profile.account, staffRoles: Set(profile.staffRoles)),
            superUserOf: Set(profile.assignments.filter { $0.role == .superUser }.compactMap(\.organisation))
        ).get()
        let page = try await reports.page(
            report, actor: actor, organisation: organisation, from: input.query.from, to: input.query.to,
            limit: limit + 1, offset: offset)
        let rows = Array(page.rows.prefix(limit))
        let next = page.rows.count > limit ? Paging.cursor(offset: offset + limit) : nil

        if Self.prefersCSV(input.headers.accept) {
            return .ok(.init(body: .csv(HTTPBody(ReportPage(columns: page.columns, rows: rows).csv()))))
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

    static func plain(_ value: ReportValue) -> (any Sendable)? {
        switch value {
        case .null: nil
        case .number(let number): value.integral.map { Int($0) } ?? number
        case .text(let text): text
        case .bool(let flag): flag
        case .list(let values): values.map(plain)
        }
    }
}
