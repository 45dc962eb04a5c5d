import AccessStore
import ArgumentParser
import Foundation
import Logging

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Apply pending SQL migrations, or list them with --status.")

    @Flag(name: .long, help: "List applied, pending and changed migrations; apply nothing.")
    var status = false

    @OptionGroup var database: DatabaseOptions

    func run() async throws {
        let logger = try database.bootstrapLogging()
        let resolved: ResolvedDatabase
        let runner: MigrationRunner
        do {
            runner = MigrationRunner(migrations: try database.migrationSet(), logger: logger)
            resolved = try await database.resolveDatabase(logger: logger)
        } catch {
            exitWithMessage(error)
        }
        do {
            try await resolved.owner.makeClient(logger: logger, maximumConnections: 1, quiet: true).whileRunning { client in
                if status {
                    let rows = try await runner.status(client: client)
                    print(MigrationStatusTable.render(rows))
                } else {
                    let applied = try await runner.migrate(client: client)
                    print(
                        applied.isEmpty
                            ? "Nothing to apply: all \(runner.migrations.migrations.count) migrations are applied."
                            : "Applied \(applied.count) migration(s): \(applied.map { String(format: "%04d", $0) }.joined(separator: ", ")).")
                }
            }
        } catch {
            await resolved.stopEmbedded(logger: logger)
            exitWithMessage(error)
        }
        await resolved.stopEmbedded(logger: logger)
    }
}
