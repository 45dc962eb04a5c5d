import AccessStore
import AccessTestSupport
import EmbeddedPostgres
import Foundation
import PostgresNIO
import Testing

@Suite("Embedded PostgreSQL cluster")
struct EmbeddedPostgresTests {
    @Test("without server binaries the error names what to install")
    func missingBinaries() {
        let error = #expect(throws: EmbeddedPostgresError.self) {
            try PostgresBinaries.locate(path: "/nonexistent/bin", installRoot: "/nonexistent/lib")
        }
        #expect(error?.description.contains("apt-get install postgresql") == true)
        #expect(error?.description.contains("DATABASE_URL") == true)
    }

    @Test("a cluster starts in a new folder, stops, and the same folder is reused on the next start")
    func startStopReuse() async throws {
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("spor-embedded-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: folder) }
        let cluster = try EmbeddedPostgres(configuration: .init(dataDirectory: folder), logger: TestDatabase.logger)
        let first = try await cluster.start()
        let provisioned = try await cluster.provision(first, database: "spor_access")
        try await TestDatabase.withClient(provisioned.owner) { client in
            try await client.query("CREATE TABLE kept (value text)")
            try await client.query("INSERT INTO kept VALUES ('still here')")
        }
        #expect(cluster.isRunning)
        try await cluster.stop()
        #expect(!cluster.isRunning)
        #expect(!FileManager.default.fileExists(atPath: folder.appendingPathComponent("pgdata/postmaster.pid").path))

        let second = try await cluster.start()
        let again = try await cluster.provision(second, database: "spor_access")
        #expect(again.owner.password == provisioned.owner.password)
        // Background work has a login of its own (issue 9): spor_worker, with a password kept like the others.
        let worker = try #require(again.worker)
        #expect(worker.password == provisioned.worker?.password && worker.username == DatabaseRole.worker)
        let who = try await TestDatabase.withClient(worker) { client in
            var names: [String] = []
            for try await name in try await client.query("SELECT current_user::text").decode(String.self) { names.append(name) }
            return names
        }
        #expect(who == [DatabaseRole.worker])
        let value = try await TestDatabase.withClient(again.owner) { client in
            var values: [String] = []
            for try await value in try await client.query("SELECT value FROM kept").decode(String.self) { values.append(value) }
            return values
        }
        try await cluster.stop()
        #expect(value == ["still here"])
    }
}
