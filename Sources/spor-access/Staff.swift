import AccessDomain
import AccessStore
import ArgumentParser
import Foundation
import Logging

struct Staff: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Administer EMA staff accounts.", subcommands: [Add.self])

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an active staff account (e-mail verified, security questions waived), or add the role to an existing account.")

        @Option(name: .long, help: "E-mail address of the staff member.")
        var email: String

        @Option(name: .long, help: "Display name.")
        var name: String

        @Option(name: .long, help: "ema-service-desk, ema-data-steward or ema-admin.")
        var role: String

        @Flag(name: .customLong("password-stdin"), help: "Read the password (at least 12 characters) from standard input.")
        var passwordFromStandardInput = false

        @OptionGroup var database: DatabaseOptions

        func validate() throws {
            guard StaffRole(rawValue: role) != nil else {
                throw ValidationError("role must be one of \(StaffRole.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard email.contains("@"), !name.trimmingCharacters(in: .whitespaces).isEmpty else {
                throw ValidationError("give an e-mail address and a name")
            }
        }

        func run() async throws {
            let logger = try database.bootstrapLogging(defaultLevel: "warning")
            guard let staffRole = StaffRole(rawValue: role) else { throw ValidationError("unknown role \(role)") }
            let password = passwordFromStandardInput ? readLine(strippingNewline: true) : nil
            if passwordFromStandardInput {
                guard let password, password.count >= 12 else {
                    throw ValidationError("the password read from standard input must have at least 12 characters")
                }
            }
            let resolved: ResolvedDatabase
            do { resolved = try await database.resolveDatabase(logger: logger) } catch { exitWithMessage(error) }
            do {
                let account = try await resolved.owner.makeClient(logger: logger, maximumConnections: 1, quiet: true).whileRunning { client in
                    try await StaffAdministration(ownerClient: client, logger: logger)
                        .addStaff(email: email, displayName: name, role: staffRole, password: password)
                }
                print("\(email) (\(account)) holds \(staffRole.rawValue).")
            } catch {
                await resolved.stopEmbedded(logger: logger)
                exitWithMessage(error)
            }
            await resolved.stopEmbedded(logger: logger)
        }
    }
}

struct Organisations: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Administer the OMS dictionary.", subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Load organisations from a CSV file with a header row: name,country,city and optionally id (ORG-…).")

        @Argument(help: "The CSV file.")
        var file: String

        @OptionGroup var database: DatabaseOptions

        func run() async throws {
            let logger = try database.bootstrapLogging(defaultLevel: "warning")
            let rows: [StaffAdministration.OrganisationRow]
            do {
                rows = try OrganisationCSV.parse(String(contentsOfFile: file, encoding: .utf8))
            } catch {
                exitWithMessage(error)
            }
            let resolved: ResolvedDatabase
            do { resolved = try await database.resolveDatabase(logger: logger) } catch { exitWithMessage(error) }
            do {
                let ids = try await resolved.owner.makeClient(logger: logger, maximumConnections: 1, quiet: true).whileRunning { client in
                    try await StaffAdministration(ownerClient: client, logger: logger).importOrganisations(rows)
                }
                print("Imported \(ids.count) organisation(s)" + (ids.first.map { first in ": \(first)…\(ids.last ?? first)" } ?? "") + ".")
            } catch {
                await resolved.stopEmbedded(logger: logger)
                exitWithMessage(error)
            }
            await resolved.stopEmbedded(logger: logger)
        }
    }
}

struct Settings: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the deployment's settings, or change one (as the owner).",
        discussion: """
            Settings: \(DeploymentSetting.allCases.map(\.rawValue).joined(separator: ", ")).
            Values are PostgreSQL's: intervals like '30 days', arrays like '{14,3}', true or false.
            Examples: spor-access settings · spor-access settings review_interval_months 6
            """)

    @Argument(help: "The setting to change (leave out to list them all).")
    var name: String?

    @Argument(help: "Its new value.")
    var value: String?

    @OptionGroup var database: DatabaseOptions

    func validate() throws {
        if let name, DeploymentSetting(rawValue: name) == nil {
            throw ValidationError(
                "unknown setting '\(name)'; settings: \(DeploymentSetting.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if name != nil, value == nil { throw ValidationError("give the new value after the setting's name") }
    }

    func run() async throws {
        let logger = try database.bootstrapLogging(defaultLevel: "warning")
        let resolved: ResolvedDatabase
        let runner: MigrationRunner
        do {
            runner = MigrationRunner(migrations: try database.migrationSet(), logger: logger)
            resolved = try await database.resolveDatabase(logger: logger)
        } catch {
            exitWithMessage(error)
        }
        do {
            let output = try await resolved.owner.makeClient(logger: logger, maximumConnections: 1, quiet: true).whileRunning { client in
                // The settings are the schema's: a fresh database gets its migrations first, as `serve` would apply them.
                _ = try await runner.migrate(client: client)
                let settings = DeploymentSettings(ownerClient: client, logger: logger)
                if let name, let value, let setting = DeploymentSetting(rawValue: name) {
                    let stored = try await settings.set(setting, to: value)
                    logger.notice("setting changed", metadata: ["setting": "\(setting.rawValue)", "value": "\(stored)"])
                    return "\(setting.rawValue) = \(stored)\n"
                }
                return try await settings.all().map { "\($0.setting.rawValue) = \($0.value)    -- \($0.setting.meaning)" }
                    .joined(separator: "\n") + "\n"
            }
            FileHandle.standardOutput.write(Data(output.utf8))
        } catch {
            await resolved.stopEmbedded(logger: logger)
            exitWithMessage(error)
        }
        await resolved.stopEmbedded(logger: logger)
    }
}
