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
    private let queue = DispatchQueue(label: "spor-access.shutdown-notice")
    private let deadline = Mutex<ShutdownDeadline?>(nil)

    public init() {}

    /// True once a watched signal has arrived.
    public var hasBegun: Bool { received.load(ordering: .relaxed) }

    /// Bounds the shutdown: if the process is still running `limit` after the first watched signal, `expired` runs
    /// on the notice's own queue (not on Swift's pool or an event loop, so it runs whatever they are doing) and is
    /// expected to end the process. A graceful shutdown that never finishes (a task awaiting something nobody will
    /// resume) then ends in a bounded time, with a log line, instead of a process a supervisor has to kill.
    public func limitShutdown(to limit: Duration, expired: @escaping @Sendable () -> Void) {
        deadline.withLock { $0 = ShutdownDeadline(limit: limit, expired: expired) }
    }

    /// What a watched signal does: the flag, and on the first one the deadline's timer. The signal sources call it;
    /// tests call it in their place (a signal sent to the test runner is not reliably seen by dispatch).
    public func begin() {
        guard !received.exchange(true, ordering: .relaxed) else { return }
        guard let deadline = deadline.withLock({ $0 }) else { return }
        let nanoseconds = deadline.limit.components.seconds * 1_000_000_000 + deadline.limit.components.attoseconds / 1_000_000_000
        queue.asyncAfter(deadline: .now() + .nanoseconds(Int(clamping: nanoseconds)), execute: deadline.expired)
    }

    /// Watches `signals` (the ones `runService` shuts down on); call before the service runs.
    public func watch(_ signals: [Int32] = [SIGTERM, SIGINT]) {
        sources.withLock { sources in
            for number in signals {
                signal(number, SIG_IGN)  // as ServiceLifecycle does: the dispatch source, not the default action, handles it
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { [self] in begin() }
                source.resume()
                sources.append(source)
            }
        }
    }
}

/// How long a shutdown may take, and what ends the process when it takes longer.
private struct ShutdownDeadline: Sendable {
    let limit: Duration
    let expired: @Sendable () -> Void
}
