import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

private let logger = TestDatabase.logger

extension ReportingTests {
    /// The seeded world: organisations, people, requests, tickets, OMS change requests.
    struct World: Sendable {
        // Organisations: alpha (no super user, two pending first-super-user requests), beta (one super user),
        // gamma (two super users), delta (first super user rejected), epsilon and zeta (created by OMS approvals).
        var alpha, beta, gamma, delta, epsilon, zeta: OrganisationID
        /// People by first name (and desk1, desk2, steward) → account id, and → e-mail.
        var account: [String: TestAccount]
        var email: [String: String]
        /// Access requests by label → id.
        var request: [String: Int64]
        /// Service desk tickets by label → id.
        var ticket: [String: Int64]
        /// OMS change requests by label → id.
        var oms: [String: Int64]

        func id(_ name: String) -> String { (account[name]?.description ?? "?") }
        func mail(_ name: String) -> String { email[name] ?? "?" }
        func req(_ label: String) -> String { request[label].map(String.init) ?? "?" }
        func tkt(_ label: String) -> String { ticket[label].map(String.init) ?? "?" }

        /// Seeds the world through the stores, then moves it in time.
        static func seeded(_ f: Fixture) async throws -> World {
            let alpha = try await f.organisation("Alpha Pharma", country: "NL")
            let beta = try await f.organisation("Beta Biotech", country: "BE")
            let gamma = try await f.organisation("Gamma Generics", country: "DE")
            let delta = try await f.organisation("Delta Devices", country: "FR")

            var account: [String: TestAccount] = [:]
            account["desk1"] = try await f.staff(.serviceDesk)
            account["desk2"] = try await f.staff(.serviceDesk)
            account["steward"] = try await f.staff(.dataSteward)
            for name in ["uma", "bea", "carl", "cora", "dan", "gus", "gil", "gwen", "gabe", "gina", "bob", "ben", "ann", "amy"] {
                account[name] = try await f.user(name)
            }
            func who(_ name: String) throws -> TestAccount { try #require(account[name]) }
            var request: [String: Int64] = [:]
            var ticket: [String: Int64] = [:]
            var oms: [String: Int64] = [:]

            // The unaffiliated role holder (approved by the system at once).
            request["U1"] = try await f.requests.submit(actor: who("uma"), role: .unaffiliatedUser, organisation: nil, justification: nil)
                .request.id.rawValue
            // beta: one super user, through the service desk (ticket resolved on time).
            let b1 = try await f.requests.submit(actor: who("bea"), role: .superUser, organisation: beta, justification: nil).request
            ticket["B1"] = try await f.openTicket(for: b1, by: who("bea")).id
            _ = try await f.requests.decide(actor: who("desk1"), request: b1.id, channel: .serviceDesk, action: .approve)
            request["B1"] = b1.id.rawValue
            // gamma: first super user through the service desk (ticket resolved late), the second approved by the first.
            let c1 = try await f.requests.submit(actor: who("carl"), role: .superUser, organisation: gamma, justification: nil).request
            ticket["C1"] = try await f.openTicket(for: c1, by: who("carl")).id
            _ = try await f.requests.decide(actor: who("desk1"), request: c1.id, channel: .serviceDesk, action: .approve)
            request["C1"] = c1.id.rawValue
            // delta: the first super user request rejected by the service desk (its ticket resolved "rejected").
            let d1 = try await f.requests.submit(actor: who("dan"), role: .superUser, organisation: delta, justification: nil).request
            ticket["D1"] = try await f.openTicket(for: d1, by: who("dan")).id
            _ = try await f.requests.decide(
                actor: who("desk2"), request: d1.id, channel: .serviceDesk, action: .reject(reason: "The letter is not signed."))
            request["D1"] = d1.id.rawValue
            let c2 = try await f.requests.submit(actor: who("cora"), role: .superUser, organisation: gamma, justification: nil).request
            #expect(c2.approverKind == .organisationSuperUsers)
            _ = try await f.requests.decide(actor: who("carl"), request: c2.id, channel: .organisation, action: .approve)
            request["C2"] = c2.id.rawValue
            // gamma industry users: approved (by cora), rejected, approved then revoked, two pending.
            let c3 = try await f.requests.submit(actor: who("gus"), role: .industryUser, organisation: gamma, justification: nil).request
            _ = try await f.requests.decide(actor: who("cora"), request: c3.id, channel: .organisation, action: .approve)
            request["C3"] = c3.id.rawValue
            let c4 = try await f.requests.submit(actor: who("gil"), role: .industryUser, organisation: gamma, justification: nil).request
            _ = try await f.requests.decide(
                actor: who("carl"), request: c4.id, channel: .organisation, action: .reject(reason: "Not one of our employees."))
            request["C4"] = c4.id.rawValue
            let c6 = try await f.requests.submit(actor: who("gwen"), role: .industryUser, organisation: gamma, justification: nil).request
            let granted = try #require(
                try await f.requests.decide(actor: who("carl"), request: c6.id, channel: .organisation, action: .approve).grant)
            _ = try await f.requests.revoke(actor: who("carl"), assignment: granted.id, channel: .organisation, reason: "Left the company.")
            request["C6"] = c6.id.rawValue
            request["C5"] = try await f.requests.submit(actor: who("gabe"), role: .industryUser, organisation: gamma, justification: nil)
                .request.id.rawValue
            request["C7"] = try await f.requests.submit(actor: who("gina"), role: .industryUser, organisation: gamma, justification: nil)
                .request.id.rawValue
            // beta industry users: one cancelled, one expired.
            let b2 = try await f.requests.submit(actor: who("bob"), role: .industryUser, organisation: beta, justification: nil).request
            _ = try await f.requests.cancel(actor: who("bob"), request: b2.id)
            request["B2"] = b2.id.rawValue
            let b3 = try await f.requests.submit(actor: who("ben"), role: .industryUser, organisation: beta, justification: nil).request
            request["B3"] = b3.id.rawValue
            try await f.owner.withTransaction(logger: logger) { c in
                try await c.query("ALTER TABLE access_requests DISABLE TRIGGER USER", logger: logger)
                try await c.query("UPDATE access_requests SET expires_at = now() - interval '1 hour' WHERE id = \(b3.id.rawValue)", logger: logger)
                try await c.query("ALTER TABLE access_requests ENABLE TRIGGER USER", logger: logger)
            }
            #expect(try await f.expiry.expireDue(batch: 100) == 1)
            // alpha: two pending first-super-user requests, each with an open ticket.
            let a1 = try await f.requests.submit(actor: who("ann"), role: .superUser, organisation: alpha, justification: nil).request
            ticket["A1"] = try await f.openTicket(for: a1, by: who("ann")).id
            request["A1"] = a1.id.rawValue
            let a2 = try await f.requests.submit(actor: who("amy"), role: .superUser, organisation: alpha, justification: nil).request
            ticket["A2"] = try await f.openTicket(for: a2, by: who("amy")).id
            request["A2"] = a2.id.rawValue
            #expect(a1.approverKind == .emaServiceDesk && a2.approverKind == .emaServiceDesk)

            // OMS change requests (filed by the unaffiliated role holder): two approved, one rejected, one pending.
            let letter = [Upload(fileName: "register.pdf", contentType: .pdf, bytes: Fixture.pdf)]
            func file(_ name: String, _ country: String) async throws -> Int64 {
                try await f.oms.file(
                    actor: who("uma"), name: name, country: country, city: "Capital", address: nil,
                    justification: "Not in OMS yet", documents: letter
                ).id
            }
            oms["approved1"] = try await file("Epsilon Labs", "BE")
            oms["rejected"] = try await file("Rejected Holdings", "LU")
            oms["pending"] = try await file("Pending Partners", "AT")
            oms["approved2"] = try await file("Zeta Labs", "DK")
            let (approved1, rejected, approved2) = try (#require(oms["approved1"]), #require(oms["rejected"]), #require(oms["approved2"]))
            let steward = try who("steward")
            let epsilon = try #require(try await f.oms.decide(actor: steward, request: approved1, approve: true, reason: nil).organisation)
            _ = try await f.oms.decide(actor: steward, request: rejected, approve: false, reason: "Not a legal entity.")
            let zeta = try #require(try await f.oms.decide(actor: steward, request: approved2, approve: true, reason: nil).organisation)

            var email: [String: String] = [:]
            for (name, id) in account {
                email[name] = try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(id.pgUUID)").first)
            }
            let world = World(
                alpha: alpha, beta: beta, gamma: gamma, delta: delta, epsilon: epsilon, zeta: zeta,
                account: account, email: email, request: request, ticket: ticket, oms: oms)
            try await travel(f, world)
            return world
        }

        /// Moves the seeded rows to fixed instants (decided work, in 2025) or to instants relative to now() (pending work).
        private static func travel(_ f: Fixture, _ w: World) async throws {
            // label → (created_at, decided_at); expired: expires_at = decided_at.
            let decided: [(String, String, String)] = [
                ("U1", "2025-01-02 09:00+00", "2025-01-02 09:00+00"),
                ("B1", "2025-01-06 09:00+00", "2025-01-06 15:00+00"),  // 6 h, approved by desk1
                ("C1", "2025-01-13 08:00+00", "2025-01-14 18:00+00"),  // 34 h, approved by desk1
                ("D1", "2025-01-20 10:00+00", "2025-01-20 22:00+00"),  // 12 h, rejected by desk2
                ("C2", "2025-02-03 09:00+00", "2025-02-04 09:00+00"),  // 24 h, approved by carl
                ("C3", "2025-02-03 10:00+00", "2025-02-03 12:00+00"),  // 2 h, approved by cora
                ("C4", "2025-02-04 10:00+00", "2025-02-06 10:00+00"),  // 48 h, rejected by carl
                ("C6", "2025-02-04 08:00+00", "2025-02-04 16:00+00"),  // 8 h, approved by carl (later revoked)
                ("B2", "2025-02-11 09:00+00", "2025-02-11 10:00+00"),  // cancelled
                ("B3", "2025-02-12 09:00+00", "2025-03-14 09:00+00"),  // expired
            ]
            let pending: [(String, String)] = [("A1", "3 days"), ("A2", "2 hours"), ("C5", "10 days"), ("C7", "9 days")]
            // label → (opened_at, resolved_at)
            let resolvedTickets: [(String, String, String)] = [
                ("B1", "2025-01-06 10:00+00", "2025-01-06 15:00+00"),  // 5 h: on time
                ("C1", "2025-01-13 09:00+00", "2025-01-14 18:00+00"),  // 33 h: late
                ("D1", "2025-01-20 11:00+00", "2025-01-20 22:00+00"),  // 11 h: on time
            ]
            let openTickets: [(String, String)] = [("A1", "2 days"), ("A2", "1 hour")]  // overdue; not yet due
            let omsTimes: [(String, String, String?)] = [
                ("approved1", "2025-01-08 09:00+00", "2025-01-09 09:00+00"),  // 24 h
                ("rejected", "2025-01-08 10:00+00", "2025-01-08 16:00+00"),  // 6 h
                ("approved2", "2025-02-01 09:00+00", "2025-02-01 21:00+00"),  // 12 h
            ]
            let tables = ["access_requests", "role_assignments", "service_desk_tickets", "oms_change_requests"]
            try await f.owner.withTransaction(logger: logger) { c in
                for table in tables {
                    try await c.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(table) DISABLE TRIGGER USER"), logger: logger)
                }
                for (label, created, decidedAt) in decided {
                    let id = try #require(w.request[label])
                    try await c.query(
                        """
                        UPDATE access_requests SET created_at = \(created)::timestamptz, decided_at = \(decidedAt)::timestamptz,
                               expires_at = CASE WHEN status = 'expired' THEN \(decidedAt)::timestamptz ELSE expires_at END
                        WHERE id = \(id)
                        """, logger: logger)
                }
                for (label, age) in pending {
                    let id = try #require(w.request[label])
                    try await c.query("UPDATE access_requests SET created_at = now() - \(age)::interval WHERE id = \(id)", logger: logger)
                }
                try await c.query(
                    """
                    UPDATE role_assignments g SET granted_at = r.decided_at, effective_from = r.decided_at,
                           revoked_at = CASE WHEN g.revoked_at IS NOT NULL THEN r.decided_at + interval '10 days' END
                    FROM access_requests r WHERE r.id = g.access_request_id
                    """, logger: logger)
                for (label, opened, resolved) in resolvedTickets {
                    let id = try #require(w.ticket[label])
                    try await c.query(
                        """
                        UPDATE service_desk_tickets SET opened_at = \(opened)::timestamptz,
                               due_at = \(opened)::timestamptz + interval '24 hours', resolved_at = \(resolved)::timestamptz
                        WHERE id = \(id)
                        """, logger: logger)
                }
                for (label, age) in openTickets {
                    let id = try #require(w.ticket[label])
                    try await c.query(
                        """
                        UPDATE service_desk_tickets SET opened_at = now() - \(age)::interval,
                               due_at = now() - \(age)::interval + interval '24 hours'
                        WHERE id = \(id)
                        """, logger: logger)
                }
                for (label, created, decidedAt) in omsTimes {
                    let id = try #require(w.oms[label])
                    try await c.query(
                        "UPDATE oms_change_requests SET created_at = \(created)::timestamptz, decided_at = \(decidedAt)::timestamptz WHERE id = \(id)",
                        logger: logger)
                }
                let pendingOMS = try #require(w.oms["pending"])
                try await c.query("UPDATE oms_change_requests SET created_at = now() - interval '5 hours' WHERE id = \(pendingOMS)", logger: logger)
                for table in tables {
                    try await c.query(PostgresQuery(unsafeSQL: "ALTER TABLE \(table) ENABLE TRIGGER USER"), logger: logger)
                }
            }
        }
    }
}
