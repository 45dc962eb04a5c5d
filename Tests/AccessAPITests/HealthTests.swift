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
                // A readiness check has 3 s to get its answer; under the whole suite on two cores one may miss that
                // (503 "no answer within 3 seconds", seen in CI), as a probe then would: it asks again.
                var ready = try await api.send(.get, "/health/ready")
                for _ in 0..<4 where ready.status == .serviceUnavailable && ready.text.contains("no answer within") {
                    ready = try await api.send(.get, "/health/ready")
                }
                #expect(ready.status == .ok)
                #expect(ready.text.contains("\"migrations\":\"current\""))
                let text = try await api.send(.get, "/metrics").text
                #expect(text.contains(#"spor_http_requests_total{method="GET",route="/health/ready",status="200"} 1"#))
                #expect(text.contains(#"spor_http_requests_total{method="GET",route="/health/live",status="200"} 1"#))
                #expect(text.contains("spor_http_request_duration_seconds_bucket"))
            }
        }
    }

    /// Every periodic job of the worker role (R16 outbox, R18 expiry, reminders, R21 grants, R22 reviews).
    static let jobs = ["outbox", "expiry", "reminders", "grants", "reviews"]

    @Test("/metrics shows each background job's last run, next run, duration and failures")
    func jobFigures() async throws {
        try await TestDatabase.with { db in
            try await TestApplication.build(db, configure: Self.asServed).test(.router) { client in
                let api = API(client: client)
                var text = ""
                for _ in 0..<100 {
                    text = try await api.send(.get, "/metrics").text
                    if Self.jobs.allSatisfy({ text.contains("spor_job_last_success_timestamp_seconds{job=\"\($0)\"}") }) { break }
                    try await Task.sleep(for: .milliseconds(100))
                }
                for job in Self.jobs {
                    for figure in [
                        "last_run_timestamp_seconds", "last_success_timestamp_seconds", "next_run_timestamp_seconds", "last_duration_seconds",
                    ] {
                        #expect(text.contains("spor_job_\(figure){job=\"\(job)\"}"), "\(job) \(figure)")
                    }
                    #expect(text.contains("spor_job_failures_total{job=\"\(job)\"} 0"), "\(job) failures")
                }
                // The next run is after the last one.
                let values = Dictionary(
                    uniqueKeysWithValues: text.split(separator: "\n").compactMap { line -> (String, Double)? in
                        let parts = line.split(separator: " ")
                        guard parts.count == 2, parts[0].hasPrefix("spor_job_"), let value = Double(parts[1]) else { return nil }
                        return (String(parts[0]), value)
                    })
                let last = values[#"spor_job_last_run_timestamp_seconds{job="expiry"}"#] ?? 0
                let next = values[#"spor_job_next_run_timestamp_seconds{job="expiry"}"#] ?? 0
                #expect(next >= last + 59, "expiry runs every 60 s: last \(last), next \(next)")
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
