import Foundation
import Hummingbird
import Prometheus

/// Request counts and latency histograms by route and status, in a Prometheus registry (no global state, so
/// each application — and each test — has its own).
public final class HTTPMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    static let buckets: [Duration] = [
        .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50),
        .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
    ]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
    }

    func record(method: String, route: String, status: Int, duration: Duration) {
        let labels = [("method", method), ("route", route), ("status", String(status))]
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "spor", subsystem: "http", metricName: "requests", unitName: "total",
                helpText: "HTTP requests served, by method, route and status"),
            labels: labels
        ).increment()
        registry.makeDurationHistogram(
            descriptor: MetricNameDescriptor(
                namespace: "spor", subsystem: "http", metricName: "request_duration", unitName: "seconds",
                helpText: "Time to produce the response, by method, route and status"),
            labels: labels, buckets: Self.buckets
        ).record(duration)
    }

    /// A command refused because its organisation already had its share of the pool busy (`TenantAdmission`).
    func recordAdmissionRefusal() {
        registry.makeCounter(
            descriptor: MetricNameDescriptor(
                namespace: "spor", subsystem: "database", metricName: "organisation_admission_refused", unitName: "total",
                helpText: "Commands answered 503 because their organisation already held its share of the connection pool")
        ).increment()
    }

    /// The Prometheus text exposition.
    public func exposition() -> String { registry.emitToString() }
}

/// Records every response (problems included) in `HTTPMetrics`. Routes are the matched patterns
/// (`/v1/organisations/{orgId}`), so the label set stays small.
struct HTTPMetricsMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let metrics: HTTPMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        metrics.record(
            method: request.method.rawValue, route: context.endpointPath ?? "unmatched",
            status: response.status.code, duration: ContinuousClock.now - start)
        return response
    }
}
