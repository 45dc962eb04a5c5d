import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

/// The attacks of the identity issue, written as a client holding the `spor_app` login would write them: straight
/// SQL, no Swift code in between. Each one worked before migration 0014; each must now be refused or harmless.
@Suite("Identity: a client with the spor_app login acts only as the accounts whose tokens it holds")
struct IdentityAttackTests {
    typealias Answer = SQLRuleTests.Answer
    static let log = TestDatabase.logger

    /// Runs `body` as the application role with nobody authenticated; nil when it committed, else the answer.
    static func asNobody(_ f: Fixture, _ body: @escaping @Sendable (PostgresConnection) async throws -> Void) async -> Answer? {
        await SQLRuleTests.attempt(f, as: nil, body)
    }

    /// Claims to be `account` the way 0005 allowed: by setting `app.account_id` (and any proof one likes) by hand.
    static func claim(_ account: TestAccount, proof: String = "", _ connection: PostgresConnection) async throws {
        try await connection.query(
            "SELECT set_config('app.account_id', \(account.description), true), set_config('app.actor_proof', \(proof), true)",
            logger: log)
    }

    @Test("No caller's search_path reaches inside a SECURITY DEFINER or trigger function: each PL/pgSQL one pins it")
    func definerAndTriggerFunctionsPinSearchPath() async throws {
        try await Fixture.with { f in
            // A trigger function runs with the search_path of whoever wrote the row (spor_app too); a definer one with
            // its owner's rights. An unpinned one resolves its unqualified calls through the caller's path.
            let unpinned = try await f.ownerQuery(
                """
                SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
                WHERE p.pronamespace = 'public'::regnamespace AND l.lanname = 'plpgsql'
                  AND (p.prosecdef OR p.prorettype = 'trigger'::regtype)
                  AND NOT coalesce(array_to_string(p.proconfig, ',') LIKE '%search_path=%', false)
                ORDER BY 1
                """)
            #expect(unpinned == [], "no pinned search_path: \(unpinned)")
        }
    }

    @Test("Row 1: setting app.account_id by hand makes nobody the actor: no staff role, no other tenant, no approval")
    func handSetActorIsNobody() async throws {
        try await Fixture.with { f in
            let admin = try await f.staff(.admin)
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let applicant = try await f.user("applicant")
            let pending = try await f.requests.submit(actor: applicant, role: .industryUser, organisation: org, justification: nil).request

            // Claiming the administrator: spor_actor() stays NULL, so the staff-role grant breaks the R4 policy.
            let seen = Collected<String>()
            let grant = await Self.asNobody(f) { conn in
                try await Self.claim(admin, conn)
                seen.append(contentsOf: try await conn.texts("SELECT coalesce(spor_actor()::text, 'nobody')"))
                try await conn.query(
                    "INSERT INTO staff_roles (account_id, role) VALUES (\(applicant.pgUUID), 'ema-admin')", logger: Self.log)
            }
            #expect(seen.values == ["nobody"])
            #expect(grant == .sqlState("42501"), "a hand-set administrator granted a staff role")
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM staff_roles WHERE account_id = \(applicant.pgUUID)") == ["0"])

            // Claiming the super user: the organisation's requests are invisible, and approving one changes nothing.
            let visible = Collected<String>()
            let approval = await Self.asNobody(f) { conn in
                try await Self.claim(superUser, conn)
                visible.append(contentsOf: try await conn.texts("SELECT count(*)::text FROM access_requests"))
                visible.append(
                    contentsOf: try await conn.texts(
                        """
                        WITH changed AS (UPDATE access_requests SET status = 'approved', decided_by = \(superUser.pgUUID),
                                         decided_at = now() WHERE id = \(pending.id.rawValue) RETURNING id)
                        SELECT count(*)::text FROM changed
                        """))
            }
            #expect(approval == nil && visible.values == ["0", "0"])
            #expect(try await f.ownerQuery("SELECT status FROM access_requests WHERE id = \(pending.id.rawValue)") == ["pending"])

            // A proof copied from another transaction of the same account does not carry over.
            let copied = Collected<String>()
            try await f.asApplication(actor: superUser) { conn in
                copied.append(contentsOf: try await conn.texts("SELECT current_setting('app.actor_proof')"))
            }
            let replayed = Collected<String>()
            _ = await Self.asNobody(f) { conn in
                try await Self.claim(superUser, proof: copied.values.first ?? "", conn)
                replayed.append(contentsOf: try await conn.texts("SELECT coalesce(spor_actor()::text, 'nobody')"))
            }
            #expect(copied.values.count == 1 && replayed.values == ["nobody"])

            // Through its token, the same account is the actor, as the service makes it.
            let real = Collected<String>()
            try await f.asApplication(actor: superUser) { conn in real.append(contentsOf: try await conn.texts("SELECT spor_actor()::text")) }
            #expect(real.values == [superUser.description])
        }
    }

    @Test("Row 1: a chosen token cannot be planted as a session, and unknown tokens do not authenticate")
    func noPlantedSessions() async throws {
        try await Fixture.with { f in
            let admin = try await f.staff(.admin)
            let planted = await Self.asNobody(f) { conn in
                try await conn.query(
                    """
                    INSERT INTO sessions (token_hash, account_id, expires_at)
                    VALUES (sha256('chosen token'::bytea), \(admin.pgUUID), now() + interval '1 day')
                    """, logger: Self.log)
            }
            #expect(planted == .sqlState("42501"))
            let forged = await Self.asNobody(f) { conn in _ = try await conn.texts("SELECT spor_authenticate('chosen token')::text") }
            #expect(forged == Answer("not-authenticated", "R13"))
        }
    }

    @Test("Rows 1, 2, 5, 8: no reading or writing of password hashes, tokens, answers or sessions")
    func secretsOutOfReach() async throws {
        try await Fixture.with { f in
            let admin = try await f.staff(.admin)
            let user = try await f.user("victim")
            for (what, statement): (String, PostgresQuery) in [
                ("read password hashes", "SELECT password_hash FROM credentials"),
                ("read session token hashes", "SELECT token_hash::text FROM sessions"),
                ("read verification token hashes", "SELECT token_hash::text FROM verification_tokens"),
                ("read answer hashes", "SELECT answer_hash FROM security_answers"),
                ("replace the admin's password", "UPDATE credentials SET password_hash = '$2b$04$x' WHERE account_id = \(admin.pgUUID)"),
                ("erase security answers", "DELETE FROM security_answers WHERE account_id = \(user.pgUUID)"),
                ("extend a session", "UPDATE sessions SET expires_at = now() + interval '1 year'"),
                ("un-revoke a session", "UPDATE sessions SET revoked_at = NULL"),
                (
                    "plant a verification token",
                    "INSERT INTO verification_tokens (token_hash, account_id, expires_at) VALUES (sha256('t'::bytea), \(user.pgUUID), now() + interval '1 day')"
                ),
            ] {
                let answer = await SQLRuleTests.attempt(f, as: user) { conn in _ = try await conn.texts(statement) }
                #expect(answer == .sqlState("42501"), "\(what): \(answer.map(\.description) ?? "allowed")")
            }
            // The account itself still sees that it has answers (R3), and nothing of them.
            let own = Collected<String>()
            try await f.asApplication(actor: user) { conn in
                own.append(contentsOf: try await conn.texts("SELECT count(*)::text FROM security_answers WHERE account_id = \(user.pgUUID)"))
            }
            #expect(own.values == ["3"])
        }
    }

    @Test("Rows 2, 9, 10: the look-ups and helpers that hand out hashes, ids, proofs or lock-outs are not callable")
    func privilegedFunctionsNotCallable() async throws {
        try await Fixture.with { f in
            let victim = try await f.user("victim")
            let email = try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(victim.pgUUID)").first)
            for call: PostgresQuery in [
                "SELECT password_hash FROM spor_login_candidate(\(email))",
                "SELECT spor_account_for_email(\(email))::text",
                "SELECT spor_session_account(sha256('x'::bytea))::text",
                "SELECT spor_record_login_failure(\(victim.pgUUID))::text",
                "SELECT spor_login_blocked_until(\(victim.pgUUID))::text",
                "SELECT spor_actor_proof(\(victim.pgUUID))",
                "SELECT spor_bind_actor(\(victim.pgUUID))::text",
                "SELECT spor_bcrypt_matches('x', '$2b$04$x')::text",
            ] {
                let answer = await Self.asNobody(f) { conn in _ = try await conn.texts(call) }
                #expect(answer == .sqlState("42501"), "\(call.sql): \(answer.map(\.description) ?? "allowed")")
            }
            // Row 10: no function of the schema is executable by PUBLIC, and one created later (as a future migration
            // would) is not executable by the application role.
            let open = try await f.ownerQuery(
                """
                SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = 'public'
                  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
                  AND (p.proacl IS NULL OR EXISTS (SELECT 1 FROM aclexplode(p.proacl) a WHERE a.grantee = 0))
                """)
            #expect(open == [], "executable by PUBLIC: \(open)")
            try await f.owner.query("CREATE FUNCTION later_helper() RETURNS int LANGUAGE sql RETURN 1", logger: Self.log)
            let later = await Self.asNobody(f) { conn in _ = try await conn.texts("SELECT later_helper()::text") }
            #expect(later == .sqlState("42501"))
        }
    }

    @Test("R13 in SQL: the application role asks who is a super user or staff, and how many super users, about its actor only")
    func roleChecksAnswerForTheActorOnly() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let desk = try await f.staff(.serviceDesk)
            let superUser = try await f.superUser(of: org, approvedBy: desk)
            let stranger = try await f.user("stranger")
            // The probes a client with the spor_app login could make about any account or organisation (0055).
            for call: PostgresQuery in [
                "SELECT spor_is_active_super_user(\(superUser.pgUUID), \(org.rawValue))::text",
                "SELECT spor_has_staff_role(\(desk.pgUUID), 'ema-service-desk')::text",
                "SELECT spor_active_super_user_count(\(org.rawValue))::text",
            ] {
                for actor in [nil, stranger] {
                    let answer = await SQLRuleTests.attempt(f, as: actor) { conn in _ = try await conn.texts(call) }
                    let who = actor.map(\.description) ?? "nobody"
                    #expect(answer == .sqlState("42501"), "\(call.sql) as \(who): \(answer.map(\.description) ?? "answered")")
                }
            }
            // What the policies and the service ask instead: about the signed-in actor, and nobody else.
            let ask: PostgresQuery = """
                SELECT spor_actor_is_super_user_of(\(org.rawValue))::text || ' ' || spor_actor_has_staff_role('ema-service-desk')::text
                """
            for (actor, expected) in [(superUser, "true false"), (desk, "false true"), (stranger, "false false")] {
                try await f.asApplication(actor: actor) { conn in
                    let answer = try await conn.texts(ask)
                    #expect(answer == [expected], "as \(actor)")
                }
            }
            try await f.asApplication(actor: nil) { conn in
                let answer = try await conn.texts(ask)
                #expect(answer == ["false false"], "as nobody")
            }
        }
    }

    @Test("Row 9: the application and reporting roles cannot hold a statement or a transaction for ever")
    func rolesHaveTimeouts() async throws {
        try await Fixture.with { f in
            let settings = try await f.ownerQuery(
                """
                SELECT r.rolname || ' ' || array_to_string(s.setconfig, ',') FROM pg_db_role_setting s
                JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname IN ('spor_app', 'spor_reporting') ORDER BY r.rolname
                """)
            #expect(
                settings == [
                    "spor_app statement_timeout=30s,idle_in_transaction_session_timeout=60s,lock_timeout=5s",
                    "spor_reporting statement_timeout=5min,idle_in_transaction_session_timeout=60s",
                ])
        }
    }

    @Test("R2: registration makes the verification token in the database; the caller never chooses or returns it")
    func registrationTokenIsTheDatabases() async throws {
        try await Fixture.with { f in
            let email = "new-\(UUID().uuidString.prefix(8))@example.com".lowercased()
            let account = try await f.accounts.register(email: email, displayName: "New", password: Fixture.password)
            #expect(try await f.ownerQuery("SELECT status FROM accounts WHERE id = \(account.rawValue)") == ["pending"])
            // Only the e-mailed token verifies; a guessed one does not.
            await #expect(throws: Refusal.self) { try await f.accounts.verify(token: "guessed") }
            try await f.accounts.verify(token: try await f.verificationToken(sentTo: email))
            #expect(try await f.ownerQuery("SELECT status FROM accounts WHERE id = \(account.rawValue)") == ["active"])
            // Registration, verification, sign-in and the answers were each audited (R15).
            _ = try await f.signIn(email)
            #expect(
                try await f.ownerQuery(
                    "SELECT action FROM audit_events WHERE subject_type = 'account' AND subject_id = \(account.description) ORDER BY id")
                    == ["account.registered", "account.verified", "session.started"])
        }
    }

    @Test("Row 7: no audit event without an actor, and none naming another organisation than its subject's")
    func auditCannotBeForged() async throws {
        try await Fixture.with { f in
            let a = try await f.organisation("A")
            let b = try await f.organisation("B")
            let applicant = try await f.user("applicant")
            let request = try await f.requests.submit(actor: applicant, role: .superUser, organisation: a, justification: nil).request
            let id = String(request.id.rawValue)
            // Nobody authenticated: an actor-less event (visible in A's trail) is refused.
            let anonymous = await Self.asNobody(f) { conn in
                try await conn.query(
                    """
                    INSERT INTO audit_events (organisation_id, action, subject_type, subject_id)
                    VALUES (\(a.rawValue), 'access-request.approved', 'access_request', \(id))
                    """, logger: Self.log)
            }
            #expect(anonymous == .sqlState("42501"))
            // Authenticated, but naming B for a request of A: refused; naming A: accepted.
            let elsewhere = await SQLRuleTests.attempt(f, as: applicant) { conn in
                try await conn.audit(
                    actor: applicant, organisation: b, action: "access-request.noted", subjectType: "access_request", subjectID: id)
            }
            #expect(elsewhere == Answer("audit-organisation", "R15"))
            let own = await SQLRuleTests.attempt(f, as: applicant) { conn in
                try await conn.audit(
                    actor: applicant, organisation: a, action: "access-request.noted", subjectType: "access_request", subjectID: id)
            }
            #expect(own == nil)
            #expect(
                try await f.ownerQuery(
                    "SELECT count(*)::text FROM audit_events WHERE organisation_id = \(b.rawValue) AND action = 'access-request.noted'") == ["0"])
        }
    }

    @Test("Rows 2, 3: only the worker role claims, reads and marks the outbox; the super users' e-mails need an actor; no body is readable")
    func outboxIsTheWorkers() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let user = try await f.user("user")
            let before = try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE delivered_at IS NULL")
            for actor in [nil, user] {
                for call: PostgresQuery in [
                    "SELECT count(*)::text FROM spor_claim_notifications(1000, 60)",
                    "SELECT spor_record_delivery(1, 'sent', '250 ok', 0)::text",
                    "SELECT queued::text FROM spor_outbox_figures()",
                    "SELECT body FROM notification_outbox",
                    "SELECT spor_expire_due_requests(1000)::text",
                ] {
                    let answer = await SQLRuleTests.attempt(f, as: actor) { conn in _ = try await conn.texts(call) }
                    #expect(answer == .sqlState("42501"), "\(call.sql) as \(actor.map(\.description) ?? "nobody")")
                }
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox WHERE delivered_at IS NULL") == before)
            // An organisation's super users and their e-mails stay unknown, with nobody acting and to any signed-in
            // account (here one with no role in the organisation): the recipients' look-up that 0006 granted to the
            // application role, and nothing calls since the command functions fan out themselves, is gone (0050).
            for actor in [nil, user] {
                let answer = await SQLRuleTests.attempt(f, as: actor) { conn in
                    _ = try await conn.texts("SELECT email FROM spor_super_user_recipients(\(org.rawValue))")
                }
                #expect(
                    answer == .sqlState("42501") || answer == .sqlState("42883"),
                    "super users listed as \(actor.map(\.description) ?? "nobody"): \(String(describing: answer))")
            }
            // The worker delivers.
            let claimed = Collected<String>()
            try await f.worker.transaction { conn in
                claimed.append(contentsOf: try await conn.texts("SELECT count(*)::text FROM spor_claim_notifications(1000, 60)"))
            }
            #expect(claimed.values == before)
            _ = superUser
        }
    }

    @Test("Row 4: anonymous Idempotency-Keys are neither readable nor blockable by another anonymous caller")
    func anonymousIdempotencyKeys() async throws {
        try await Fixture.with { f in
            // A first anonymous caller's request under key "k" was answered and stored.
            try await f.asApplication(actor: nil) { conn in
                _ = try await conn.texts("SELECT outcome FROM spor_idempotency_claim('k', sha256('first body'::bytea))")
                try await conn.query(
                    "SELECT spor_idempotency_store('k', sha256('first body'::bytea), 201, 'secret answer'::bytea, 'application/json')",
                    logger: Self.log)
            }
            // Another anonymous client: no table access; the same key with its own body is its own claim (not
            // blocked, not answered with the first); only the identical request replays.
            let read = await Self.asNobody(f) { conn in _ = try await conn.texts("SELECT convert_from(response_body, 'UTF8') FROM idempotency_keys") }
            #expect(read == .sqlState("42501"))
            let outcomes = Collected<String>()
            try await f.asApplication(actor: nil) { conn in
                outcomes.append(contentsOf: try await conn.texts("SELECT outcome FROM spor_idempotency_claim('k', sha256('other body'::bytea))"))
                outcomes.append(contentsOf: try await conn.texts("SELECT outcome FROM spor_idempotency_claim('k', sha256('first body'::bytea))"))
            }
            #expect(outcomes.values == ["claimed", "replay"])
        }
    }

    @Test("Row 6: no message to an address of one's choosing, none without a recipient account, none with nobody acting")
    func noMessagesToChosenAddresses() async throws {
        try await Fixture.with { f in
            let user = try await f.user("sender")
            let email = try #require(try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(user.pgUUID)").first)
            let before = try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox")
            for (who, recipient, address): (TestAccount?, TestAccount?, String) in [
                (user, user, "attacker@evil.example"),  // own account, someone else's address
                (user, nil, "victim@example.com"),  // no recipient account
                (nil, user, email),  // nobody acting
            ] {
                let answer = await SQLRuleTests.attempt(f, as: who) { conn in
                    try await conn.query(
                        """
                        INSERT INTO notification_outbox (recipient_account_id, recipient_email, template, subject, body, subject_type, subject_id)
                        VALUES (\(recipient?.pgUUID), \(address), 'request-decided', 'Your access', 'Click here', 'account', \(user.description))
                        """, logger: Self.log)
                }
                #expect(answer == .sqlState("42501"), "to \(address): \(answer.map(\.description) ?? "queued")")
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM notification_outbox") == before)
        }
    }
}
