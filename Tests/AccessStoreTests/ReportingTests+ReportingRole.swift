import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// The reporting role (spor_reporting): what an analyst's login may read and run.

private let logger = TestDatabase.logger

/// A login that is a member of spor_reporting and nothing else (an analyst), dropped afterwards.
private func withAnalyst<T: Sendable>(_ f: Fixture, _ body: @Sendable (PostgresClient) async throws -> T) async throws -> T {
    let hex = { (count: Int) in (0..<count).map { _ in String(UInt8.random(in: 0...15), radix: 16) }.joined() }
    let name = "analyst_\(hex(12))"
    let password = hex(32)
    // Identifiers and password are generated hex, never input: utility statements take no bind parameters.
    try await f.owner.query(
        PostgresQuery(unsafeSQL: "CREATE ROLE \(name) LOGIN PASSWORD '\(password)' IN ROLE spor_reporting"), logger: logger)
    let result: Result<T, any Error>
    do {
        result = .success(try await TestDatabase.withClient(f.db.owner.with(username: name, password: password), maximumConnections: 2, body))
    } catch {
        result = .failure(error)
    }
    // A session the pool just closed may still be ending on the server (and own temporary objects): try again.
    for attempt in 1...20 {
        do {
            try await f.owner.query(PostgresQuery(unsafeSQL: "DROP ROLE \(name)"), logger: logger)
            break
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "2BP01" && attempt < 20 {
            try await Task.sleep(for: .milliseconds(100))
        }
    }
    return try result.get()
}

/// The SQLSTATE of a failed statement (nil when it succeeded).
private func sqlState(_ client: PostgresClient, _ sql: String) async -> String? {
    do {
        let rows = try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger)
        for try await _ in rows {}
        return nil
    } catch let error as PSQLError {
        return error.serverInfo?[.sqlState] ?? "no sqlstate: \(String(reflecting: error))"
    } catch {
        return "unexpected: \(String(reflecting: error))"
    }
}

private let viewNames = ReportName.allCases.map(\.rawValue)
private let baseTables = [
    "organisations", "accounts", "credentials", "verification_tokens", "security_answers", "sessions", "staff_roles",
    "access_requests", "role_assignments", "documents", "service_desk_tickets", "oms_change_requests",
    "oms_change_request_documents", "audit_events", "notification_outbox", "idempotency_keys", "settings", "schema_migrations",
    "reminders", "grant_notices", "access_reviews", "access_review_items",
]

/// SQL/reports, from this file: Tests/AccessStoreTests/ → ../../SQL/reports.
private func reportFiles() throws -> [URL] {
    let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("SQL/reports")
    return try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
        .filter { $0.pathExtension == "sql" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
}

extension ReportingTests {
    @Test("The reporting role can read every view and cannot read any base table")
    func reportingRoleIsolation() async throws {
        try await Fixture.with { f in
            _ = try await f.user("someone")
            try await withAnalyst(f) { analyst in
                for view in viewNames {
                    #expect(await sqlState(analyst, "SELECT * FROM reporting.\(view)") == nil, "reading reporting.\(view)")
                }
                for table in baseTables {
                    #expect(await sqlState(analyst, "SELECT * FROM public.\(table) LIMIT 1") == "42501", "reading \(table)")
                }
                // No password hashes through the sign-in function either (SECURITY DEFINER: it would read credentials).
                #expect(await sqlState(analyst, "SELECT * FROM spor_login_candidate('x')") == "42501", "calling spor_login_candidate")
                // What the `report` command does (SET ROLE spor_reporting) works for an analyst login too.
                let table = try await Reports(client: analyst, logger: logger).table(.roleHolders)
                #expect(table.columns == ["organisation_id", "role", "holders", "holder_emails"])
            }
        }
    }

    @Test("A leaky function of the analyst's own sees only the rows a view shows: every reporting view is a security barrier")
    func viewsAreSecurityBarriers() async throws {
        try await Fixture.with { f in
            _ = try await World.seeded(f)
            _ = try await f.user("unverified")  // accounts no view shows
            let barriers = try await f.ownerQuery(
                """
                SELECT c.relname || ':' || coalesce(array_to_string(c.reloptions, ','), '') FROM pg_class c
                JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'reporting' AND c.relkind = 'v' ORDER BY 1
                """)
            #expect(!barriers.isEmpty && barriers.allSatisfy { $0.contains("security_barrier=true") }, "\(barriers)")
            let columns = try await f.ownerQuery(
                """
                SELECT table_name || '.' || column_name FROM information_schema.columns
                WHERE table_schema = 'reporting' AND data_type IN ('text', 'ARRAY', 'uuid') ORDER BY 1
                """)
            try await withAnalyst(f) { analyst in
                try await analyst.withConnection { conn in
                    // The attack: a function cheaper than anything, that records every value it is shown.
                    for statement in [
                        "CREATE TEMP TABLE seen (v text)",
                        """
                        CREATE FUNCTION pg_temp.leak(v text) RETURNS boolean LANGUAGE plpgsql COST 0.0000001 AS $$
                        BEGIN INSERT INTO seen VALUES (v); RETURN true; END $$
                        """,
                    ] { _ = try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect() }
                    for column in columns {
                        let parts = column.split(separator: ".")
                        let (view, name) = (parts[0], parts[1])
                        _ = try await conn.query(PostgresQuery(unsafeSQL: "TRUNCATE seen"), logger: logger).collect()
                        _ = try await conn.query(
                            PostgresQuery(unsafeSQL: "SELECT count(*) FROM reporting.\(view) WHERE pg_temp.leak(\(name)::text)"), logger: logger
                        ).collect()
                        let leaked = try await conn.query(
                            PostgresQuery(
                                unsafeSQL: """
                                    SELECT count(*)::text FROM seen
                                    WHERE v IS NOT NULL AND v NOT IN (SELECT \(name)::text FROM reporting.\(view) WHERE \(name) IS NOT NULL)
                                    """), logger: logger
                        ).collect().first?.decode(String.self)
                        #expect(leaked == "0", "reporting.\(column): the function saw values the view does not show")
                    }
                    // The analyst's temporary objects go now, not when the server gets round to ending the session: the
                    // role is dropped right after, and objects it still owned would stop that.
                    _ = try await conn.query("DISCARD TEMP", logger: logger).collect()
                }
            }
        }
    }

    @Test("The reporting role can execute none of the SECURITY DEFINER functions")
    func reportingRoleHasNoDefinerFunctions() async throws {
        try await Fixture.with { f in
            // EXECUTE on a new function goes to PUBLIC unless revoked, and a SECURITY DEFINER one runs with its owner's
            // rights for anyone: password hashes, e-mails, expiring requests, claiming the outbox. (Trigger functions
            // cannot be called directly, so they are left out.)
            let executable = try await f.ownerQuery(
                """
                SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.prosecdef AND p.pronamespace = 'public'::regnamespace AND p.prorettype <> 'trigger'::regtype
                  AND has_function_privilege('spor_reporting', p.oid, 'EXECUTE')
                ORDER BY 1
                """)
            #expect(executable == [], "spor_reporting may execute: \(executable)")
        }
    }

    @Test("Every example query in SQL/reports runs as the reporting role")
    func exampleQueries() async throws {
        let files = try reportFiles()
        #expect(files.count >= 4)
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            #expect(text.hasPrefix("--"), "\(file.lastPathComponent) starts with a comment saying what it answers")
        }
        try await Fixture.with { f in
            _ = try await World.seeded(f)
            try await withAnalyst(f) { analyst in
                for file in files {
                    let statements = SQLScript.statements(in: try String(contentsOf: file, encoding: .utf8))
                    #expect(statements.count == 1, "\(file.lastPathComponent): one query per file")
                    for statement in statements {
                        #expect(await sqlState(analyst, statement) == nil, "\(file.lastPathComponent)")
                    }
                }
            }
        }
    }
}
