import AccessAPI
import Foundation
import Synchronization
import Testing

// The shutdown deadline (`serve --shutdown-timeout`): once the first SIGTERM or SIGINT has arrived, a process that is
// still running after the limit is ended by the deadline's action, whatever Swift's pool and the event loops are
// doing. `begin()` stands in for the signal here: a signal sent to the test runner is not reliably seen by dispatch
// (ShutdownNotice's comment); that the signal sources call it is proven by Benchmarks/faults/sigterm.sh.

@Suite("Shutdown deadline")
struct ShutdownNoticeTests {
    @Test("The deadline's action runs once, the limit after the first signal, and never before a signal")
    func deadlineRunsOnceAfterTheLimit() async throws {
        let notice = ShutdownNotice()
        let fired = Mutex<[ContinuousClock.Instant]>([])
        notice.limitShutdown(to: .milliseconds(300)) { fired.withLock { $0.append(.now) } }

        try await Task.sleep(for: .milliseconds(500))
        #expect(!notice.hasBegun)
        #expect(fired.withLock { $0.isEmpty }, "no signal, no deadline")

        let begun = ContinuousClock.now
        notice.begin()
        notice.begin()  // a second signal starts no second timer
        #expect(notice.hasBegun)

        for _ in 0..<50 where fired.withLock({ $0.isEmpty }) { try await Task.sleep(for: .milliseconds(100)) }
        try await Task.sleep(for: .milliseconds(500))
        let times = fired.withLock { $0 }
        #expect(times.count == 1, "once: \(times.count)")
        // Not before the limit (the time it ran is recorded, so a slow test machine cannot make this pass or fail).
        if let first = times.first { #expect(first - begun >= .milliseconds(300), "after the limit: \(first - begun)") }
    }

}
