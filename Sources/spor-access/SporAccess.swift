import ArgumentParser

struct SporAccess: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spor-access",
        abstract: "SPOR Access: access administration for the EMA SPOR industry roles.",
        subcommands: [Serve.self, Migrate.self, Report.self, Staff.self, Organisations.self, Settings.self]
    )
}
