import AccessStore
import Logging
import ServiceLifecycle

/// Runs `work` every `interval` until shutdown; errors are logged and the loop goes on.
struct PeriodicWorker: Service {
    let name: String
    let interval: Duration
    let logger: Logger
    let work: @Sendable () async throws -> Void

    func run() async throws {
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await work()
            } catch {
                logger.error("background work failed", metadata: ["worker": "\(name)", "error": "\(error)"])
            }
            // The pause ends at once on graceful shutdown, so SIGTERM is not held up by a sleeping worker.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

extension PeriodicWorker {
    /// Delivers the notification outbox (R16).
    static func outbox(_ delivery: NotificationDelivery, interval: Duration, logger: Logger) -> PeriodicWorker {
        PeriodicWorker(name: "outbox", interval: interval, logger: logger) {
            while try await delivery.deliverPending(batch: 100) == 100 {}
        }
    }

    /// Expires pending requests past their expiry (R18).
    static func expiry(_ requests: AccessRequestStore, interval: Duration, logger: Logger) -> PeriodicWorker {
        PeriodicWorker(name: "expiry", interval: interval, logger: logger) {
            let expired = try await requests.expireDue()
            if expired > 0 { logger.info("expired pending requests", metadata: ["count": "\(expired)"]) }
        }
    }
}
