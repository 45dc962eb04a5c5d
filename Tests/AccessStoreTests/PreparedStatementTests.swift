import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

/// Issue 10: the four statements of a request+approve pair are parsed and planned once per connection (named
/// prepared statements), and sent as plain statements when switched off (pgbouncer in transaction mode).
@Suite("The pair's statements are prepared once per connection")
struct PreparedStatementTests {
    /// Files and approves one request through a pool of one connection, then lists that connection's prepared
    /// statements (`pg_prepared_statements` shows the session's own).
    static func pair(prepared: Bool) async throws -> [String] {
        try await Fixture.with { f in
            let org = try await f.organisation()
            let superUser = try await f.superUser(of: org)
            let applicants = [try await f.user("first"), try await f.user("second")]
            return try await f.db.withApplicationClient(maximumConnections: 1) { client in
                var database = Database(client: client, logger: TestDatabase.logger)
                database.preparedStatements = prepared
                let requests = AccessRequestStore(database: database)
                for applicant in applicants {  // the second pair runs on the statements the first prepared
                    let filed = try await requests.submit(actor: applicant, role: .industryUser, organisation: org, justification: nil)
                    #expect(filed.request.status == .pending)
                    let decided = try await requests.decide(
                        actor: superUser, request: filed.request.id, channel: .organisation, action: .approve,
                        expectedOrganisation: org)
                    #expect(decided.request.status == .approved)
                    #expect(decided.grant != nil)
                }
                return try await client.withConnection { connection in
                    try await connection.query("SELECT name FROM pg_prepared_statements ORDER BY name", logger: TestDatabase.logger)
                        .collect().map { try $0.decode(String.self) }
                }
            }
        }
    }

    @Test("Prepared: the facts reads and the commands of the pair are named statements of the connection")
    func preparedOnce() async throws {
        let names = try await Self.pair(prepared: true)
        #expect(names == ["spor.DecideRequest", "spor.DecisionFacts", "spor.FileRequest", "spor.SubmissionFacts"], "\(names)")
    }

    @Test("Switched off (behind pgbouncer): the same pair, and no statement stays prepared on the connection")
    func notPrepared() async throws {
        let names = try await Self.pair(prepared: false)
        #expect(names == [], "\(names)")
    }
}
