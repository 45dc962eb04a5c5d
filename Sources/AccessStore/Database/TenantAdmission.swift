/// At most `limit` commands of one organisation hold a connection of the pool at once; the others wait here, holding
/// nothing, for at most the wait they are given, then are answered `StoreError.unavailable` (503 with Retry-After).
///
/// Why: a command waits on its organisation's lock while holding a pool connection. Without a limit, a burst of calls
/// for one organisation whose lock is held (a long transaction elsewhere, a slow super-user change) takes every
/// connection, and every other organisation's calls wait and fail with it: one tenant could starve the rest. With
/// it, the other organisations always find `pool - limit` connections that no single organisation can take.
///
/// Slots go first come, first served per organisation; a freed slot passes straight to the longest waiter. The
/// limit is per service instance (each has its own pool).
public actor TenantAdmission {
    /// Commands of one organisation holding a connection at most.
    public let limit: Int
    private var holding: [String: Int] = [:]
    private var waiting: [String: [Waiter]] = [:]
    private var timers: [UInt64: Task<Void, Never>] = [:]
    private var nextWaiter: UInt64 = 0

    private struct Waiter {
        let id: UInt64
        let continuation: CheckedContinuation<Void, any Error>
    }

    /// Called with the organisation each time a call is refused for want of a slot (metrics).
    private let onRefusal: (@Sendable (String) -> Void)?

    public init(limit: Int, onRefusal: (@Sendable (String) -> Void)? = nil) {
        precondition(limit >= 1, "an organisation must be able to run at least one command")
        self.limit = limit
        self.onRefusal = onRefusal
    }

    /// The default for a pool of `poolSize` connections: half of it (at least one), so that the other organisations
    /// keep the other half.
    public static func defaultLimit(poolSize: Int) -> Int { max(1, poolSize / 2) }

    /// Runs `work` once `organisation` has a free slot, waiting at most `wait` for one.
    public nonisolated func run<T: Sendable>(
        for organisation: String, wait: Duration, _ work: () async throws -> T
    ) async throws -> T {
        try await acquire(organisation, wait: wait)
        do {
            let result = try await work()
            await release(organisation)
            return result
        } catch {
            await release(organisation)
            throw error
        }
    }

    /// Commands of `organisation` holding a slot now, and waiting for one (tests, metrics).
    public func load(of organisation: String) -> (holding: Int, waiting: Int) {
        (holding[organisation] ?? 0, waiting[organisation]?.count ?? 0)
    }

    private func acquire(_ organisation: String, wait: Duration) async throws {
        let held = holding[organisation] ?? 0
        if held < limit {
            holding[organisation] = held + 1
            return
        }
        nextWaiter += 1
        let id = nextWaiter
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            waiting[organisation, default: []].append(Waiter(id: id, continuation: continuation))
            timers[id] = Task {
                try? await Task.sleep(for: wait)
                self.expire(organisation, id, after: wait)
            }
        }
    }

    private func expire(_ organisation: String, _ id: UInt64, after wait: Duration) {
        timers[id] = nil
        guard var queue = waiting[organisation], let index = queue.firstIndex(where: { $0.id == id }) else { return }
        let waiter = queue.remove(at: index)
        waiting[organisation] = queue.isEmpty ? nil : queue
        onRefusal?(organisation)
        waiter.continuation.resume(
            throwing: StoreError.unavailable(
                "\(limit) call(s) for organisation \(organisation) are already waiting on it, and no slot became free within \(wait)"))
    }

    private func release(_ organisation: String) {
        if var queue = waiting[organisation], !queue.isEmpty {
            // The slot passes to the longest waiter: `holding` stays as it is.
            let waiter = queue.removeFirst()
            waiting[organisation] = queue.isEmpty ? nil : queue
            timers.removeValue(forKey: waiter.id)?.cancel()
            waiter.continuation.resume()
            return
        }
        let held = (holding[organisation] ?? 1) - 1
        holding[organisation] = held > 0 ? held : nil
    }
}
