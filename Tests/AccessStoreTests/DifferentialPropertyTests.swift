import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// Differential property test of R4–R22: random, seeded sequences of register / request / approve / reject / cancel /
// revoke / drop-own-role / decide-review-item by random actors, with time passing on the jobs' clock now and then
// (time-bound grants end, access reviews open, close and revoke what nobody certified: R21, R22). Every command runs twice: first through the stores of
// `Fixture.databaseOnly(dryRun: true)` (Swift policy off, the transaction rolls back after the deferred constraints
// fired: the database's verdict), then through the normal stores (Swift policy on, commits: the Swift verdict).
// Both verdicts must be equal (both success, or the same refusal code). The Swift verdict must also come from the
// Swift policy: a refusal code `ApprovalPolicy` never produces (`routing-mismatch`, a constraint, ...) means the Swift
// half let the command through and only the database's re-check stopped it, which fails the test even though both
// sides then "agree". After each run the invariants of the issue hold: no organisation with two first super users,
// every active assignment traces to an approved request or a staff grant, one audit event per state change (and no
// role held twice, every approved request granted exactly once, the test's model equal to the database).
//
// Seeds: four fixed seeds are replayed on every run, and one fresh seed is drawn on every run (PropertyBased's seeded
// generator, see `SeededRandom`); each seed is printed before its run. Reproduce a run with
// `SPOR_PROPERTY_SEED='<seed>'` (comma-separated for several: exactly those runs, nothing else), lengthen the runs
// with `SPOR_PROPERTY_STEPS=<n>`, draw more fresh seeds with `SPOR_PROPERTY_FRESH_SEEDS=<n>` (0: the fixed ones only).
// A disagreement is shrunk (delta debugging by deleting steps, each candidate replayed in a fresh database) and
// reported with its seed and the shrunk sequence.
//
// How actors use channels, as the API does: service desk agents decide and revoke through `.serviceDesk`; other users
// decide and revoke through `.organisation` (super user approval API) and drop their own roles through `.own`. The
// database cannot see which endpoint was used, only who acts, so the steps never mix them: a user's `.revoke` targets
// someone else's assignment, `.dropOwn` one of the actor's own, and agents do not file SPOR requests. (Mixing them
// would only show that Swift's per-endpoint refusals are stricter than the database's per-actor ones, which is by
// design: e.g. a super user "dropping" a colleague's role through `/me` is refused by Swift and allowed by SQL, because
// that super user may revoke it through the organisation endpoint.)
//
// The parts: the steps and the model (DifferentialPropertyTests+Model), the step generator (+StepGenerator), the
// runner with its verdicts and invariants (+Runner), replaying and shrinking (+Shrinking), and here the test.

@Suite("Differential property: the Swift policy and the database agree")
struct DifferentialPropertyTests {
    /// Replays per shrunk failure, and the wall-clock budget for all shrinking of one test run
    /// (`SPOR_PROPERTY_SHRINK_SECONDS` overrides it; 0 reports failures unshrunk).
    static let replaysPerFailure = 60
    static var shrinkingBudget: Duration {
        .seconds(ProcessInfo.processInfo.environment["SPOR_PROPERTY_SHRINK_SECONDS"].flatMap { Int($0) } ?? 90)
    }

    @Test("R4–R22: random command sequences get the same verdict from Swift and from the database; invariants hold")
    func swiftAndDatabaseAgree() async throws {
        let configuration = try Configuration.fromEnvironment()
        let clock = ContinuousClock()
        let started = clock.now
        var total = Tally()
        var results: [RunResult] = []
        for (seed, origin) in configuration.seeds {
            // Printed before the run, so that even a run that never finishes can be replayed.
            print(
                "Differential property: \(origin) seed \(seed), \(configuration.steps) steps; replay: \(Self.replayHint(seed, configuration.steps))")
            let result = try await Fixture.with { f in try await Self.run(seed: seed, steps: configuration.steps, f) }
            total.merge(result.tally)
            results.append(result)
        }
        let ran = clock.now - started

        // Each distinct failure once, from its shortest sequence, shortest first; shrinking shares a time budget.
        var occurrences: [String: Int] = [:]
        var shortest: [String: (result: RunResult, failure: Failure)] = [:]
        for result in results {
            for failure in result.failures {
                occurrences[failure.signature, default: 0] += 1
                let length = failure.step ?? result.steps.count
                if let known = shortest[failure.signature], (known.failure.step ?? known.result.steps.count) <= length { continue }
                shortest[failure.signature] = (result, failure)
            }
        }
        let failures = shortest.values.sorted {
            ($0.failure.step ?? $0.result.steps.count, $0.failure.signature) < ($1.failure.step ?? $1.result.steps.count, $1.failure.signature)
        }
        let shrinkDeadline = clock.now + Self.shrinkingBudget
        for (position, found) in failures.enumerated() {
            let share = (shrinkDeadline - clock.now) / max(failures.count - position, 1)
            let report =
                try await Self.report(found.failure, of: found.result, deadline: clock.now + share)
                + "\n(this failure occurred \(occurrences[found.failure.signature, default: 0]) times in this test run)"
            Issue.record(Comment(rawValue: report))
        }

        print(total.summary + " — seeds \(configuration.seeds.map(\.seed).joined(separator: ", ")) in \(ran)")
        // The test must not pass vacuously: with a full-sized run, many commands succeed and many rules say no.
        if total.steps >= 400 {
            #expect(total.totalSuccesses >= 50, "too few agreed successes: \(total.summary)")
            #expect(total.refusals.count >= 5, "too few distinct refusal codes: \(total.summary)")
            #expect(total.successes["approve", default: 0] >= 10, "too few approvals: \(total.summary)")
            #expect(
                total.successes["revoke", default: 0] + total.successes["drop-own", default: 0] >= 10,
                "too few revocations: \(total.summary)")
            #expect(total.successes["decide-review", default: 0] >= 3, "too few review decisions: \(total.summary)")
            #expect(total.grantsEnded >= 3 && total.reviewsClosed >= 3, "too little time passed: \(total.summary)")
        }
    }

    /// One seeded run: generate each step from the model, execute it on both sides, compare; then the invariants.
    private static func run(seed: String, steps count: Int, _ f: Fixture) async throws -> RunResult {
        guard let random = SeededRandom(seed: seed) else { throw FixtureError("not a PropertyBased seed: \(seed)") }
        var generator = StepGenerator(rng: random)
        var runner = try await Runner.make(f)
        var steps: [Step] = []
        var failures: [Failure] = []
        for index in 0..<count {
            let step = generator.next(for: runner.model)
            steps.append(step)
            let result = try await runner.execute(step, position: index)
            guard let signature = result.signature(step), let swift = result.swift else { continue }
            let database = result.database?.description ?? "-"
            let disagreement = result.swift != result.database
            failures.append(
                Failure(
                    signature: signature, step: index,
                    message: (disagreement
                        ? "Swift said \(swift), database said \(database)"
                        : "the Swift policy allowed a command that only the database refused (\(swift); database alone: \(database))")
                        + " at step \(index): \(step) = \(result.resolved)",
                    askDatabase: disagreement ? [step.kind] : []))
        }
        for broken in try await runner.brokenInvariants() {
            failures.append(
                Failure(
                    signature: "invariant: \(broken.name)", step: nil,
                    message: "invariant broken after \(count) steps: \(broken.name): \(broken.rows.prefix(10).joined(separator: "; "))",
                    askDatabase: []))
        }
        for mismatch in try await runner.modelMismatches() {
            failures.append(
                Failure(
                    signature: "model: \(mismatch.prefix(20))", step: nil, message: "test model out of sync: \(mismatch)", askDatabase: []))
        }
        var tally = runner.tally
        tally.runs = 1
        return RunResult(seed: seed, steps: steps, tally: tally, failures: failures)
    }

    // MARK: Reporting

    private static func report(_ failure: Failure, of result: RunResult, deadline: ContinuousClock.Instant) async throws -> String {
        let sequence = failure.step.map { Array(result.steps.prefix($0 + 1)) } ?? result.steps
        var text = "seed \(result.seed): \(failure.message)\n"
        if failure.signature.hasPrefix("model: ") {
            return text + "(the test's model disagrees with the database: a defect of the test)"
        }
        if ContinuousClock().now >= deadline {
            text += "not shrunk (shrinking budget spent); sequence:\n" + sequence.map { "  \($0)" }.joined(separator: "\n")
            return text + "\nreproduce: " + replayHint(result.seed, result.steps.count)
        }
        let shrunk = try await shrink(sequence, failure: failure, deadline: deadline)
        if shrunk.reproduced {
            text += "shrunk sequence (\(shrunk.steps.count) of \(sequence.count) steps, \(shrunk.replays) replays):\n"
            text += shrunk.steps.map { "  \($0)" }.joined(separator: "\n")
            text += "\nreplayed (index. step // what it meant → verdicts):\n" + shrunk.trace.joined(separator: "\n")
        } else {
            text += "NOT reproduced on replay; full sequence:\n" + sequence.map { "  \($0)" }.joined(separator: "\n")
        }
        return text + "\nreproduce: " + replayHint(result.seed, result.steps.count)
    }

    /// The command that replays one run.
    static func replayHint(_ seed: String, _ steps: Int) -> String {
        "SPOR_PROPERTY_SEED='\(seed)' SPOR_PROPERTY_STEPS=\(steps) swift test --filter DifferentialPropertyTests"
    }
}

extension DifferentialPropertyTests {
    /// Which runs the test makes, from the environment:
    ///
    /// - by default, the four fixed seeds below (the same runs every time) and `SPOR_PROPERTY_FRESH_SEEDS` (default 1)
    ///   fresh seeds drawn for this run, 250 steps each;
    /// - `SPOR_PROPERTY_SEED=<seed>[,<seed>...]` runs exactly those seeds instead (as printed: PropertyBased's base64
    ///   seeds; quote them in the shell) — the way to replay a failure;
    /// - `SPOR_PROPERTY_STEPS=<n>` lengthens (or shortens) every run.
    struct Configuration: Sendable {
        /// Each seed with where it came from ("fixed", "fresh" or "given").
        let seeds: [(seed: String, origin: String)]
        let steps: Int

        static let fixed = [
            "UAcUdGdDNHOxSTQuoOdXKqlbI8MJ70lxwDI8pw6gdN8=", "7vI+8+1/DY78cbfACuzn2r2bRAAEwHVHTXDofcFOHsA=",
            "K0k+/BWPV2JRpHUvkhFcoYjSDKB1eHlCGmvpbDX4dAA=", "d9L+KXMv9tXxWqkL4kqnAZi+gYFrSYXXGy9gnxjGMWw=",
        ]

        static func fromEnvironment() throws -> Configuration {
            let environment = ProcessInfo.processInfo.environment
            let steps = max(environment["SPOR_PROPERTY_STEPS"].flatMap { Int($0) } ?? 250, 1)
            let given = (environment["SPOR_PROPERTY_SEED"] ?? "").split(separator: ",")
                .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            if !given.isEmpty {
                let invalid = given.filter { SeededRandom(seed: $0) == nil }
                guard invalid.isEmpty else { throw FixtureError("SPOR_PROPERTY_SEED: not a PropertyBased seed: \(invalid)") }
                return Configuration(seeds: given.map { ($0, "given") }, steps: steps)
            }
            let fresh = max(environment["SPOR_PROPERTY_FRESH_SEEDS"].flatMap { Int($0) } ?? 1, 0)
            let seeds = fixed.map { ($0, "fixed") } + (0..<fresh).map { _ in (SeededRandom().seed, "fresh") }
            return Configuration(seeds: seeds, steps: steps)
        }
    }

    /// Something that must not happen: a disagreement at a step, or an invariant broken after the run.
    struct Failure: Sendable {
        /// What shrinking keeps: the step kind and both verdicts, or the invariant's name.
        let signature: String
        /// Index of the step (disagreements only).
        let step: Int?
        let message: String
        /// The step kinds whose database verdict a replay must ask for to see this failure again.
        let askDatabase: Set<String>
    }

    struct RunResult: Sendable {
        /// The seed in PropertyBased's format (see `SeededRandom`).
        let seed: String
        let steps: [Step]
        let tally: Tally
        let failures: [Failure]
    }
}
