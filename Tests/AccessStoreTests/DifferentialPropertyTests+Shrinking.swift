import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation

// Shrinking stays hand-written: PropertyBased shrinks a generated value by re-running a synchronous property on
// smaller values, but a step sequence here is generated step by step from the model that the database's answers
// built, and every candidate needs a replay in a fresh database (seconds each, so under a time budget), with the
// indices of the remaining steps re-pointed at the same users, requests and assignments (`reindex`).

extension DifferentialPropertyTests {
    /// The entities a step referred to and created, by key (the position of the step that created them; initial users
    /// -1, -2, ...; agents by index). Shrinking deletes steps and re-points the indices of the others with these, and drops
    /// steps whose entities no longer exist.
    struct References: Sendable {
        var actorUser: Int?
        var actorAgent: Int?
        var request: Int?
        var assignment: Int?
        var createdRequest = false
        /// The key of the holder when the step granted a role.
        var createdAssignmentHolder: Int?
    }

    /// `steps` without the positions not in `keep`, with their indices re-pointed at the same entities (as created by
    /// the remaining steps, assuming they still create them); steps whose entities are gone are dropped too.
    static func reindex(_ steps: [Step], _ refs: [References], keep: (Int) -> Bool) -> [Step] {
        var users = (0..<Model.initialUsers).map { -1 - $0 }
        let agents = Model.initialAgents
        var requests: [Int] = []
        var assignments: [(key: Int, holder: Int)] = []
        var result: [Step] = []
        for (position, step) in steps.enumerated() where keep(position) {
            let ref = position < refs.count ? refs[position] : References()
            var actorUser: Int?
            if let key = ref.actorUser {
                guard let index = users.firstIndex(of: key) else { continue }
                actorUser = index
            }
            var request: Int?
            if let key = ref.request {
                guard let index = requests.firstIndex(of: key) else { continue }
                request = index
            }
            let assignmentKey = ref.assignment
            if let key = assignmentKey, !assignments.contains(where: { $0.key == key }) { continue }
            let rewritten: Step
            switch step {
            case .register:
                rewritten = step
                users.append(position)
            case .request(let actor, let role, let org, let days):
                rewritten = .request(actor: actorUser ?? actor, role: role, org: org, days: days)
            case .approve(let actor, let index, let channel, let ticket, let days):
                rewritten = .approve(actor: actorUser ?? actor, request: request ?? index, channel: channel, ticket: ticket, days: days)
            case .reject(let actor, let index, let channel, let reason):
                rewritten = .reject(actor: actorUser ?? actor, request: request ?? index, channel: channel, reason: reason)
            case .cancel(let actor, let index):
                let everyone = actorUser ?? ref.actorAgent.map { users.count + $0 % agents } ?? actor
                rewritten = .cancel(actor: everyone, request: request ?? index)
            case .revoke(let actor, let index, let channel):
                var target = index
                if let key = assignmentKey {
                    let holder = actorUser.map { users[$0] }
                    let candidates = channel == .serviceDesk ? assignments : assignments.filter { $0.holder != holder }
                    target = candidates.firstIndex { $0.key == key } ?? index
                }
                rewritten = .revoke(actor: actorUser ?? actor, assignment: target, channel: channel)
            case .dropOwn(let actor, let index):
                var target = index
                if let key = assignmentKey, let actorUser {
                    target = assignments.filter { $0.holder == users[actorUser] }.firstIndex { $0.key == key } ?? index
                }
                rewritten = .dropOwn(actor: actorUser ?? actor, assignment: target)
            case .advanceClock:
                rewritten = step
            case .decideReview(let actor, let item, let channel, let decision):
                rewritten = .decideReview(actor: actorUser ?? actor, item: item, channel: channel, decision: decision)
            }
            result.append(rewritten)
            if ref.createdRequest { requests.append(position) }
            if let holder = ref.createdAssignmentHolder { assignments.append((position, holder)) }
        }
        return result
    }

    // MARK: Replaying and shrinking

    private struct Replay: Sendable {
        /// The step at which the target failure occurred, if it did.
        let match: Int?
        /// Each step resolved, with both verdicts.
        let trace: [String]
        /// Per step: whether it changed the database, and what it referred to and created.
        let changed: [Bool]
        let refs: [References]

        /// The replay up to its match.
        var cut: Replay {
            guard let match else { return self }
            return Replay(
                match: match, trace: Array(trace.prefix(match + 1)), changed: Array(changed.prefix(match + 1)),
                refs: Array(refs.prefix(match + 1)))
        }
    }

    /// Runs `steps` in a fresh database until `target` occurs (a disagreement signature, or a broken invariant).
    private static func replay(_ steps: [Step], target: String, askDatabase: Set<String>) async throws -> Replay {
        try await Fixture.with { f in
            var runner = try await Runner.make(f)
            runner.askDatabase = askDatabase
            var trace: [String] = []
            var changed: [Bool] = []
            var refs: [References] = []
            for (index, step) in steps.enumerated() {
                let result = try await runner.execute(step, position: index)
                let verdicts = result.swift.map { swift in " → Swift \(swift), database \(result.database?.description ?? "-")" } ?? ""
                trace.append("  \(index). \(step)   // \(result.resolved)\(verdicts)")
                changed.append(result.changed)
                refs.append(result.refs)
                if result.signature(step) == target {
                    return Replay(match: index, trace: trace, changed: changed, refs: refs)
                }
            }
            if target.hasPrefix("invariant: ") {
                let broken = try await runner.brokenInvariants()
                if broken.contains(where: { "invariant: \($0.name)" == target }) {
                    return Replay(match: steps.count - 1, trace: trace, changed: changed, refs: refs)
                }
            }
            return Replay(match: nil, trace: trace, changed: changed, refs: refs)
        }
    }

    /// Delta debugging (ddmin by complements) over steps: first guesses (the failing step alone; only the steps that
    /// changed something), then deleting chunks, halving down to single steps. Deleting a step also deletes the steps
    /// that act on what it created, and the remaining steps' indices are re-pointed at the same users, requests and
    /// assignments (`reindex`). A shorter sequence is kept when its replay still shows `target` (the same failure
    /// signature); a disagreement also cuts the sequence after the step where it occurs.
    static func shrink(
        _ original: [Step], failure: Failure, deadline: ContinuousClock.Instant
    ) async throws -> (steps: [Step], replays: Int, trace: [String], reproduced: Bool) {
        let clock = ContinuousClock()
        let target = failure.signature
        let ask = failure.askDatabase
        var replays = 1
        var state = try await replay(original, target: target, askDatabase: ask)
        guard state.match != nil else { return (original, replays, state.trace, false) }
        state = state.cut
        var current = Array(original.prefix(state.trace.count))

        /// Replays `current` without the positions `drop` says; true (and adopted) when the failure remains.
        func attempt(dropping drop: (Int) -> Bool) async throws -> Bool {
            let candidate = reindex(current, state.refs) { !drop($0) }
            guard candidate.count < current.count, !candidate.isEmpty else { return false }
            replays += 1
            let result = try await replay(candidate, target: target, askDatabase: ask)
            guard result.match != nil else { return false }
            state = result.cut
            current = Array(candidate.prefix(state.trace.count))
            return true
        }

        let last = current.count - 1
        if clock.now < deadline, try await attempt(dropping: { $0 != last }) {
            return (current, replays, state.trace, true)
        }
        let unchanged = state.changed
        if clock.now < deadline { _ = try await attempt(dropping: { $0 != last && !unchanged[$0] }) }

        var chunks = 2
        while current.count >= 2, replays < replaysPerFailure, clock.now < deadline {
            let size = (current.count + chunks - 1) / chunks
            var reduced = false
            var start = 0
            while start < current.count, replays < replaysPerFailure, clock.now < deadline {
                let range = start..<min(start + size, current.count)
                if try await attempt(dropping: { range.contains($0) }) {
                    reduced = true
                    break
                }
                start += size
            }
            if reduced {
                chunks = max(chunks - 1, 2)
            } else if size == 1 {
                break
            } else {
                chunks = min(current.count, chunks * 2)
            }
        }
        return (current, replays, state.trace, true)
    }

}
