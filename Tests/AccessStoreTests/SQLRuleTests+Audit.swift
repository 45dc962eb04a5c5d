import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

extension SQLRuleTests {
    @Suite("R15: every change is audited in its own transaction, and the audit trail is append-only")
    struct Audit {
        @Test("R15: the application role cannot update, delete or truncate audit events")
        func auditNotWritableByApplication() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let superUser = try await f.superUser(of: org)
                let before = try await f.ownerValue("SELECT count(*)::text FROM audit_events")
                #expect(before != "0")
                let statements: [PostgresQuery] = [
                    "UPDATE audit_events SET action = 'nothing.happened'",
                    "DELETE FROM audit_events",
                    "TRUNCATE audit_events",
                ]
                for statement in statements {
                    let refused = await attempt(f, as: superUser) { conn in try await conn.query(statement, logger: log) }
                    #expect(refused == .sqlState("42501"), "\(statement.sql)")
                }
                #expect(try await f.ownerValue("SELECT count(*)::text FROM audit_events") == before)
            }
        }

        @Test("R15: even the owner cannot update, delete or truncate audit events (audit-immutable)")
        func auditImmutableEvenForOwner() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                _ = try await f.superUser(of: org)
                let before = try await f.ownerValue("SELECT count(*)::text FROM audit_events")
                #expect(before != "0")
                #expect(await ownerAttempt(f, "UPDATE audit_events SET action = 'nothing.happened'") == Answer("audit-immutable", "R15"))
                #expect(await ownerAttempt(f, "DELETE FROM audit_events") == Answer("audit-immutable", "R15"))
                #expect(await ownerAttempt(f, "TRUNCATE audit_events") == Answer("audit-immutable", "R15"))
                #expect(try await f.ownerValue("SELECT count(*)::text FROM audit_events") == before)
            }
        }

        @Test("R15: a change without an audit event in its transaction is refused at commit")
        func auditRequired() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
                let refused = await attempt(f, as: applicant) { conn in
                    try await conn.query(
                        "UPDATE access_requests SET status = 'cancelled', decided_by = \(applicant.pgUUID) WHERE id = \(request)", logger: log)
                }
                #expect(refused == Answer("audit-required", "R15"))
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "pending")
                // An event about another subject does not count (one that does not exist belongs to no organisation).
                let unrelated = await attempt(f, as: applicant) { conn in
                    try await conn.query(
                        "UPDATE access_requests SET status = 'cancelled', decided_by = \(applicant.pgUUID) WHERE id = \(request)", logger: log)
                    try await conn.audit(
                        actor: applicant, organisation: nil, action: "access-request.cancelled",
                        subjectType: "access_request", subjectID: String(request + 1))
                }
                #expect(unrelated == Answer("audit-required", "R15"))
                // Control: with its audit event the cancellation commits.
                let cancelled = await attempt(f, as: applicant) { conn in
                    try await conn.query(
                        "UPDATE access_requests SET status = 'cancelled', decided_by = \(applicant.pgUUID) WHERE id = \(request)", logger: log)
                    try await conn.audit(
                        actor: applicant, organisation: org, action: "access-request.cancelled",
                        subjectType: "access_request", subjectID: String(request))
                }
                #expect(cancelled == nil)
                #expect(try await f.ownerValue("SELECT status FROM access_requests WHERE id = \(request)") == "cancelled")
            }
        }

        @Test("R15: an audit event names the acting account")
        func auditActor() async throws {
            try await Fixture.with { f in
                let someone = try await f.user()
                let other = try await f.user()
                let forged = await attempt(f, as: someone) { conn in
                    try await conn.audit(
                        actor: other, organisation: nil, action: "account.updated", subjectType: "account",
                        subjectID: other.description)
                }
                #expect(forged == Answer("audit-actor", "R15"))
                let anonymous = await attempt(f, as: someone) { conn in
                    try await conn.audit(
                        actor: nil, organisation: nil, action: "account.updated", subjectType: "account",
                        subjectID: someone.description)
                }
                #expect(anonymous == Answer("audit-actor", "R15"))
            }
        }

        @Test("0053: only the owner's own functions skip the commit-time bookkeeping checks, and the read-back catches what they skip")
        func ownerWritesSkipOnlyTheBookkeeping() async throws {
            try await Fixture.with { f in
                let org = try await f.organisation()
                let (applicant, request) = try await f.firstSuperUserRequest(of: org, ticket: false)
                #expect(try await f.brokenBookkeeping() == [])
                // The application role is never the owner: it cannot become it, and the test is on current_user.
                let becomeOwner = await attempt(f, as: applicant) { conn in try await conn.query("SET ROLE spor_owner", logger: log) }
                #expect(becomeOwner == .sqlState("42501"))
                let claimed = await attempt(f, as: applicant) { conn in
                    let rows = try await conn.query("SELECT spor_written_by_owner()", logger: log)
                    for try await value in rows.decode(Bool.self) where value { throw FixtureError("spor_app passed for the owner") }
                }
                #expect(claimed == nil)
                // So a direct write by the application role is checked at commit as before (auditRequired has the rest).
                let unaudited = await attempt(f, as: applicant) { conn in
                    try await conn.query(
                        "UPDATE access_requests SET status = 'cancelled', decided_by = \(applicant.pgUUID) WHERE id = \(request)", logger: log)
                }
                #expect(unaudited == Answer("audit-required", "R15"))
                // The owner is trusted with its bookkeeping (it could switch the checks off anyway): an unaudited write
                // of its own commits, and the read-back reports it.
                #expect(await ownerAttempt(f, "UPDATE organisations SET city = city || ' ' WHERE id = \(org.rawValue)") == nil)
                let broken = try await f.brokenBookkeeping()
                #expect(broken.count == 1 && broken.first?.contains("organisations \(org.rawValue)") == true, "\(broken)")
            }
        }
    }
}
