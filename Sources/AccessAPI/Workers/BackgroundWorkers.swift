import AccessStore
import Foundation
import Logging
import Prometheus
import ServiceLifecycle

/// Runs `work` every `interval` until shutdown; errors are logged and the loop goes on.
///
/// Each round is visible in `/metrics` by job: when it last ran and last succeeded, when it runs next, how long the
/// last round took, and how many rounds failed (`spor_job_*{job="outbox"}`).
struct PeriodicWorker: Service {
    let name: String
    let interval: Duration
    /// The worker starts once the service has its database (it would only log failures before).
    var gate: StartupGate = StartupGate(open: true)
    /// Where the rounds are counted; nil: nowhere (tests of a worker alone).
    var metrics: HTTPMetrics? = nil
    let logger: Logger
    let work: @Sendable () async throws -> Void

    func run() async throws {
        while !gate.isOpen && !Task.isShuttingDownGracefully && !Task.isCancelled {
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .milliseconds(200)) }
        }
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let started = Date()
            let clock = ContinuousClock.now
            do {
                try await work()
                metrics?.recordJob(name, started: started, took: ContinuousClock.now - clock, next: interval, failed: false)
            } catch {
                metrics?.recordJob(name, started: started, took: ContinuousClock.now - clock, next: interval, failed: true)
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
        return PeriodicWorker(name: "outbox", interval: interval, gate: gate, metrics: metrics, logger: logger) {
            while true {
                let round = try await delivery.deliverPending(batch: 50)
                metrics.record(round)
                if round.claimed < 50 { break }
            }
            metrics.record(try await delivery.figures())
        }
    }

    /// Sends the reminders that are due (issue 12): requests pending too long, overdue tickets.
    static func reminders(
        _ requests: AccessRequestStore, interval: Duration, gate: StartupGate, metrics: HTTPMetrics, logger: Logger
    ) -> PeriodicWorker {
        PeriodicWorker(name: "reminders", interval: interval, gate: gate, metrics: metrics, logger: logger) {
            let sent = try await requests.sendReminders()
            if sent > 0 { logger.info("reminders sent", metadata: ["count": "\(sent)"]) }
        }
    }

    /// Ends time-bound grants past their end and sends the notices due before one (R21).
    static func grants(
        _ requests: AccessRequestStore, interval: Duration, gate: StartupGate, metrics: HTTPMetrics, logger: Logger
    ) -> PeriodicWorker {
        PeriodicWorker(name: "grants", interval: interval, gate: gate, metrics: metrics, logger: logger) {
            let (ended, notices) = try await requests.runGrantJobs()
            if ended > 0 || notices > 0 {
                logger.info("time-bound grants", metadata: ["ended": "\(ended)", "notices": "\(notices)"])
            }
        }
    }

    /// Opens the access reviews that are due and closes the due ones (R22).
    static func reviews(
        _ reviews: AccessReviewStore, interval: Duration, gate: StartupGate, metrics: HTTPMetrics, logger: Logger
    ) -> PeriodicWorker {
        PeriodicWorker(name: "reviews", interval: interval, gate: gate, metrics: metrics, logger: logger) {
            let (opened, closed) = try await reviews.runReviewJobs()
            if opened > 0 || closed > 0 {
                logger.info("access reviews", metadata: ["opened": "\(opened)", "closed": "\(closed)"])
            }
        }
    }

    /// Expires pending requests past their expiry (R18).
    static func expiry(
        _ requests: AccessRequestStore, interval: Duration, gate: StartupGate, metrics: HTTPMetrics, logger: Logger
    ) -> PeriodicWorker {
        PeriodicWorker(name: "expiry", interval: interval, gate: gate, metrics: metrics, logger: logger) {
            let expired = try await requests.expireDue()
            if expired > 0 { logger.info("expired pending requests", metadata: ["count": "\(expired)"]) }
        }
    }
}

extension HTTPMetrics {
    /// One round of a periodic job: its start, its end's duration, when the next one starts, and whether it failed.
    func recordJob(_ job: String, started: Date, took: Duration, next interval: Duration, failed: Bool) {
        let labels = [("job", job)]
        let seconds = Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18
        let pause = Double(interval.components.seconds) + Double(interval.components.attoseconds) / 1e18
        func gauge(_ name: String, _ unit: String, _ help: String) -> Gauge {
            registry.makeGauge(
                descriptor: MetricNameDescriptor(namespace: "spor", subsystem: "job", metricName: name, unitName: unit, helpText: help),
                labels: labels)
        }
        gauge("last_run", "timestamp_seconds", "When the job's last round started (Unix time)").set(started.timeIntervalSince1970)
        gauge("last_duration", "seconds", "How long the job's last round took").set(seconds)
        gauge("next_run", "timestamp_seconds", "When the job's next round starts at the latest (Unix time)")
            .set(started.timeIntervalSince1970 + seconds + pause)
        let failures = registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "spor", subsystem: "job", metricName: "failures", unitName: "total", helpText: "Rounds of the job that failed"),
            labels: labels)
        if failed {
            failures.increment()
        } else {
            gauge("last_success", "timestamp_seconds", "When the job's last successful round started (Unix time)")
                .set(started.timeIntervalSince1970)
        }
    }

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
