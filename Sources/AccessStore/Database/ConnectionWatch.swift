import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Watches the calls in flight for their connection closing under them, and fails a call whose connection has been
/// closed for a second without it ending.
///
/// Why: PostgresNIO 1.33 writes a statement to its channel without a write promise. When the pool leases a
/// connection that PostgreSQL is just closing (a restart: every backend is terminated with 57P01, and the pool hears
/// of it only once the channel is closed), a statement written after the channel handler is gone is dropped, and the
/// call waits for an answer that never comes — an HTTP call that is never answered, and (the body holding its lease)
/// a shutdown that never ends. Reproduced by Benchmarks/faults/db-restart.sh: 1–3 of 8 calls in flight per restart.
///
/// A statement on a closed connection cannot be answered any more, so failing it is safe: the transaction was not
/// committed by that call (or, if the COMMIT itself was lost, the client is told 503, as for any lost connection,
/// and retries with its Idempotency-Key). The body runs in a task of its own, so the caller is answered and the
/// lease returned (the closed connection leaves the pool) even though the lost statement's task never ends.
package final class ConnectionWatch: Sendable {
    package static let shared = ConnectionWatch()

    /// How often the connections of the calls in flight are looked at, and how many looks in a row a connection
    /// must be closed before its call is failed.
    static let interval: Duration = .milliseconds(250)
    static let closedLooks = 4

    private struct Call {
        let connection: PostgresConnection
        let fail: @Sendable () -> Void
        var closedLooks = 0
    }

    private struct State {
        var next: UInt64 = 0
        var calls: [UInt64: Call] = [:]
        var watching = false
    }

    private let state = Mutex(State())

    /// Runs `body` on `connection`; if the connection is closed (or closes) and `body` has not ended a second later,
    /// the call fails with `StoreError.unavailable`.
    package func run<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T, on connection: PostgresConnection, logger: Logger
    ) async throws -> T {
        if connection.isClosed { throw StoreError.unavailable("the connection to PostgreSQL was closed") }
        let answer = Answer<T>()
        return try await withCheckedThrowingContinuation { continuation in
            answer.set(continuation)
            let id = add(connection) {
                logger.warning("a database call was lost with its connection (PostgreSQL closed it); answering 503")
                answer.resume(.failure(StoreError.unavailable("the connection to PostgreSQL was lost during the call")))
            }
            Task {
                let result: Result<T, any Error>
                do { result = .success(try await body(connection)) } catch { result = .failure(error) }
                self.remove(id)
                answer.resume(result)
            }
        }
    }

    private func add(_ connection: PostgresConnection, fail: @escaping @Sendable () -> Void) -> UInt64 {
        let (id, start) = state.withLock { state in
            state.next += 1
            state.calls[state.next] = Call(connection: connection, fail: fail)
            let start = !state.watching
            state.watching = true
            return (state.next, start)
        }
        if start { Task { await self.watch() } }
        return id
    }

    private func remove(_ id: UInt64) {
        _ = state.withLock { $0.calls.removeValue(forKey: id) }
    }

    /// Looks at the calls in flight every `interval` while there are any.
    private func watch() async {
        while true {
            try? await Task.sleep(for: Self.interval)
            let lost: [@Sendable () -> Void]? = state.withLock { state in
                if state.calls.isEmpty {
                    state.watching = false
                    return nil
                }
                var lost: [@Sendable () -> Void] = []
                for (id, var call) in state.calls {
                    call.closedLooks = call.connection.isClosed ? call.closedLooks + 1 : 0
                    if call.closedLooks >= Self.closedLooks {
                        lost.append(call.fail)
                        state.calls.removeValue(forKey: id)
                    } else {
                        state.calls[id] = call
                    }
                }
                return lost
            }
            guard let lost else { return }
            for fail in lost { fail() }
        }
    }

    /// The one answer of a call: the body's, or the watch's, whichever comes first.
    private final class Answer<T: Sendable>: Sendable {
        private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

        func set(_ continuation: CheckedContinuation<T, any Error>) {
            self.continuation.withLock { $0 = continuation }
        }

        func resume(_ result: Result<T, any Error>) {
            let waiting = continuation.withLock { slot -> CheckedContinuation<T, any Error>? in
                defer { slot = nil }
                return slot
            }
            waiting?.resume(with: result)
        }
    }
}
