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

@Suite("Deployment settings: every change is in the audit trail (R15), written by the database")
struct DeploymentSettingsAuditTests {
    /// The settings events, oldest first: before and after as stored JSON text, and the actor (empty: nobody).
    static func settingsEvents(_ f: Fixture) async throws -> [String] {
        try await f.ownerQuery(
            """
            SELECT concat_ws(' | ', action, subject_type || '/' || subject_id, coalesce(organisation_id, '-'),
                             coalesce(actor_id::text, '-'), before::text, after::text)
            FROM audit_events WHERE subject_type = 'settings' ORDER BY id
            """)
    }

    @Test("A change through the settings command is one event naming the changed column, before and after")
    func changeThroughTheCommand() async throws {
        try await Fixture.with { f in
            let settings = DeploymentSettings(ownerClient: f.owner, logger: TestDatabase.logger)
            #expect(try await Self.settingsEvents(f).isEmpty)
            try await settings.set(.requestLifetime, to: "10 days")
            try await settings.set(.reviewRevokesUndecided, to: "on")
            #expect(
                try await Self.settingsEvents(f) == [
                    #"settings.changed | settings/deployment | - | - | {"request_lifetime": "30 days"} | {"request_lifetime": "10 days"}"#,
                    #"settings.changed | settings/deployment | - | - | {"review_revokes_undecided": "false"} | {"review_revokes_undecided": "true"}"#,
                ])
            // Setting a value it already has changes nothing, and says nothing.
            try await settings.set(.requestLifetime, to: "10 days")
            #expect(try await Self.settingsEvents(f).count == 2)
        }
    }

    @Test("SQL half: an UPDATE of the row going around the command is audited too, naming only what changed")
    func directUpdate() async throws {
        try await Fixture.with { f in
            _ = try await f.ownerQuery(
                "UPDATE settings SET review_interval_months = 6, request_lifetime = request_lifetime, grant_notice_days = '{30,7}' RETURNING 'ok'")
            _ = try await f.ownerQuery("UPDATE settings SET review_interval_months = 6 RETURNING 'ok'")
            #expect(
                try await Self.settingsEvents(f) == [
                    #"settings.changed | settings/deployment | - | - | {"grant_notice_days": "[14, 3]", "review_interval_months": "12"} | {"grant_notice_days": "[30, 7]", "review_interval_months": "6"}"#
                ])
        }
    }

    @Test("Attack: the application role, even for an administrator, can neither change the settings nor write a settings event")
    func applicationRoleRefused() async throws {
        try await Fixture.with { f in
            let admin = try await f.staff(.admin)
            await #expect(throws: (any Error).self) {
                try await f.asApplication(actor: admin) { connection in
                    try await connection.query("UPDATE settings SET request_lifetime = '1 second'", logger: TestDatabase.logger)
                }
            }
            let forged = await #expect(throws: (any Error).self) {
                try await f.asApplication(actor: admin) { connection in
                    try await connection.query(
                        """
                        INSERT INTO audit_events (actor_id, action, subject_type, subject_id, before, after)
                        VALUES (\(admin.id.rawValue), 'settings.changed', 'settings', 'deployment', NULL, '{"request_lifetime": "1 second"}')
                        """, logger: TestDatabase.logger)
                }
            }
            // Refused by the policy (row-level security), not by the subject check: 'settings' is a subject the owner writes.
            #expect(String(reflecting: try #require(forged)).contains("row-level security"))
            // Its own events about other subjects are still accepted (the policy only gained the settings condition).
            try await f.asApplication(actor: admin) { connection in
                try await connection.query(
                    """
                    INSERT INTO audit_events (actor_id, action, subject_type, subject_id)
                    VALUES (\(admin.id.rawValue), 'account.security-questions-set', 'account', \(admin.id.description))
                    """, logger: TestDatabase.logger)
            }
            #expect(try await Self.settingsEvents(f).isEmpty)
            #expect(try await f.ownerQuery("SELECT request_lifetime::text FROM settings") == ["30 days"])
        }
    }
}
