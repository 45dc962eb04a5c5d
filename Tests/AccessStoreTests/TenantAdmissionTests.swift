import AccessStore
import Synchronization
import Testing

/// The per-organisation limit on pool connections (`TenantAdmission`) on its own: no database, gates the test opens.
@Suite("Per-organisation admission to the pool")
struct TenantAdmissionTests {
    /// A gate a task waits at until the test opens it.
    actor Gate {
        private var open = false
        private var waiters: [CheckedContinuation<Void, Never>] = []
        func wait() async {
            if open { return }
            await withCheckedContinuation { waiters.append($0) }
        }
        func release() {
            open = true
            waiters.forEach { $0.resume() }
            waiters = []
        }
    }

    static func until(_ admission: TenantAdmission, _ organisation: String, holding: Int, waiting: Int) async throws {
        for _ in 0..<400 {
            let load = await admission.load(of: organisation)
            if load.holding == holding && load.waiting == waiting { return }
            try await Task.sleep(for: .milliseconds(5))
        }
        Issue.record("\(organisation) never reached \(holding) holding and \(waiting) waiting: \(await admission.load(of: organisation))")
    }

    @Test("At most the limit run at once per organisation; the next waits and gets the freed slot; others are not held up")
    func limitPerOrganisation() async throws {
        let admission = TenantAdmission(limit: 2)
        let gate = Gate()
        try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<3 {
                group.addTask {
                    try await admission.run(for: "ORG-1", wait: .seconds(30)) {
                        await gate.wait()
                        return "ORG-1 #\(index)"
                    }
                }
            }
            try await Self.until(admission, "ORG-1", holding: 2, waiting: 1)
            // Another organisation runs at once while ORG-1 is full.
            let other = try await admission.run(for: "ORG-2", wait: .milliseconds(1)) { "ORG-2" }
            #expect(other == "ORG-2")
            await gate.release()
            var finished = 0
            for try await _ in group { finished += 1 }
            #expect(finished == 3)
        }
        let after = await admission.load(of: "ORG-1")
        #expect(after.holding == 0 && after.waiting == 0, "every slot is given back: \(after)")
    }

    @Test("A call that finds no slot within its wait is refused as unavailable (503), and holds nothing")
    func waitRunsOut() async throws {
        let refused = Mutex<[String]>([])
        let admission = TenantAdmission(limit: 1, onRefusal: { organisation in refused.withLock { $0.append(organisation) } })
        let gate = Gate()
        async let holder: Void = admission.run(for: "ORG-1", wait: .seconds(30)) { await gate.wait() }
        try await Self.until(admission, "ORG-1", holding: 1, waiting: 0)
        let started = ContinuousClock.now
        await #expect(throws: StoreError.self) {
            try await admission.run(for: "ORG-1", wait: .milliseconds(200)) { Issue.record("ran without a slot") }
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(refused.withLock { $0 } == ["ORG-1"], "the refusal is reported (the service counts it in /metrics)")
        #expect(await admission.load(of: "ORG-1").waiting == 0)
        await gate.release()
        try await holder
        #expect(await admission.load(of: "ORG-1").holding == 0)
    }

    @Test("A failing call gives its slot back")
    func failureReleases() async throws {
        struct Boom: Error {}
        let admission = TenantAdmission(limit: 1)
        await #expect(throws: Boom.self) { try await admission.run(for: "ORG-1", wait: .seconds(1)) { throw Boom() } }
        #expect(try await admission.run(for: "ORG-1", wait: .milliseconds(100)) { 1 } == 1)
        #expect(await admission.load(of: "ORG-1").holding == 0)
    }
}
