import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import Testing

@Suite("Deployment settings: read and changed by the owner, checked by the database")
struct DeploymentSettingsTests {
    @Test("Every setting is listed with its default; a change is stored as PostgreSQL parses it and used by the rules")
    func listAndChange() async throws {
        try await Fixture.with { f in
            let settings = DeploymentSettings(ownerClient: f.owner, logger: TestDatabase.logger)
            let all = Dictionary(uniqueKeysWithValues: try await settings.all().map { ($0.setting, $0.value) })
            #expect(Set(all.keys) == Set(DeploymentSetting.allCases))
            #expect(all[.reviewIntervalMonths] == "12" && all[.grantNoticeDays] == "{14,3}" && all[.reviewRevokesUndecided] == "false")
            #expect(try await settings.set(.reviewIntervalMonths, to: "6") == "6")
            #expect(try await settings.set(.reviewPeriod, to: "45 days") == "45 days")
            #expect(try await settings.set(.grantNoticeDays, to: "{30,7,1}") == "{30,7,1}")
            #expect(try await settings.set(.reviewRevokesUndecided, to: "on") == "true")
            // The rules read the new value: a request now lives as long as the setting says (R18).
            try await settings.set(.requestLifetime, to: "10 days")
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            let member = try await f.user("member")
            let request = try await f.requests.submit(actor: member, role: .industryUser, organisation: org, justification: nil).request
            let lifetime = try #require(request.expiresAt).timeIntervalSince(request.createdAt)
            #expect(abs(lifetime - 10 * 86_400) < 1)
        }
    }

    @Test("A value of the wrong type, or outside the column's constraint, is refused and changes nothing")
    func invalidValues() async throws {
        try await Fixture.with { f in
            let settings = DeploymentSettings(ownerClient: f.owner, logger: TestDatabase.logger)
            for (setting, value) in [
                (DeploymentSetting.reviewIntervalMonths, "a year"), (.reviewIntervalMonths, "0"), (.reviewIntervalMonths, "61"),
                (.reviewPeriod, "-1 day"), (.requestLifetime, "forever"), (.grantNoticeDays, "{14,-3}"), (.reviewRevokesUndecided, "maybe"),
                (.jobClockOffset, "-2 days"),
            ] {
                await #expect(throws: InvalidSetting.self, "\(setting) = \(value)") { try await settings.set(setting, to: value) }
            }
            let all = Dictionary(uniqueKeysWithValues: try await settings.all().map { ($0.setting, $0.value) })
            #expect(all[.reviewIntervalMonths] == "12" && all[.grantNoticeDays] == "{14,3}" && all[.jobClockOffset] == "00:00:00")
        }
    }
}
