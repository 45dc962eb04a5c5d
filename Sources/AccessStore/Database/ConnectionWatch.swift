import Foundation
import Logging
import PostgresNIO
import Synchronization

/// Every database call in flight, watched by one background loop: a call still waiting for a pooled connection
/// after its bound is answered `StoreError.unavailable` (and its lease request cancelled), and a call whose
/// connection has been closed under it for a second is answered `StoreError.unavailable` too.
///
/// Why the second: PostgresNIO 1.33 writes a statement to its channel without a write promise. When the pool leases
/// a connection that PostgreSQL is just closing (a restart: every backend is terminated with 57P01, and the pool
/// hears of it only once the channel is closed), a statement written after the channel handler is gone is dropped,
/// and the call waits for an answer that never comes — an HTTP call that is never answered, and (the body holding
/// its lease) a shutdown that never ends. Reproduced by Benchmarks/faults/db-restart.sh: 1–3 of 8 calls in flight
/// per restart. A statement on a closed connection cannot be answered any more, so failing it is safe: nothing was
/// committed by that call (or, if the COMMIT itself was lost, the client is told 503, as for any lost connection,
/// and retries with its Idempotency-Key).
///
/// Each call's work runs in a task of its own, so the caller is answered (and, for a lost statement, the lease
/// returned: the closed connection leaves the pool) even though a lost statement's task never ends. One loop for all
/// calls (every `interval`, only while calls are in flight) instead of a timer per call keeps the cost per call to a
/// task, a continuation and two short locks.
package final class ConnectionWatch: Sendable {
    package static let shared = ConnectionWatch()

    /// How often the calls in flight are looked at, and how many looks in a row a connection must be closed before
    /// its call is failed.
    static let interval: Duration = .milliseconds(250)
    static let closedLooks = 4

    private enum Phase {
        case leasing(deadline: ContinuousClock.Instant, wait: Duration)
        case running(PostgresConnection, closedLooks: Int)
    }

    private struct Call {
        var phase: Phase
        let logger: Logger
        let fail: @Sendable (StoreError) -> Void
        var task: Task<Void, Never>?
    }

    private struct State {
        var next: UInt64 = 0
        var calls: [UInt64: Call] = [:]
        var watching = false
    }

    private let state = Mutex(State())

    /// Leases a connection of `client` (waiting at most `wait`) and runs `body` on it, watched.
    package func run<T: Sendable>(
        on client: PostgresClient, wait: Duration, logger: Logger, _ body: @escaping @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let answer = Answer<T>()
        return try await withCheckedThrowingContinuation { continuation in
            answer.set(continuation)
            let id = add(.leasing(deadline: .now + wait, wait: wait), logger: logger) { answer.resume(.failure($0)) }
            let task = Task {
                let result: Result<T, any Error>
                do {
                    result = .success(
                        try await client.withConnection { connection in
                            guard self.leased(id, connection) else {
                                throw StoreError.unavailable("no database connection became free within \(wait)")
                            }
                            if connection.isClosed { throw StoreError.unavailable("the connection to PostgreSQL was closed") }
                            return try await body(connection)
                        })
                } catch {
                    result = .failure(error)
                }
                self.remove(id)
                answer.resume(result)
            }
            attach(task, to: id)
        }
    }

    /// Runs `body` on `connection` (already open), watched for the connection closing under it.
    package func run<T: Sendable>(
        _ body: @escaping @Sendable (PostgresConnection) async throws -> T, on connection: PostgresConnection, logger: Logger
    ) async throws -> T {
        if connection.isClosed { throw StoreError.unavailable("the connection to PostgreSQL was closed") }
        let answer = Answer<T>()
        return try await withCheckedThrowingContinuation { continuation in
            answer.set(continuation)
            let id = add(.running(connection, closedLooks: 0), logger: logger) { answer.resume(.failure($0)) }
            Task {
                let result: Result<T, any Error>
                do { result = .success(try await body(connection)) } catch { result = .failure(error) }
                self.remove(id)
                answer.resume(result)
            }
        }
    }

    private func add(_ phase: Phase, logger: Logger, fail: @escaping @Sendable (StoreError) -> Void) -> UInt64 {
        let (id, start) = state.withLock { state in
            state.next += 1
            state.calls[state.next] = Call(phase: phase, logger: logger, fail: fail)
            let start = !state.watching
            state.watching = true
            return (state.next, start)
        }
        if start { Task { await self.watch() } }
        return id
    }

    private func attach(_ task: Task<Void, Never>, to id: UInt64) {
        let gone = state.withLock { state -> Bool in
            guard state.calls[id] != nil else { return true }
            state.calls[id]?.task = task
            return false
        }
        // Expired before the task was attached: its lease request is cancelled now.
        if gone { task.cancel() }
    }

    /// The call got its connection; false when its wait had already run out (the body must not run).
    private func leased(_ id: UInt64, _ connection: PostgresConnection) -> Bool {
        state.withLock { state in
            guard state.calls[id] != nil else { return false }
            state.calls[id]?.phase = .running(connection, closedLooks: 0)
            return true
        }
    }

    private func remove(_ id: UInt64) {
        _ = state.withLock { $0.calls.removeValue(forKey: id) }
    }

    /// Looks at the calls in flight every `interval` while there are any.
    private func watch() async {
        while true {
            try? await Task.sleep(for: Self.interval)
            let now = ContinuousClock.now
            let due: [(Call, StoreError)]? = state.withLock { state in
                if state.calls.isEmpty {
                    state.watching = false
                    return nil
                }
                var due: [(Call, StoreError)] = []
                for (id, var call) in state.calls {
                    switch call.phase {
                    case .leasing(let deadline, let wait) where now >= deadline:
                        due.append((call, .unavailable("no database connection became free within \(wait)")))
                        state.calls.removeValue(forKey: id)
                    case .leasing:
                        break
                    case .running(let connection, let looks):
                        let closed = connection.isClosed ? looks + 1 : 0
                        if closed >= Self.closedLooks {
                            due.append((call, .unavailable("the connection to PostgreSQL was lost during the call")))
                            state.calls.removeValue(forKey: id)
                        } else if closed != looks {
                            call.phase = .running(connection, closedLooks: closed)
                            state.calls[id] = call
                        }
                    }
                }
                return due
            }
            guard let due else { return }
            for (call, error) in due {
                if case .running = call.phase {
                    call.logger.warning("a database call was lost with its connection (PostgreSQL closed it); answering 503")
                }
                call.fail(error)
                call.task?.cancel()
            }
        }
    }

    /// The one answer of a call: its work's, or the watch's, whichever comes first.
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
