import AccessStore
import Foundation
import Hummingbird
import PostgresNIO

/// `GET /health/live`, `GET /health/ready`, `GET /metrics`.
struct HealthRoutes {
    let client: PostgresClient
    let migrations: MigrationRunner
    let metrics: HTTPMetrics

    func register(on router: Router<AppRequestContext>) {
        router.get("/health/live") { _, _ in
            Self.json(.ok, ["status": "live"])
        }
        router.get("/health/ready") { _, context in
            await self.readiness(logger: context.logger)
        }
        router.get("/metrics") { _, _ in
            Response(
                status: .ok,
                headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: self.metrics.exposition())))
        }
    }

    /// 200 when the database answers and every migration is applied unchanged; 503 naming what is wrong otherwise.
    func readiness(logger: Logger) async -> Response {
        do {
            let problem = try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask { try await self.migrations.problem(client: self.client) }
                group.addTask {
                    try await Task.sleep(for: .seconds(3))
                    throw HealthTimeout()
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            if let problem {
                return Self.json(.serviceUnavailable, ["status": "unavailable", "database": "reachable", "migrations": problem])
            }
            return Self.json(.ok, ["status": "ready", "database": "reachable", "migrations": "current"])
        } catch {
            let reason = error is HealthTimeout ? "no answer within 3 seconds" : Self.describe(error)
            logger.warning("readiness check failed", metadata: ["reason": "\(reason)"])
            return Self.json(.serviceUnavailable, ["status": "unavailable", "database": "unreachable: \(reason)"])
        }
    }

    struct HealthTimeout: Error {}

    static func describe(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            return error.serverInfo?[.message] ?? "\(error.code)"
        }
        return "\(error)"
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
