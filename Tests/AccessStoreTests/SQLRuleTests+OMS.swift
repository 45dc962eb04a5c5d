import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension SQLRuleTests {
    @Suite("R17: OMS change requests and organisations")
    struct OMS {
        @Test("R17: OMS change requests need an effective SPOR role")
        func omsChangeNeedsEffectiveRole() async throws {
            try await Fixture.with { f in
                let user = try await f.user()
                let refused = await attempt(f, as: user) { conn in
                    try await conn.query(
                        "INSERT INTO oms_change_requests (requester_id, name, country, city) VALUES (\(user.pgUUID), 'Newco', 'BE', 'Ghent')",
                        logger: log)
                }
                #expect(refused == Answer("no-effective-role", "R17"))
                #expect(try await f.ownerValue("SELECT count(*)::text FROM oms_change_requests") == "0")
            }
        }

        @Test("R17: only a data steward decides an OMS change request")
        func omsDecidedByDataSteward() async throws {
            try await Fixture.with { f in
                let user = try await f.user()
                _ = try await f.requests.submit(actor: user, role: .unaffiliatedUser, organisation: nil, justification: nil)
                let change = try await f.oms.file(
                    actor: user, name: "Newco Biotech", country: "BE", city: "Ghent", address: nil,
                    justification: nil, documents: [Upload(fileName: "register.pdf", contentType: .pdf, bytes: Fixture.pdf)])
                let id = change.id
                let desk = try await f.staff(.serviceDesk)
                let steward = try await f.staff(.dataSteward)
                // Not a data steward: row-level security hides the row from UPDATE, nothing changes.
                for actor in [user, desk] {
                    let updated = Collected<String>()
                    let outcome = await attempt(f, as: actor) { conn in
                        for row in try await conn.texts(
                            """
                            UPDATE oms_change_requests SET status = 'rejected', decided_by = \(actor.pgUUID), decision_reason = 'no'
                            WHERE id = \(id) RETURNING id::text
                            """)
                        { updated.append(row) }
                    }
                    #expect(outcome == nil)
                    #expect(updated.values.isEmpty)
                }
                // A data steward deciding in somebody else's name reaches the trigger.
                let spoofed = await attempt(f, as: steward) { conn in
                    try await conn.query(
                        """
                        UPDATE oms_change_requests SET status = 'rejected', decided_by = \(desk.pgUUID), decision_reason = 'no'
                        WHERE id = \(id)
                        """, logger: log)
                }
                #expect(spoofed == Answer("not-authorised", "R17"))
                #expect(try await f.ownerValue("SELECT status FROM oms_change_requests WHERE id = \(id)") == "pending")
                // Control: the steward's own rejection commits (with audit and notification).
                let rejected = await attempt(f, as: steward) { conn in
                    try await conn.query(
                        """
                        UPDATE oms_change_requests SET status = 'rejected', decided_by = \(steward.pgUUID), decision_reason = 'duplicate of ORG-100000001'
                        WHERE id = \(id)
                        """, logger: log)
                    try await conn.audit(
                        actor: steward, organisation: nil, action: "oms-change-request.rejected",
                        subjectType: "oms_change_request", subjectID: String(id))
                    try await conn.notify(template: "oms-change-request-decided", subjectType: "oms_change_request", subjectID: String(id))
                }
                #expect(rejected == nil)
                #expect(try await f.ownerValue("SELECT status FROM oms_change_requests WHERE id = \(id)") == "rejected")
            }
        }

        @Test("R17: only a data steward adds an organisation to OMS (row-level security)")
        func organisationsByDataSteward() async throws {
            try await Fixture.with { f in
                let user = try await f.user()
                let desk = try await f.staff(.serviceDesk)
                let steward = try await f.staff(.dataSteward)
                @Sendable func add(as actor: TestAccount) async -> Answer? {
                    await attempt(f, as: actor) { conn in
                        let id = try await conn.text(
                            "INSERT INTO organisations (name, country, city) VALUES ('Newco Biotech', 'BE', 'Ghent') RETURNING id")
                        try await conn.audit(
                            actor: actor, organisation: OrganisationID(id), action: "organisation.created",
                            subjectType: "organisation", subjectID: id)
                    }
                }
                #expect(await add(as: user) == .sqlState("42501"))
                #expect(await add(as: desk) == .sqlState("42501"))
                #expect(try await f.ownerValue("SELECT count(*)::text FROM organisations") == "0")
                #expect(await add(as: steward) == nil)
                #expect(try await f.ownerValue("SELECT count(*)::text FROM organisations") == "1")
            }
        }

        @Test("R17: documents required, an approval creates a new organisation with the next id, no self-approval (in SQL)")
        func omsRulesInSQL() async throws {
            try await Fixture.with { f in
                let existing = try await f.organisation("Existing Pharma")
                let steward = try await f.staff(.dataSteward)
                let user = try await f.user()
                _ = try await f.requests.submit(actor: user, role: .unaffiliatedUser, organisation: nil, justification: nil)
                // No document: refused at commit.
                let bare = await attempt(f, as: user) { conn in
                    let id = try await conn.text(
                        "INSERT INTO oms_change_requests (requester_id, name, country, city) VALUES (\(user.pgUUID), 'Newco', 'BE', 'Ghent') RETURNING id::text"
                    )
                    try await conn.audit(
                        actor: user, organisation: nil, action: "oms-change-request.filed", subjectType: "oms_change_request", subjectID: id)
                }
                #expect(bare == Answer("validation-failed", "R17"))
                let change = try await f.oms.file(
                    actor: user, name: "Newco Biotech", country: "BE", city: "Ghent", address: nil, justification: nil,
                    documents: [Upload(fileName: "register.pdf", contentType: .pdf, bytes: Fixture.pdf)])
                @Sendable func approve(onto organisation: String, create: Bool) async -> Answer? {
                    await attempt(f, as: steward) { conn in
                        var target = organisation
                        if create {
                            target = try await conn.text(
                                "INSERT INTO organisations (id, name, country, city) VALUES (\(organisation), 'Newco Biotech', 'BE', 'Ghent') RETURNING id"
                            )
                            try await conn.audit(
                                actor: steward, organisation: OrganisationID(target), action: "organisation.created", subjectType: "organisation",
                                subjectID: target)
                        }
                        try await conn.query(
                            """
                            UPDATE oms_change_requests SET status = 'approved', decided_by = \(steward.pgUUID), organisation_id = \(target)
                            WHERE id = \(change.id)
                            """, logger: log)
                        try await conn.audit(
                            actor: steward, organisation: OrganisationID(target), action: "oms-change-request.approved",
                            subjectType: "oms_change_request", subjectID: String(change.id))
                        try await conn.notify(
                            template: "oms-change-request-decided", subjectType: "oms_change_request", subjectID: String(change.id))
                    }
                }
                // Onto an organisation that exists already: refused.
                #expect(await approve(onto: existing.rawValue, create: false) == Answer("validation-failed", "R17"))
                // A chosen id is not kept: the new organisation gets the next ORG id, and the approval commits.
                let chosen = await approve(onto: "ORG-999999999", create: true)
                #expect(chosen == nil, "\(chosen.map(\.description) ?? "")")
                let created = try await f.ownerValue("SELECT organisation_id FROM oms_change_requests WHERE id = \(change.id)")
                #expect(created != "ORG-999999999" && created > existing.rawValue)
                #expect(try await f.ownerValue("SELECT count(*)::text FROM organisations WHERE id = 'ORG-999999999'") == "0")

                // A steward's own change request: another steward decides it.
                _ = try await f.requests.submit(actor: steward, role: .unaffiliatedUser, organisation: nil, justification: nil)
                let own = try await f.oms.file(
                    actor: steward, name: "Stewco", country: "NL", city: "Delft", address: nil, justification: nil,
                    documents: [Upload(fileName: "register.pdf", contentType: .pdf, bytes: Fixture.pdf)])
                let selfDecided = await attempt(f, as: steward) { conn in
                    try await conn.query(
                        """
                        UPDATE oms_change_requests SET status = 'rejected', decided_by = \(steward.pgUUID), decision_reason = 'mine'
                        WHERE id = \(own.id)
                        """, logger: log)
                }
                #expect(selfDecided == Answer("self-approval", "R12"))
                #expect(try await f.ownerValue("SELECT status FROM oms_change_requests WHERE id = \(own.id)") == "pending")
            }
        }
    }
}
