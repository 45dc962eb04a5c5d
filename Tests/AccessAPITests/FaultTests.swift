import AccessAPI
import AccessAPITestSupport
import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PostgresNIO
import Testing

// Faults (issue 13): the database away, a lock held elsewhere, the pool exhausted, the database not there at start.
// Every call gets an answer within a bound, and that answer is a 503 problem with Retry-After that changed nothing —
// never a hang, a 500 or a 400. (The restart and SIGTERM scenarios run against a real process: Benchmarks/faults.)

@Suite("Faults: bounded waits and 503 answers")
struct FaultTests {
    static let nowhere = DatabaseURL(host: "127.0.0.1", port: 1, username: "nobody", password: nil, database: "none")

    static func expectUnavailable(_ reply: API.Reply, code: String, _ comment: String = "") {
        #expect(reply.status == .serviceUnavailable, "\(comment) \(reply.status) \(reply.text)")
        #expect(reply.code == code, "\(comment) \(reply.text)")
        #expect(reply.contentType == "application/problem+json")
        #expect(Int(reply.headers[.retryAfter] ?? "") ?? 0 >= 1, "\(comment): Retry-After")
    }

    /// Until a backend of the test database waits on a lock (the call under test has reached the held lock).
    static func untilWaitingOnLock(_ f: Fixture, count: Int = 1) async throws {
        for _ in 0..<200 {
            let waiting = try await f.ownerQuery(
                "SELECT count(*)::text FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'")
            if let first = waiting.first, let number = Int(first), number >= count { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("no call came to wait on the lock")
    }

    @Test("The database unreachable: a signed-in call is a 503 database-unavailable problem within the connection wait")
    func unreachableDatabase() async throws {
        let migrations = try MigrationSet(directory: MigrationSet.defaultDirectory())
        let app = try TestApplication.build(database: Self.nowhere, migrations: migrations) { $0.connectionWait = .seconds(1) }
        try await app.test(.router) { client in
            let api = API(client: client)
            let started = ContinuousClock.now
            let me = try await api.call(.get, "/v1/me", token: "any-token")
            Self.expectUnavailable(me, code: "database-unavailable", "GET /v1/me")
            let register = try await api.call(
                .post, "/v1/accounts", ["email": "x@example.com", "displayName": "X", "password": "correct horse battery"])
            Self.expectUnavailable(register, code: "database-unavailable", "POST /v1/accounts")
            #expect(ContinuousClock.now - started < .seconds(15))
            #expect(try await api.send(.get, "/health/live").status == .ok)
        }
    }

    @Test("A lock held elsewhere: the command gives up after lock_timeout with 503, and nothing was written", .timeLimit(.minutes(1)))
    func lockHeldElsewhere() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            let applicant = try await f.user("applicant")
            // The SQL half: the application role's own logins wait 5 s at most for a lock (0037).
            let setting = try await f.db.withApplicationClient { client in
                try await client.query("SHOW lock_timeout").collect().first?.decode(String.self)
            }
            #expect(setting == "5s")
            try await f.owner.withConnection { holder in
                _ = try await holder.query("BEGIN", logger: TestDatabase.logger).collect()
                _ = try await holder.query("SELECT 1 FROM organisations WHERE id = \(org.rawValue) FOR UPDATE", logger: TestDatabase.logger).collect()
                try await TestApplication.build(f.db).test(.router) { client in
                    let started = ContinuousClock.now
                    let reply = try await API(client: client).call(
                        .post, "/v1/access-requests", token: applicant.bearerToken,
                        ["role": "spor-industry-user", "organisationId": org.rawValue])
                    Self.expectUnavailable(reply, code: "database-unavailable", "file while the organisation is locked")
                    let waited = ContinuousClock.now - started
                    #expect(waited >= .seconds(4) && waited < .seconds(15), "\(waited)")
                }
                _ = try await holder.query("ROLLBACK", logger: TestDatabase.logger).collect()
            }
            #expect(try await f.ownerQuery("SELECT count(*)::text FROM access_requests WHERE requester_id = \(applicant.id.rawValue)") == ["0"])
        }
    }

    @Test("The pool exhausted: a call waits at most the connection wait, then 503 with Retry-After", .timeLimit(.minutes(1)))
    func poolExhausted() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            let (first, second) = (try await f.user("first"), try await f.user("second"))
            try await f.owner.withConnection { holder in
                _ = try await holder.query("BEGIN", logger: TestDatabase.logger).collect()
                _ = try await holder.query("SELECT 1 FROM organisations WHERE id = \(org.rawValue) FOR UPDATE", logger: TestDatabase.logger).collect()
                let app = try TestApplication.build(f.db) {
                    $0.maximumDatabaseConnections = 1
                    $0.connectionWait = .seconds(1)
                }
                try await app.test(.router) { client in
                    let api = API(client: client)
                    // The first call takes the pool's one connection and waits on the lock; the second finds no
                    // connection free and is answered after the connection wait, long before the lock gives up.
                    async let blocked = api.call(
                        .post, "/v1/access-requests", token: first.bearerToken, ["role": "spor-industry-user", "organisationId": org.rawValue])
                    try await Self.untilWaitingOnLock(f)
                    let started = ContinuousClock.now
                    let queued = try await api.call(.get, "/v1/me", token: second.bearerToken)
                    let waited = ContinuousClock.now - started
                    Self.expectUnavailable(queued, code: "database-unavailable", "a call with no free connection")
                    #expect(queued.text.contains("no database connection became free"))
                    #expect(waited < .seconds(4), "answered after the connection wait, not the lock timeout: \(waited)")
                    Self.expectUnavailable(try await blocked, code: "database-unavailable", "the call waiting on the lock")
                }
                _ = try await holder.query("ROLLBACK", logger: TestDatabase.logger).collect()
            }
        }
    }

    /// The attack first (no per-organisation limit: the pool's size), then the fix (the default, half the pool): a
    /// burst of calls for one organisation whose lock is held elsewhere, and meanwhile a call of someone else.
    @Test(
        "Calls queued on one organisation's lock take at most half the pool: the others still get a connection",
        .timeLimit(.minutes(1)), arguments: [4, nil] as [Int?])
    func oneOrganisationCannotTakeThePool(perOrganisation: Int?) async throws {
        try await Fixture.with { f in
            let (busy, other) = (try await f.organisation(), try await f.organisation())
            _ = try await f.superUser(of: busy)
            _ = try await f.superUser(of: other)
            var burst: [TestAccount] = []
            for index in 0..<4 { burst.append(try await f.user("burst\(index)")) }
            let applicants = burst
            let bystander = try await f.user("bystander")
            try await f.owner.withConnection { holder in
                _ = try await holder.query("BEGIN", logger: TestDatabase.logger).collect()
                _ = try await holder.query("SELECT 1 FROM organisations WHERE id = \(busy.rawValue) FOR UPDATE", logger: TestDatabase.logger)
                    .collect()
                let app = try TestApplication.build(f.db) {
                    $0.maximumDatabaseConnections = 4
                    $0.maximumConnectionsPerOrganisation = perOrganisation
                    $0.connectionWait = .seconds(2)
                }
                try await app.test(.router) { client in
                    let api = API(client: client)
                    try await withThrowingTaskGroup(of: API.Reply.self) { group in
                        for applicant in applicants {
                            group.addTask {
                                try await api.call(
                                    .post, "/v1/access-requests", token: applicant.bearerToken,
                                    ["role": "spor-industry-user", "organisationId": busy.rawValue])
                            }
                        }
                        try await Self.untilWaitingOnLock(f, count: perOrganisation == nil ? 2 : 4)
                        try await Task.sleep(for: .milliseconds(200))  // the rest of the burst reaches the pool
                        let started = ContinuousClock.now
                        let meanwhile = try await api.call(
                            .post, "/v1/access-requests", token: bystander.bearerToken,
                            ["role": "spor-industry-user", "organisationId": other.rawValue])
                        let waited = ContinuousClock.now - started
                        if perOrganisation == nil {
                            #expect(meanwhile.status == .created, "another organisation's call: \(meanwhile.status) \(meanwhile.text)")
                            #expect(waited < .seconds(2), "answered without waiting for the busy organisation: \(waited)")
                        } else {
                            // Without the limit the burst holds every connection: the bystander is refused with it.
                            Self.expectUnavailable(meanwhile, code: "database-unavailable", "with the pool taken by one organisation")
                        }
                        _ = try await holder.query("ROLLBACK", logger: TestDatabase.logger).collect()
                        for try await reply in group {
                            #expect(
                                reply.status == .created || reply.status == .serviceUnavailable,
                                "a call of the burst: \(reply.status) \(reply.text)")
                        }
                    }
                }
            }
        }
    }

    @Test("More calls in progress than the limit: the rest are answered 503 overloaded at once")
    func inFlightLimit() async throws {
        try await Fixture.with { f in
            let org = try await f.organisation()
            _ = try await f.superUser(of: org)
            let applicant = try await f.user("applicant")
            try await f.owner.withConnection { holder in
                _ = try await holder.query("BEGIN", logger: TestDatabase.logger).collect()
                _ = try await holder.query("SELECT 1 FROM organisations WHERE id = \(org.rawValue) FOR UPDATE", logger: TestDatabase.logger).collect()
                try await TestApplication.build(f.db, configure: { $0.maximumRequestsInFlight = 1 }).test(.router) { client in
                    let api = API(client: client)
                    async let blocked = api.call(
                        .post, "/v1/access-requests", token: applicant.bearerToken,
                        ["role": "spor-industry-user", "organisationId": org.rawValue])
                    try await Self.untilWaitingOnLock(f)
                    Self.expectUnavailable(try await api.call(.get, "/v1/me", token: applicant.bearerToken), code: "overloaded")
                    #expect(try await api.send(.get, "/health/live").status == .ok, "health is not counted")
                    _ = try await blocked
                }
                _ = try await holder.query("ROLLBACK", logger: TestDatabase.logger).collect()
            }
        }
    }

    @Test("Start-up with the database unreachable: ready explains, API calls are 503 starting, health and metrics answer")
    func startupWaitsForTheDatabase() async throws {
        let migrations = try MigrationSet(directory: MigrationSet.defaultDirectory())
        let app = try TestApplication.build(database: Self.nowhere, migrations: migrations) {
            $0.startup = .waitForDatabase(migrateWith: Self.nowhere)
        }
        try await app.test(.router) { client in
            let api = API(client: client)
            var ready = try await api.send(.get, "/health/ready")
            for _ in 0..<50 where !ready.text.contains("cannot be reached") {
                try await Task.sleep(for: .milliseconds(100))
                ready = try await api.send(.get, "/health/ready")
            }
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.json["status"] as? String == "starting")
            let why = ready.json["database"] as? String ?? ""
            #expect(why.contains("127.0.0.1:1 cannot be reached: connection refused") && why.contains("trying again every second"), "\(why)")
            let call = try await api.call(.get, "/v1/organisations?q=acme")
            Self.expectUnavailable(call, code: "starting", "an API call before the database answered")
            #expect((call.json["detail"] as? String ?? "").contains("cannot be reached"))
            #expect(try await api.send(.get, "/health/live").status == .ok)
            #expect(try await api.send(.get, "/metrics").status == .ok)
        }
    }

    @Test("Start-up migrates, then opens the API once the database answers")
    func startupOpensTheGate() async throws {
        try await TestDatabase.with(migrated: false) { db in
            let app = try TestApplication.build(db) { $0.startup = .waitForDatabase(migrateWith: db.owner) }
            try await app.test(.router) { client in
                let api = API(client: client)
                var ready = try await api.send(.get, "/health/ready")
                // Up to two minutes: migrating a new database from scratch takes seconds alone, far longer while the
                // rest of the suite runs beside it on two cores.
                for _ in 0..<1200 where ready.status != .ok {
                    try await Task.sleep(for: .milliseconds(100))
                    ready = try await api.send(.get, "/health/ready")
                }
                #expect(ready.status == .ok, "\(ready.text)")
                #expect(try await api.call(.get, "/v1/organisations?q=acme").status == .ok)
            }
        }
    }
}
