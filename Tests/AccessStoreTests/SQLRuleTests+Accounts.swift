import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// R2, R3: the account row gates every request (r8_route_new_request trusts its status and the R3 waiver), so an
// account cannot change either of them on its own row.

extension SQLRuleTests {
    @Suite("R2, R3: an account cannot unlock itself")
    struct Accounts {
        @Test("R2/R3: an account cannot activate itself or waive its own security questions by updating its row")
        func accountCannotUnlockItself() async throws {
            try await Fixture.with { f in
                // A registered, unverified account (R2: activated only by the e-mailed token).
                let email = "pending-\(UUID().uuidString.prefix(8))@example.com".lowercased()
                let account = try await f.accounts.register(email: email, displayName: "pending", password: "correct horse battery")
                // A pending account cannot even authenticate (spor_authenticate wants an active one): a session made
                // for it by the owner gets it nowhere.
                let pending = try await f.session(of: account)
                let activated = await attempt(f, as: pending) { conn in
                    try await conn.query(
                        "UPDATE accounts SET status = 'active', verified_at = now() WHERE id = \(pending.pgUUID)", logger: log)
                    try await conn.audit(
                        actor: pending, organisation: nil, action: "account.updated", subjectType: "account",
                        subjectID: pending.description)
                }
                #expect(activated != nil, "an unverified account activated itself without its token")
                #expect(try await f.ownerValue("SELECT status FROM accounts WHERE id = \(pending.pgUUID)") == "pending")

                // A verified account without security answers (R3: the waiver is for staff made by the administrator command).
                try await f.accounts.verify(token: try await f.verificationToken(sentTo: email))
                let verified = try await f.session(of: account)
                let waived = await attempt(f, as: verified) { conn in
                    try await conn.query(
                        "UPDATE accounts SET security_questions_waived = true WHERE id = \(verified.pgUUID)", logger: log)
                    try await conn.audit(
                        actor: verified, organisation: nil, action: "account.updated", subjectType: "account",
                        subjectID: verified.description)
                }
                #expect(waived != nil, "an account waived its own security questions")
                #expect(
                    try await f.ownerValue(
                        "SELECT security_questions_waived::text FROM accounts WHERE id = \(pending.pgUUID)") == "false")
            }
        }
    }
}
