import AccessStore
import Logging
import Prometheus
import ServiceLifecycle

/// Runs `work` every `interval` until shutdown; errors are logged and the loop goes on.
struct PeriodicWorker: Service {
    let name: String
    let interval: Duration
    /// The worker starts once the service has its database (it would only log failures before).
    var gate: StartupGate = StartupGate(open: true)
    let logger: Logger
    let work: @Sendable () async throws -> Void

    func run() async throws {
        while !gate.isOpen && !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(200)) }
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            do {
                try await work()
            } catch {
                logger.error("background work failed", metadata: ["worker": "\(name)", "error": "\(StoreErrors.describe(error))"])
            }
            // The pause ends at once on graceful shutdown, so SIGTERM is not held up by a sleeping worker.
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

extension PeriodicWorker {
    /// Delivers the notification outbox (R16): rounds of up to 50 messages until the due ones are done, then the
    /// queue's figures for `/metrics`.
    static func outbox(
        _ delivery: NotificationDelivery, metrics: HTTPMetrics, interval: Duration, gate: StartupGate, logger: Logger
    ) -> PeriodicWorker {
        metrics.record(DeliveryRound())
        return PeriodicWorker(name: "outbox", interval: interval, gate: gate, logger: logger) {
            while true {
                let round = try await delivery.deliverPending(batch: 50)
                metrics.record(round)
                if round.claimed < 50 { break }
            }
            metrics.record(try await delivery.figures())
        }
    }

    /// Expires pending requests past their expiry (R18).
    static func expiry(_ requests: AccessRequestStore, interval: Duration, gate: StartupGate, logger: Logger) -> PeriodicWorker {
        PeriodicWorker(name: "expiry", interval: interval, gate: gate, logger: logger) {
            let expired = try await requests.expireDue()
            if expired > 0 { logger.info("expired pending requests", metadata: ["count": "\(expired)"]) }
        }
    }
}

extension HTTPMetrics {
    /// Adds a delivery round to the mail counters (sent, failed attempts, dead).
    func record(_ round: DeliveryRound) {
        for (name, help, value) in [
            ("sent", "Messages handed to the mail server (or written to the mail folder)", round.sent),
            ("failed", "Delivery attempts that failed for now (to be tried again, or out of attempts)", round.failed),
            ("dead", "Messages given up (a permanent failure, or out of attempts)", round.dead),
        ] {
            registry.makeCounter(
                descriptor: MetricNameDescriptor(namespace: "spor", subsystem: "mail", metricName: name, unitName: "total", helpText: help)
            ).increment(by: Int64(value))
        }
    }

    /// Sets the outbox gauges: messages waiting, dead ones, and the age of the oldest waiting.
    func record(_ figures: OutboxFigures) {
        registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "spor", subsystem: "mail", metricName: "queue_depth", unitName: "", helpText: "Messages waiting to be delivered")
        ).set(Double(figures.queued))
        registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "spor", subsystem: "mail", metricName: "dead_messages", unitName: "", helpText: "Messages given up, until requeued")
        ).set(Double(figures.dead))
        registry.makeGauge(
            descriptor: MetricNameDescriptor(
                namespace: "spor", subsystem: "mail", metricName: "oldest_queued_age", unitName: "seconds",
                helpText: "Age of the oldest message waiting to be delivered")
        ).set(figures.oldestQueuedAge)
    }
}
