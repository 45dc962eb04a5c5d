import AccessAPI
import AccessAPITestSupport
import AccessStore
import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Testing

@Suite("Health, readiness and metrics")
struct HealthTests {
    /// As `serve` runs the service: with its background workers.
    static func asServed(_ configuration: inout AppConfiguration) { configuration.runBackgroundWorkers = true }

    @Test("live and ready answer 200 on a migrated database; /metrics counts them by route and status")
    func readyAndMetrics() async throws {
        try await TestDatabase.with { db in
            try await TestApplication.build(db, configure: Self.asServed).test(.router) { client in
                let api = API(client: client)
                #expect(try await api.send(.get, "/health/live").status == .ok)
                let ready = try await api.send(.get, "/health/ready")
                #expect(ready.status == .ok)
                #expect(ready.text.contains("\"migrations\":\"current\""))
                let text = try await api.send(.get, "/metrics").text
                #expect(text.contains(#"spor_http_requests_total{method="GET",route="/health/ready",status="200"} 1"#))
                #expect(text.contains(#"spor_http_requests_total{method="GET",route="/health/live",status="200"} 1"#))
                #expect(text.contains("spor_http_request_duration_seconds_bucket"))
            }
        }
    }

    @Test("ready answers 503 naming the pending migrations")
    func notReadyWhenPending() async throws {
        try await TestDatabase.with(migrated: false) { db in
            // Only the first migration applied: the rest are pending.
            try await db.withOwnerClient { client in
                try await MigrationRunner(migrations: try MigrationSet(Array(db.migrations.migrations.prefix(1))), logger: TestDatabase.logger)
                    .migrate(client: client)
            }
            guard db.migrations.migrations.count > 1 else { return }
            try await TestApplication.build(db, configure: Self.asServed).test(.router) { client in
                let ready = try await API(client: client).send(.get, "/health/ready")
                #expect(ready.status == .serviceUnavailable)
                #expect(ready.text.contains("migrations pending"))
            }
        }
    }

    @Test("ready answers 503 when the database is unreachable")
    func notReadyWhenUnreachable() async throws {
        let nowhere = DatabaseURL(host: "127.0.0.1", port: 1, username: "nobody", password: nil, database: "none")
        let migrations = try MigrationSet(directory: MigrationSet.defaultDirectory())
        let app = try TestApplication.build(database: nowhere, migrations: migrations, configure: Self.asServed)
        try await app.test(.router) { client in
            let ready = try await API(client: client).send(.get, "/health/ready")
            #expect(ready.status == .serviceUnavailable)
            #expect(ready.text.contains("unreachable"))
        }
    }

    @Test("unknown addresses answer a 404 problem with a request id")
    func notFoundProblem() async throws {
        try await TestDatabase.with { db in
            try await TestApplication.build(db, configure: Self.asServed).test(.router) { client in
                let response = try await API(client: client).send(.get, "/nowhere")
                #expect(response.status == .notFound)
                #expect(response.contentType == "application/problem+json")
                let body = try JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
                #expect(body?["code"] as? String == "not-found")
                #expect(body?["requestId"] as? String == response.headers[HTTPField.Name("X-Request-ID")!])
            }
        }
    }
}
