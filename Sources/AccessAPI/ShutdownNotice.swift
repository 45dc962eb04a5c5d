import Dispatch
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Whether SIGTERM or SIGINT has arrived, known on every thread the moment it does.
///
/// ServiceLifecycle starts the graceful shutdown (and so `Task.isShuttingDownGracefully`) from a task of Swift's
/// cooperative pool; under load that task waits its turn behind the requests, and `Benchmarks/faults/sigterm.sh` saw
/// calls answered 20–35 ms after the signal still without `Connection: close`. This flag is set by a dispatch
/// signal source on a queue of its own, which does not wait for the pool; `ResponseHeadersMiddleware` reads both.
///
/// Its source shares libdispatch's handling of the signal with ServiceLifecycle's own (one per signal, muxed), so it
/// fires whenever the shutdown itself is triggered. Proven by `Benchmarks/faults/sigterm.sh`, not by a unit test: in
/// the test runner's process a signal sent to the process was not always seen by dispatch (other threads may take
/// it, and the disposition is "ignore"), so a test of it failed under the full suite.
public final class ShutdownNotice: Sendable {
    /// The service's own: `serve` watches SIGTERM and SIGINT with it.
    public static let shared = ShutdownNotice()

    private let received = Atomic<Bool>(false)
    private let sources = Mutex<[any DispatchSourceSignal]>([])

    public init() {}

    /// True once a watched signal has arrived.
    public var hasBegun: Bool { received.load(ordering: .relaxed) }

    /// Watches `signals` (the ones `runService` shuts down on); call before the service runs.
    public func watch(_ signals: [Int32] = [SIGTERM, SIGINT]) {
        let queue = DispatchQueue(label: "spor-access.shutdown-notice")
        sources.withLock { sources in
            for number in signals {
                signal(number, SIG_IGN)  // as ServiceLifecycle does: the dispatch source, not the default action, handles it
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { [self] in received.store(true, ordering: .relaxed) }
                source.resume()
                sources.append(source)
            }
        }
    }
}
