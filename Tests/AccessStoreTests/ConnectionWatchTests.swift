import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// The watch that answers a call whose connection PostgreSQL closed under it (ConnectionWatch.swift): PostgresNIO
// drops a statement written to a connection that is closing, and its call would wait for ever.

@Suite("Calls lost with their connection are answered")
struct ConnectionWatchTests {
    @Test("A call on a connection that is already closed fails at once with unavailable")
    func closedBeforeTheCall() async throws {
        try await TestDatabase.with { db in
            try await db.owner.withSingleConnection(logger: TestDatabase.logger) { connection in
                try await connection.close()
                await #expect(throws: StoreError.unavailable("the connection to PostgreSQL was closed")) {
                    try await ConnectionWatch.shared.run(
                        { connection in try await connection.query("SELECT 1", logger: TestDatabase.logger).collect().count },
                        on: connection, logger: TestDatabase.logger)
                }
            }
        }
    }

    @Test("A call whose answer never comes fails about a second after its connection closed", .timeLimit(.minutes(1)))
    func closedDuringTheCall() async throws {
        try await TestDatabase.with { db in
            try await db.owner.withSingleConnection(logger: TestDatabase.logger) { connection in
                let started = ContinuousClock.now
                // The body stands for a statement whose answer was lost: it never ends by itself.
                let call = Task {
                    try await ConnectionWatch.shared.run(
                        { _ in
                            try await Task.sleep(for: .seconds(3600))
                            return 0
                        }, on: connection, logger: TestDatabase.logger)
                }
                try await Task.sleep(for: .milliseconds(300))
                try await connection.close()
                await #expect(throws: StoreError.unavailable("the connection to PostgreSQL was lost during the call")) {
                    try await call.value
                }
                let waited = ContinuousClock.now - started
                #expect(waited < .seconds(5), "\(waited)")
            }
        }
    }

    @Test("A connection killed by PostgreSQL mid-statement is an unavailable error, not a hang", .timeLimit(.minutes(1)))
    func terminatedBackend() async throws {
        try await Fixture.with { f in
            try await f.db.application.withSingleConnection(logger: TestDatabase.logger) { connection in
                let backend = try await connection.query("SELECT pg_backend_pid()", logger: TestDatabase.logger).collect().first!
                    .decode(Int32.self)
                let call = Task {
                    try await ConnectionWatch.shared.run(
                        { connection in try await connection.query("SELECT pg_sleep(30)", logger: TestDatabase.logger).collect().count },
                        on: connection, logger: TestDatabase.logger)
                }
                try await Task.sleep(for: .milliseconds(300))
                _ = try await f.ownerQuery("SELECT pg_terminate_backend(\(backend))::text")
                await #expect(throws: (any Error).self) { try await call.value }
                // The channel closes just after the error arrives (asynchronously): wait for it, briefly.
                for _ in 0..<50 where !connection.isClosed { try await Task.sleep(for: .milliseconds(100)) }
                #expect(connection.isClosed)
            }
        }
    }
}
