import AccessDomain
import AccessStore
import ArgumentParser
import Foundation
import Logging

struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a reporting view (as the reporting role sees it).",
        discussion: "Reports: \(ReportName.allCases.map(\.rawValue).joined(separator: ", "))")

    @Argument(help: "The report: one of the views of the reporting schema.")
    var name: String

    @Option(name: .long, help: "table, csv or json. Default: table")
    var format: String = "table"

    @Option(name: .long, help: "Only this organisation (ORG-…), for the per-organisation reports.")
    var organisation: String?

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        guard ReportName(rawValue: name) != nil else {
            throw ValidationError("unknown report '\(name)'; reports: \(ReportName.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard ["table", "csv", "json"].contains(format) else { throw ValidationError("format must be table, csv or json") }
        if let organisation, OrganisationID(organisation) == nil {
            throw ValidationError("'\(organisation)' is not an organisation id like ORG-100000123")
        }
    }

    func run() async throws {
        let logger = try database.bootstrapLogging(defaultLevel: "warning")
        guard let report = ReportName(rawValue: name) else { throw ValidationError("unknown report '\(name)'") }
        let resolved: ResolvedDatabase
        do {
            resolved = try await database.resolveDatabase(logger: logger)
        } catch {
            exitWithMessage(error)
        }
        do {
            let output = try await resolved.owner.makeClient(logger: logger, maximumConnections: 1, quiet: true).whileRunning { client in
                let reports = Reports(client: client, logger: logger)
                let org = organisation.flatMap(OrganisationID.init)
                switch format {
                case "json": return try await reports.json(report, organisation: org) + "\n"
                case "csv": return try await reports.table(report, organisation: org).csv()
                default: return try await reports.table(report, organisation: org).text() + "\n"
                }
            }
            FileHandle.standardOutput.write(Data(output.utf8))
        } catch {
            await resolved.stopEmbedded(logger: logger)
            exitWithMessage(error)
        }
        await resolved.stopEmbedded(logger: logger)
    }
}
