import AccessStore
import Foundation
import Hummingbird
import Logging

/// `GET /health/live`, `GET /health/ready`, `GET /metrics`.
struct HealthRoutes {
    let database: Database
    let migrations: MigrationSet
    let metrics: HTTPMetrics
    var gate = StartupGate(open: true)

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
        if let reason = gate.reason {
            return Self.json(.serviceUnavailable, ["status": "starting", "database": reason])
        }
        switch await database.readiness(of: migrations) {
        case .ready:
            return Self.json(.ok, ["status": "ready", "database": "reachable", "migrations": "current"])
        case .migrationsNotCurrent(let problem):
            return Self.json(.serviceUnavailable, ["status": "unavailable", "database": "reachable", "migrations": problem])
        case .unreachable(let reason):
            logger.warning("readiness check failed", metadata: ["reason": "\(reason)"])
            return Self.json(.serviceUnavailable, ["status": "unavailable", "database": "unreachable: \(reason)"])
        }
    }

    static func json(_ status: HTTPResponse.Status, _ object: [String: String]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}
