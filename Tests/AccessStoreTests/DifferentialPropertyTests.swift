import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// Differential property test of R4–R18: random, seeded sequences of register / request / approve / reject / cancel /
// revoke / drop-own-role by random actors. Every command runs twice: first through the stores of
// `Fixture.databaseOnly(dryRun: true)` (Swift policy off, the transaction rolls back after the deferred constraints
// fired: the database's verdict), then through the normal stores (Swift policy on, commits: the Swift verdict).
// Both verdicts must be equal (both success, or the same refusal code). The Swift verdict must also come from the
// Swift policy: a refusal code `ApprovalPolicy` never produces (`routing-mismatch`, a constraint, ...) means the Swift
// half let the command through and only the database's re-check stopped it, which fails the test even though both
// sides then "agree". After each run the invariants of the issue hold: no organisation with two first super users,
// every active assignment traces to an approved request or a staff grant, one audit event per state change (and no
// role held twice, every approved request granted exactly once, the test's model equal to the database).
//
// Reproduce a run with `SPOR_PROPERTY_SEED=<seed>` (comma-separated for several) and `SPOR_PROPERTY_STEPS=<n>`.
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

// MARK: - Steps

/// One command. Actors, requests and assignments are small indices into the run's own lists, taken modulo their
/// current sizes when the step runs, so every sequence is valid and shrinking may delete any step.
private enum Step: Sendable, Equatable, CustomStringConvertible {
    /// A new verified user (with security answers) joins the user list.
    case register
    /// `users[actor]` files a request for `role` in `orgs[org]` (nil: no organisation).
    case request(actor: Int, role: Role, org: Int?)
    /// `.serviceDesk`: `agents[actor]`; `.organisation`: `users[actor]`. `ticket`: an agent first opens the R10
    /// ticket for a pending first-super-user request (as its requester) when none is open.
    case approve(actor: Int, request: Int, channel: DecisionChannel, ticket: Bool)
    case reject(actor: Int, request: Int, channel: DecisionChannel, reason: String)
    /// `(users + agents)[actor]` cancels `requests[request]`.
    case cancel(actor: Int, request: Int)
    /// `.serviceDesk`: `agents[actor]` revokes `assignments[assignment]`; `.organisation`: `users[actor]` revokes the
    /// `assignment`-th of the assignments held by others.
    case revoke(actor: Int, assignment: Int, channel: RevocationChannel)
    /// `users[actor]` drops the `assignment`-th of their own assignments (channel `.own`).
    case dropOwn(actor: Int, assignment: Int)

    var kind: String {
        switch self {
        case .register: "register"
        case .request: "request"
        case .approve: "approve"
        case .reject: "reject"
        case .cancel: "cancel"
        case .revoke: "revoke"
        case .dropOwn: "drop-own"
        }
    }

    var description: String {
        switch self {
        case .register: ".register"
        case .request(let actor, let role, let org):
            ".request(actor: \(actor), role: .\(role), org: \(org.map(String.init) ?? "nil"))"
        case .approve(let actor, let request, let channel, let ticket):
            ".approve(actor: \(actor), request: \(request), channel: .\(channel), ticket: \(ticket))"
        case .reject(let actor, let request, let channel, let reason):
            ".reject(actor: \(actor), request: \(request), channel: .\(channel), reason: \"\(reason)\")"
        case .cancel(let actor, let request): ".cancel(actor: \(actor), request: \(request))"
        case .revoke(let actor, let assignment, let channel):
            ".revoke(actor: \(actor), assignment: \(assignment), channel: .\(channel))"
        case .dropOwn(let actor, let assignment): ".dropOwn(actor: \(actor), assignment: \(assignment))"
        }
    }
}

/// A side's answer to one command: success, or the refusal code (or the error, for anything unmapped).
private enum Verdict: Sendable, Equatable, CustomStringConvertible {
    case success
    case refused(String)

    var description: String {
        switch self {
        case .success: "success"
        case .refused(let code): code
        }
    }

    /// `Refusal.code`, a `StoreError`'s rule code or constraint name, else the error itself.
    static func of(_ error: any Error) -> Verdict {
        if let refusal = error as? Refusal { return .refused(refusal.code.rawValue) }
        if let store = error as? StoreError {
            switch store {
            case .ruleViolation(let code, _, _): return .refused(code)
            case .constraintViolation(let constraint, _): return .refused("constraint \(constraint)")
            default: return .refused("error: \(store)")
            }
        }
        return .refused("error: \(error)")
    }

    /// Runs `body`: its verdict and, on success, its value.
    static func run<T>(_ body: () async throws -> T) async -> (Verdict, T?) {
        do {
            return (.success, try await body())
        } catch {
            return (of(error), nil)
        }
    }
}

// MARK: - Randomness

/// SplitMix64: small, fast and the same on every platform, so a seed always means the same sequence.
private struct SplitMix64 {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in `0..<bound` (bound > 0).
    mutating func int(_ bound: Int) -> Int { Int(next() % UInt64(max(bound, 1))) }

    /// True with `percent` % probability.
    mutating func chance(_ percent: Int) -> Bool { int(100) < percent }

    mutating func pick<T>(_ values: [T]) -> T { values[int(values.count)] }
}

// MARK: - Bookkeeping

private struct Tally: Sendable {
    var runs = 0
    var steps = 0
    var registrations = 0
    /// Steps whose index lists were empty (nothing to act on).
    var skipped = 0
    /// Agreed successes by command kind.
    var successes: [String: Int] = [:]
    /// Agreed refusals by code.
    var refusals: [String: Int] = [:]
    var disagreements = 0
    /// Commands the Swift policy allowed and only the database's re-check refused (see `StepResult.policyGap`).
    var policyGaps = 0
    var ticketsOpened = 0

    var totalSuccesses: Int { successes.values.reduce(0, +) }
    var totalRefusals: Int { refusals.values.reduce(0, +) }

    mutating func merge(_ other: Tally) {
        runs += other.runs
        steps += other.steps
        registrations += other.registrations
        skipped += other.skipped
        successes.merge(other.successes, uniquingKeysWith: +)
        refusals.merge(other.refusals, uniquingKeysWith: +)
        disagreements += other.disagreements
        policyGaps += other.policyGaps
        ticketsOpened += other.ticketsOpened
    }

    var summary: String {
        func list(_ counts: [String: Int]) -> String {
            counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
        }
        return """
            Differential property: \(runs) runs, \(steps) steps (\(registrations) registrations, \(skipped) skipped, \
            \(ticketsOpened) R10 tickets opened); agreed successes \(totalSuccesses) (\(list(successes))); \
            agreed refusals \(totalRefusals) in \(refusals.count) codes (\(list(refusals))); disagreements \(disagreements), refusals only the database made \(policyGaps)
            """
    }
}

/// Something that must not happen: a disagreement at a step, or an invariant broken after the run.
private struct Failure: Sendable {
    /// What shrinking keeps: the step kind and both verdicts, or the invariant's name.
    let signature: String
    /// Index of the step (disagreements only).
    let step: Int?
    let message: String
    /// The step kinds whose database verdict a replay must ask for to see this failure again.
    let askDatabase: Set<String>
}

private struct RunResult: Sendable {
    let seed: UInt64
    let steps: [Step]
    let tally: Tally
    let failures: [Failure]
}

/// What one step did: who did what to what (resolved), and both verdicts (nil when not asked).
private struct StepResult: Sendable {
    let resolved: String
    let swift: Verdict?
    let database: Verdict?
    /// The step changed the database (a committed command, a registration, an R10 ticket); steps that changed
    /// nothing are the first thing shrinking removes.
    var changed = false
    /// What the step referred to and created (for shrinking).
    var refs = References()

    init(resolved: String, swift: Verdict?, database: Verdict?, changed: Bool = false) {
        self.resolved = resolved
        self.swift = swift
        self.database = database
        self.changed = changed || swift == .success
    }

    /// The Swift store refused with a code that `ApprovalPolicy` never produces: the Swift half let the command
    /// through and only the database's re-check stopped it (so both sides "agree", on the database's code).
    var policyGap: String? {
        guard case .refused(let code) = swift, RefusalCode(rawValue: code) == nil else { return nil }
        return code
    }

    /// What makes this step a failure, if anything: a disagreement, or a refusal the Swift policy missed.
    func signature(_ step: Step) -> String? {
        if let swift, let database, swift != database {
            return "\(step.kind): Swift \(swift), database \(database)"
        }
        if let gap = policyGap {
            return "\(step.kind): the Swift policy allowed it, the database refused it (\(gap))"
        }
        return nil
    }
}

/// The entities a step referred to and created, by key (the position of the step that created them; initial users
/// -1, -2, ...; agents by index). Shrinking deletes steps and re-points the indices of the others with these, and drops
/// steps whose entities no longer exist.
private struct References: Sendable {
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
private func reindex(_ steps: [Step], _ refs: [References], keep: (Int) -> Bool) -> [Step] {
    var users = (0..<Runner.initialUsers).map { -1 - $0 }
    let agents = 2
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
        case .request(let actor, let role, let org):
            rewritten = .request(actor: actorUser ?? actor, role: role, org: org)
        case .approve(let actor, let index, let channel, let ticket):
            rewritten = .approve(actor: actorUser ?? actor, request: request ?? index, channel: channel, ticket: ticket)
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
        }
        result.append(rewritten)
        if ref.createdRequest { requests.append(position) }
        if let holder = ref.createdAssignmentHolder { assignments.append((position, holder)) }
    }
    return result
}

private struct TrackedRequest: Sendable {
    let request: AccessRequest
    var status: RequestStatus
}

private struct TrackedAssignment: Sendable {
    let assignment: RoleAssignment
    var revoked: Bool
    var holder: AccountID { assignment.account }
}

// MARK: - One run against one database

/// The test's model of one database: its actors, organisations, the requests filed and the roles granted.
private struct Runner {
    let f: Fixture
    /// Policy off, rolled back: the database's verdict.
    let databaseOnly: AccessRequestStore
    var users: [AccountID] = []
    var agents: [AccountID] = []
    var orgs: [OrganisationID] = []
    var requests: [TrackedRequest] = []
    var assignments: [TrackedAssignment] = []
    var labels: [String: String] = [:]
    var tally = Tally()
    /// Stable keys of the users, requests and assignments (parallel to the lists): the position of the step that
    /// created each (initial users: -1, -2, ...). Shrinking uses them to re-point indices after deleting steps.
    var userKeys: [Int] = []
    var requestKeys: [Int] = []
    var assignmentKeys: [Int] = []
    /// Step kinds whose database verdict is asked (nil: all). Replays while shrinking a disagreement ask only for
    /// the kind that disagreed: the dry run changes nothing, so skipping it elsewhere keeps the replay the same.
    var askDatabase: Set<String>?

    static let initialUsers = 5

    static func make(_ f: Fixture) async throws -> Runner {
        var runner = Runner(f: f, databaseOnly: f.databaseOnly(dryRun: true).requests)
        for index in 0..<initialUsers {
            let user = try await f.user("user\(index)")
            runner.users.append(user)
            runner.labels[user.description] = "u\(index)"
            runner.userKeys.append(-1 - index)
        }
        for index in 0..<2 {
            let agent = try await f.staff(.serviceDesk)
            runner.agents.append(agent)
            runner.labels[agent.description] = "desk\(index)"
        }
        for index in 0..<3 {
            let org = try await f.organisation("Differential Org \(index)")
            runner.orgs.append(org)
            runner.labels[org.description] = "org\(index)"
        }
        return runner
    }

    // MARK: Labels for traces

    func label(_ account: AccountID) -> String { labels[account.description] ?? account.description }
    func label(_ org: OrganisationID?) -> String { org.map { labels[$0.rawValue] ?? $0.rawValue } ?? "no organisation" }

    func label(request index: Int) -> String {
        let tracked = requests[index]
        let r = tracked.request
        return "req#\(index) (\(label(r.requester))'s \(r.role.rawValue) @\(label(r.organisation)), filed as "
            + "\(r.approverKind.rawValue))"
    }

    func label(assignment index: Int) -> String {
        let tracked = assignments[index]
        let a = tracked.assignment
        return "asg#\(index) (\(label(a.account))'s \(a.role.rawValue) @\(label(a.organisation))"
            + "\(a.firstSuperUser ? ", first" : "")\(tracked.revoked ? ", revoked" : ""))"
    }

    // MARK: Executing a step

    /// Runs `step`, the `position`-th of its sequence (the key of whatever it creates, for shrinking).
    mutating func execute(_ step: Step, position: Int) async throws -> StepResult {
        tally.steps += 1
        let ask = askDatabase?.contains(step.kind) ?? true
        let before = (requests: requests.count, assignments: assignments.count)
        var refs = references(of: step)
        var result: StepResult
        switch step {
        case .register:
            let user = try await f.user("registered")
            labels[user.description] = "u\(users.count)"
            users.append(user)
            tally.registrations += 1
            result = StepResult(resolved: "\(label(user)) registers", swift: nil, database: nil, changed: true)
        case .request(let actorIndex, let role, let orgIndex):
            result = await submit(
                actor: users[actorIndex % users.count], role: role, org: orgIndex.map { orgs[$0 % orgs.count] }, ask: ask)
        case .approve(let actorIndex, let requestIndex, let channel, let ticket):
            result = try await decide(
                actorIndex: actorIndex, requestIndex: requestIndex, channel: channel, action: .approve, ticket: ticket, ask: ask)
        case .reject(let actorIndex, let requestIndex, let channel, let reason):
            result = try await decide(
                actorIndex: actorIndex, requestIndex: requestIndex, channel: channel, action: .reject(reason: reason),
                ticket: false, ask: ask)
        case .cancel(let actorIndex, let requestIndex):
            result = await cancel(actorIndex: actorIndex, requestIndex: requestIndex, ask: ask)
        case .revoke(let actorIndex, let assignmentIndex, let channel):
            let actor = channel == .serviceDesk ? agents[actorIndex % agents.count] : users[actorIndex % users.count]
            let candidates =
                channel == .serviceDesk
                ? Array(assignments.indices) : assignments.indices.filter { assignments[$0].holder != actor }
            result = await revoke(actor: actor, candidates: candidates, position: assignmentIndex, channel: channel, ask: ask)
        case .dropOwn(let actorIndex, let assignmentIndex):
            let actor = users[actorIndex % users.count]
            let candidates = assignments.indices.filter { assignments[$0].holder == actor }
            result = await revoke(actor: actor, candidates: candidates, position: assignmentIndex, channel: .own, ask: ask)
        }
        if case .register = step { userKeys.append(position) }
        if requests.count > before.requests {
            requestKeys.append(position)
            refs.createdRequest = true
        }
        if assignments.count > before.assignments, let holder = assignments.last?.holder,
            let holderIndex = users.firstIndex(of: holder)
        {
            assignmentKeys.append(position)
            refs.createdAssignmentHolder = userKeys[holderIndex]
        }
        result.refs = refs
        if result.policyGap != nil { tally.policyGaps += 1 }
        if let swift = result.swift, let database = result.database {
            if swift != database {
                tally.disagreements += 1
            } else if swift == .success {
                tally.successes[step.kind, default: 0] += 1
            } else if result.policyGap == nil {
                tally.refusals[swift.description, default: 0] += 1
            }
        }
        return result
    }

    private mutating func submit(actor: AccountID, role: Role, org: OrganisationID?, ask: Bool) async -> StepResult {
        let dry = databaseOnly
        let real = f.requests
        let justification = "differential property test"
        let database =
            ask
            ? await Verdict.run {
                try await dry.submit(actor: actor, role: role, organisation: org, justification: justification)
            }.0 : nil
        let (swift, submission) = await Verdict.run {
            try await real.submit(actor: actor, role: role, organisation: org, justification: justification)
        }
        let resolved = "\(label(actor)) requests \(role.rawValue) @\(label(org))"
        if let submission {
            requests.append(TrackedRequest(request: submission.request, status: submission.request.status))
            if let grant = submission.grant { assignments.append(TrackedAssignment(assignment: grant, revoked: false)) }
        }
        return StepResult(resolved: resolved, swift: swift, database: database)
    }

    private mutating func decide(
        actorIndex: Int, requestIndex: Int, channel: DecisionChannel, action: DecisionAction, ticket: Bool, ask: Bool
    ) async throws -> StepResult {
        guard !requests.isEmpty else {
            tally.skipped += 1
            return StepResult(resolved: "no request to decide", swift: nil, database: nil)
        }
        let actor = channel == .serviceDesk ? agents[actorIndex % agents.count] : users[actorIndex % users.count]
        let index = requestIndex % requests.count
        let id = requests[index].request.id
        var note = ""
        var opened = false
        if channel == .serviceDesk, ticket, action == .approve, try await openTicketIfNone(index, agent: actor) {
            note = " (R10 ticket opened first)"
            opened = true
        }
        let verb = action == .approve ? "approves" : "rejects"
        let state =
            try await f.ownerQuery(
                "SELECT status || ', ' || approver_kind FROM access_requests WHERE id = \(id.rawValue)"
            ).first ?? "?"
        let resolved = "\(label(actor)) \(verb) \(label(request: index)) [now \(state)] via \(channel)\(note)"
        let dry = databaseOnly
        let real = f.requests
        let database =
            ask
            ? await Verdict.run {
                try await dry.decide(actor: actor, request: id, channel: channel, action: action, comment: nil)
            }.0 : nil
        let (swift, decision) = await Verdict.run {
            try await real.decide(actor: actor, request: id, channel: channel, action: action, comment: nil)
        }
        if let decision {
            requests[index].status = decision.request.status
            if let grant = decision.grant { assignments.append(TrackedAssignment(assignment: grant, revoked: false)) }
        }
        return StepResult(resolved: resolved, swift: swift, database: database, changed: opened)
    }

    /// Opens the R10 ticket as the requester when the request is a pending first-super-user request without an
    /// open ticket. Failures are ignored (the decision's verdicts are what the test compares).
    private mutating func openTicketIfNone(_ index: Int, agent: AccountID) async throws -> Bool {
        let tracked = requests[index]
        guard tracked.status == .pending, tracked.request.role == .superUser,
            let current = try? await f.requests.request(tracked.request.id, actor: agent),
            current.status == .pending, current.approverKind == .emaServiceDesk
        else { return false }
        let open = try await f.ownerQuery(
            "SELECT id::text FROM service_desk_tickets WHERE access_request_id = \(current.id.rawValue) AND status = 'open'")
        guard open.isEmpty else { return false }
        guard (try? await f.openTicket(for: current, by: current.requester)) != nil else { return false }
        tally.ticketsOpened += 1
        return true
    }

    private mutating func cancel(actorIndex: Int, requestIndex: Int, ask: Bool) async -> StepResult {
        guard !requests.isEmpty else {
            tally.skipped += 1
            return StepResult(resolved: "no request to cancel", swift: nil, database: nil)
        }
        let everyone = users + agents
        let actor = everyone[actorIndex % everyone.count]
        let index = requestIndex % requests.count
        let id = requests[index].request.id
        let resolved = "\(label(actor)) cancels \(label(request: index))"
        let dry = databaseOnly
        let real = f.requests
        let database = ask ? await Verdict.run { try await dry.cancel(actor: actor, request: id) }.0 : nil
        let (swift, cancelled) = await Verdict.run { try await real.cancel(actor: actor, request: id) }
        if let cancelled { requests[index].status = cancelled.status }
        return StepResult(resolved: resolved, swift: swift, database: database)
    }

    private mutating func revoke(
        actor: AccountID, candidates: [Int], position: Int, channel: RevocationChannel, ask: Bool
    ) async -> StepResult {
        guard !candidates.isEmpty else {
            tally.skipped += 1
            return StepResult(
                resolved: "\(label(actor)) has no assignment to \(channel == .own ? "drop" : "revoke")",
                swift: nil, database: nil)
        }
        let index = candidates[position % candidates.count]
        let id = assignments[index].assignment.id
        let verb = channel == .own ? "drops" : "revokes"
        let resolved = "\(label(actor)) \(verb) \(label(assignment: index)) via \(channel)"
        let dry = databaseOnly
        let real = f.requests
        let reason = "differential property test"
        let database =
            ask
            ? await Verdict.run {
                try await dry.revoke(actor: actor, assignment: id, channel: channel, reason: reason)
            }.0 : nil
        let (swift, revoked) = await Verdict.run {
            try await real.revoke(actor: actor, assignment: id, channel: channel, reason: reason)
        }
        if let revoked { assignments[index].revoked = revoked.revokedAt != nil }
        return StepResult(resolved: resolved, swift: swift, database: database)
    }

    /// The keys of the entities `step` refers to, resolved as `execute` resolves its indices.
    func references(of step: Step) -> References {
        var refs = References()
        func user(_ index: Int) -> Int { userKeys[index % users.count] }
        switch step {
        case .register:
            break
        case .request(let actor, _, _):
            refs.actorUser = user(actor)
        case .approve(let actor, let request, let channel, _), .reject(let actor, let request, let channel, _):
            if channel == .serviceDesk { refs.actorAgent = actor % agents.count } else { refs.actorUser = user(actor) }
            if !requests.isEmpty { refs.request = requestKeys[request % requests.count] }
        case .cancel(let actor, let request):
            let index = actor % (users.count + agents.count)
            if index < users.count { refs.actorUser = userKeys[index] } else { refs.actorAgent = index - users.count }
            if !requests.isEmpty { refs.request = requestKeys[request % requests.count] }
        case .revoke(let actor, let assignment, let channel):
            let account = channel == .serviceDesk ? agents[actor % agents.count] : users[actor % users.count]
            if channel == .serviceDesk { refs.actorAgent = actor % agents.count } else { refs.actorUser = user(actor) }
            let candidates =
                channel == .serviceDesk
                ? Array(assignments.indices) : assignments.indices.filter { assignments[$0].holder != account }
            if !candidates.isEmpty { refs.assignment = assignmentKeys[candidates[assignment % candidates.count]] }
        case .dropOwn(let actor, let assignment):
            let account = users[actor % users.count]
            refs.actorUser = user(actor)
            let candidates = assignments.indices.filter { assignments[$0].holder == account }
            if !candidates.isEmpty { refs.assignment = assignmentKeys[candidates[assignment % candidates.count]] }
        }
        return refs
    }

    // MARK: Generating a step (biased by the model, so the mix of outcomes is healthy)

    /// Indices into `users` of the active super users of `org`, as the model knows them.
    func activeSuperUsers(of org: OrganisationID?) -> [Int] {
        guard let org else { return [] }
        let holders = Set(
            assignments.filter {
                !$0.revoked && $0.assignment.role == .superUser && $0.assignment.organisation == org
            }.map(\.holder.rawValue))
        return users.indices.filter { holders.contains(users[$0].rawValue) }
    }

    func generate(_ rng: inout SplitMix64) -> Step {
        let roll = rng.int(100)
        switch roll {
        case 0..<4 where users.count < 16: return .register
        case 0..<34: return requestStep(&rng)
        case 34..<58: return decisionStep(&rng, approve: true)
        case 58..<68: return decisionStep(&rng, approve: false)
        case 68..<76: return cancelStep(&rng)
        case 76..<88: return revokeStep(&rng)
        default: return dropStep(&rng)
        }
    }

    func requestStep(_ rng: inout SplitMix64) -> Step {
        let actor = rng.int(users.count)
        let roll = rng.int(100)
        let role: Role = roll < 42 ? .superUser : roll < 84 ? .industryUser : .unaffiliatedUser
        let org: Int?
        if role == .unaffiliatedUser {
            org = rng.chance(15) ? rng.int(orgs.count) : nil
        } else {
            org = rng.chance(6) ? nil : rng.int(orgs.count)
        }
        return .request(actor: actor, role: role, org: org)
    }

    func decisionStep(_ rng: inout SplitMix64, approve: Bool) -> Step {
        guard !requests.isEmpty else { return requestStep(&rng) }
        let desk = rng.chance(approve ? 45 : 35)
        let pending = requests.indices.filter {
            requests[$0].status == .pending && (!desk || requests[$0].request.role == .superUser)
        }
        let index = !pending.isEmpty && rng.chance(80) ? rng.pick(pending) : rng.int(requests.count)
        let actor: Int
        if desk {
            actor = rng.int(agents.count)
        } else {
            let superUsers = activeSuperUsers(of: requests[index].request.organisation)
            actor = !superUsers.isEmpty && rng.chance(85) ? rng.pick(superUsers) : rng.int(users.count)
        }
        let channel: DecisionChannel = desk ? .serviceDesk : .organisation
        if approve { return .approve(actor: actor, request: index, channel: channel, ticket: rng.chance(80)) }
        let reason =
            rng.chance(85)
            ? rng.pick(["Not employed by this organisation", "Please ask for the industry user role instead"])
            : rng.pick(["", "   "])
        return .reject(actor: actor, request: index, channel: channel, reason: reason)
    }

    func cancelStep(_ rng: inout SplitMix64) -> Step {
        guard !requests.isEmpty else { return requestStep(&rng) }
        let everyone = users + agents
        let pending = requests.indices.filter { requests[$0].status == .pending }
        if !pending.isEmpty && rng.chance(75) {
            let index = rng.pick(pending)
            let actor = everyone.firstIndex(of: requests[index].request.requester) ?? rng.int(everyone.count)
            return .cancel(actor: actor, request: index)
        }
        return .cancel(actor: rng.int(everyone.count), request: rng.int(requests.count))
    }

    func revokeStep(_ rng: inout SplitMix64) -> Step {
        guard !assignments.isEmpty else { return requestStep(&rng) }
        let active = assignments.indices.filter { !assignments[$0].revoked }
        if rng.chance(25) {
            let target = !active.isEmpty && rng.chance(75) ? rng.pick(active) : rng.int(assignments.count)
            return .revoke(actor: rng.int(agents.count), assignment: target, channel: .serviceDesk)
        }
        let target = !active.isEmpty && rng.chance(80) ? rng.pick(active) : rng.int(assignments.count)
        let holder = assignments[target].holder
        let superUsers = activeSuperUsers(of: assignments[target].assignment.organisation).filter { users[$0] != holder }
        var actor = !superUsers.isEmpty && rng.chance(80) ? rng.pick(superUsers) : rng.int(users.count)
        if users[actor] == holder { actor = (actor + 1) % users.count }
        let candidates = assignments.indices.filter { assignments[$0].holder != users[actor] }
        guard let position = candidates.firstIndex(of: target) else { return requestStep(&rng) }
        return .revoke(actor: actor, assignment: position, channel: .organisation)
    }

    func dropStep(_ rng: inout SplitMix64) -> Step {
        guard !assignments.isEmpty else { return requestStep(&rng) }
        let active = assignments.indices.filter { !assignments[$0].revoked }
        let target = !active.isEmpty && rng.chance(85) ? rng.pick(active) : rng.int(assignments.count)
        let holder = assignments[target].holder
        guard let actor = users.firstIndex(of: holder) else { return requestStep(&rng) }
        let own = assignments.indices.filter { assignments[$0].holder == holder }
        guard let position = own.firstIndex(of: target) else { return requestStep(&rng) }
        return .dropOwn(actor: actor, assignment: position)
    }

    // MARK: Invariants

    /// The invariants of the issue, each a query (as the owner) for the rows that break it.
    static let invariants: [(name: String, query: PostgresQuery)] = [
        (
            "no organisation has two active first super users",
            """
            SELECT organisation_id FROM role_assignments WHERE first_super_user AND revoked_at IS NULL
            GROUP BY organisation_id HAVING count(*) > 1
            """
        ),
        (
            "every active assignment traces to an approved request (same person, role, organisation) or a staff grant",
            """
            SELECT g.id::text || ' (' || g.source || ', request ' || coalesce(r.id::text || ' ' || r.status, 'none') || ')'
            FROM role_assignments g LEFT JOIN access_requests r ON r.id = g.access_request_id
            WHERE g.revoked_at IS NULL AND NOT coalesce(
                g.source = 'staff-grant'
                OR (g.source = 'access-request' AND r.status = 'approved' AND r.requester_id = g.account_id
                    AND r.role = g.role AND r.organisation_id IS NOT DISTINCT FROM g.organisation_id), false)
            """
        ),
        (
            "one audit event per access request state change (submitted, plus its decision if decided by someone)",
            """
            SELECT r.id::text || ' (' || r.status || ', ' || r.approver_kind || '): ' || count(e.id) || ' events'
            FROM access_requests r
            LEFT JOIN audit_events e ON e.subject_type = 'access_request' AND e.subject_id = r.id::text
                AND e.action IN ('access-request.submitted', 'access-request.approved', 'access-request.rejected',
                                 'access-request.cancelled', 'access-request.expired')
            GROUP BY r.id, r.status, r.approver_kind
            HAVING count(e.id) <> 1 + CASE WHEN r.status <> 'pending' AND r.approver_kind <> 'automatic' THEN 1 ELSE 0 END
            """
        ),
        (
            "one audit event per role assignment change (granted once, revoked or dropped once if revoked)",
            """
            SELECT g.id::text || ': granted ' || granted || ', revoked ' || revoked
            FROM (SELECT g.id, g.revoked_at,
                         (SELECT count(*) FROM audit_events e WHERE e.subject_type = 'role_assignment'
                            AND e.subject_id = g.id::text AND e.action = 'role-assignment.granted') AS granted,
                         (SELECT count(*) FROM audit_events e WHERE e.subject_type = 'role_assignment'
                            AND e.subject_id = g.id::text
                            AND e.action IN ('role-assignment.revoked', 'role-assignment.dropped')) AS revoked
                  FROM role_assignments g) g
            WHERE granted <> 1 OR revoked <> CASE WHEN g.revoked_at IS NULL THEN 0 ELSE 1 END
            """
        ),
        (
            "no account holds a role twice in one organisation",
            """
            SELECT account_id::text || ' ' || role || ' ' || coalesce(organisation_id, '-') FROM role_assignments
            WHERE revoked_at IS NULL GROUP BY account_id, role, organisation_id HAVING count(*) > 1
            """
        ),
        (
            "every approved request has exactly one assignment",
            """
            SELECT r.id::text || ': ' || (SELECT count(*) FROM role_assignments g WHERE g.access_request_id = r.id)
            FROM access_requests r
            WHERE r.status = 'approved' AND (SELECT count(*) FROM role_assignments g WHERE g.access_request_id = r.id) <> 1
            """
        ),
    ]

    /// Broken invariants: name → offending rows.
    func brokenInvariants() async throws -> [(name: String, rows: [String])] {
        var broken: [(name: String, rows: [String])] = []
        for invariant in Self.invariants {
            let rows = try await f.ownerQuery(invariant.query)
            if !rows.isEmpty { broken.append((invariant.name, rows)) }
        }
        return broken
    }

    /// Cross-check of the test's own model against the database (a wrong model would make the test meaningless).
    func modelMismatches() async throws -> [String] {
        var mismatches: [String] = []
        let active = try await f.ownerQuery("SELECT id::text FROM role_assignments WHERE revoked_at IS NULL ORDER BY id")
        let modelled = assignments.filter { !$0.revoked }.map { String($0.assignment.id) }
        if Set(active) != Set(modelled) { mismatches.append("active assignments: database \(active), model \(modelled)") }
        let statuses = try await f.ownerQuery("SELECT id::text || ':' || status FROM access_requests ORDER BY id")
        let modelStatuses = requests.map { "\($0.request.id.rawValue):\($0.status.rawValue)" }
        if Set(statuses) != Set(modelStatuses) {
            mismatches.append("request statuses: database \(statuses), model \(modelStatuses)")
        }
        return mismatches
    }
}

// MARK: - Configuration

private struct Configuration: Sendable {
    let seeds: [UInt64]
    let steps: Int

    /// Four fixed runs of 250 steps in CI; `SPOR_PROPERTY_SEED` (comma-separated, decimal or 0x-hex) and
    /// `SPOR_PROPERTY_STEPS` override them.
    static func fromEnvironment() -> Configuration {
        let environment = ProcessInfo.processInfo.environment
        let fixed: [UInt64] = [0x5EED_0001, 0x5EED_0002, 0x5EED_0003, 0x5EED_0004]
        let seeds =
            environment["SPOR_PROPERTY_SEED"].map { text in
                text.split(separator: ",").compactMap { part -> UInt64? in
                    let trimmed = part.trimmingCharacters(in: .whitespaces)
                    return trimmed.hasPrefix("0x") ? UInt64(trimmed.dropFirst(2), radix: 16) : UInt64(trimmed)
                }
            } ?? fixed
        let steps = environment["SPOR_PROPERTY_STEPS"].flatMap { Int($0) } ?? 250
        return Configuration(seeds: seeds.isEmpty ? fixed : seeds, steps: max(steps, 1))
    }
}

private func hex(_ seed: UInt64) -> String { "0x" + String(seed, radix: 16, uppercase: true) }

// MARK: - The test

@Suite("Differential property: the Swift policy and the database agree")
struct DifferentialPropertyTests {
    /// Replays per shrunk failure, and the wall-clock budget for all shrinking of one test run
    /// (`SPOR_PROPERTY_SHRINK_SECONDS` overrides it; 0 reports failures unshrunk).
    static let replaysPerFailure = 60
    static var shrinkingBudget: Duration {
        .seconds(ProcessInfo.processInfo.environment["SPOR_PROPERTY_SHRINK_SECONDS"].flatMap { Int($0) } ?? 90)
    }

    @Test("R4–R18: random command sequences get the same verdict from Swift and from the database; invariants hold")
    func swiftAndDatabaseAgree() async throws {
        let configuration = Configuration.fromEnvironment()
        let clock = ContinuousClock()
        let started = clock.now
        var total = Tally()
        var results: [RunResult] = []
        for seed in configuration.seeds {
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

        print(total.summary + " — \(configuration.seeds.map(hex).joined(separator: ", ")) in \(ran)")
        // The test must not pass vacuously: with a full-sized run, many commands succeed and many rules say no.
        if total.steps >= 400 {
            #expect(total.totalSuccesses >= 50, "too few agreed successes: \(total.summary)")
            #expect(total.refusals.count >= 5, "too few distinct refusal codes: \(total.summary)")
            #expect(total.successes["approve", default: 0] >= 10, "too few approvals: \(total.summary)")
            #expect(
                total.successes["revoke", default: 0] + total.successes["drop-own", default: 0] >= 10,
                "too few revocations: \(total.summary)")
        }
    }

    /// One seeded run: generate each step from the model, execute it on both sides, compare; then the invariants.
    private static func run(seed: UInt64, steps count: Int, _ f: Fixture) async throws -> RunResult {
        var rng = SplitMix64(seed: seed)
        var runner = try await Runner.make(f)
        var steps: [Step] = []
        var failures: [Failure] = []
        for index in 0..<count {
            let step = runner.generate(&rng)
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
    private static func shrink(
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

    private static func report(_ failure: Failure, of result: RunResult, deadline: ContinuousClock.Instant) async throws -> String {
        let sequence = failure.step.map { Array(result.steps.prefix($0 + 1)) } ?? result.steps
        var text = "seed \(hex(result.seed)) (\(result.seed)): \(failure.message)\n"
        if failure.signature.hasPrefix("model: ") {
            return text + "(the test's model disagrees with the database: a defect of the test)"
        }
        if ContinuousClock().now >= deadline {
            text += "not shrunk (shrinking budget spent); sequence:\n" + sequence.map { "  \($0)" }.joined(separator: "\n")
            return text + "\nreproduce: SPOR_PROPERTY_SEED=\(result.seed) SPOR_PROPERTY_STEPS=\(result.steps.count)"
        }
        let shrunk = try await shrink(sequence, failure: failure, deadline: deadline)
        if shrunk.reproduced {
            text += "shrunk sequence (\(shrunk.steps.count) of \(sequence.count) steps, \(shrunk.replays) replays):\n"
            text += shrunk.steps.map { "  \($0)" }.joined(separator: "\n")
            text += "\nreplayed (index. step // what it meant → verdicts):\n" + shrunk.trace.joined(separator: "\n")
        } else {
            text += "NOT reproduced on replay; full sequence:\n" + sequence.map { "  \($0)" }.joined(separator: "\n")
        }
        text +=
            "\nreproduce: SPOR_PROPERTY_SEED=\(result.seed) SPOR_PROPERTY_STEPS=\(result.steps.count) "
            + "swift test --filter DifferentialPropertyTests"
        return text
    }
}
