import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO

extension DifferentialPropertyTests {
    // MARK: - Verdicts

    /// A side's answer to one command: success, or the refusal code (or the error, for anything unmapped).
    enum Verdict: Sendable, Equatable, CustomStringConvertible {
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

    /// What one step did: who did what to what (resolved), and both verdicts (nil when not asked).
    struct StepResult: Sendable {
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

    // MARK: - Bookkeeping

    struct Tally: Sendable {
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
        /// What the jobs did when the clock moved (R21, R22).
        var grantsEnded = 0
        var reviewsOpened = 0
        var reviewsClosed = 0

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
            grantsEnded += other.grantsEnded
            reviewsOpened += other.reviewsOpened
            reviewsClosed += other.reviewsClosed
        }

        var summary: String {
            func list(_ counts: [String: Int]) -> String {
                counts.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
                    .map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            }
            return """
                Differential property: \(runs) runs, \(steps) steps (\(registrations) registrations, \(skipped) skipped, \
                \(ticketsOpened) R10 tickets opened, \(grantsEnded) grants ended, \(reviewsOpened) reviews opened, \(reviewsClosed) closed); agreed successes \(totalSuccesses) (\(list(successes))); \
                agreed refusals \(totalRefusals) in \(refusals.count) codes (\(list(refusals))); disagreements \(disagreements), refusals only the database made \(policyGaps)
                """
        }
    }

    // MARK: - One run against one database

    /// Runs steps against one database, twice each (database verdict, then Swift verdict), and keeps the model and the
    /// tally up to date.
    struct Runner {
        let f: Fixture
        /// Policy off, rolled back: the database's verdict.
        let databaseOnly: AccessRequestStore
        /// The same for access review decisions (R22).
        let reviewsDatabaseOnly: AccessReviewStore
        var model = Model()
        var tally = Tally()
        /// Step kinds whose database verdict is asked (nil: all). Replays while shrinking a disagreement ask only for
        /// the kind that disagreed: the dry run changes nothing, so skipping it elsewhere keeps the replay the same.
        var askDatabase: Set<String>?

        static func make(_ f: Fixture) async throws -> Runner {
            var raw = f.database
            raw.dryRun = true
            var runner = Runner(
                f: f, databaseOnly: f.databaseOnly(dryRun: true).requests,
                reviewsDatabaseOnly: AccessReviewStore(database: raw, policy: .databaseOnly))
            // Reviews come monthly and stay open ten days, so a run of a few months sees several; undecided items are
            // revoked at the due date (R22).
            _ = try await f.ownerQuery(
                """
                UPDATE settings SET review_interval_months = 1, review_period = interval '10 days', review_revokes_undecided = true
                RETURNING 'ok'
                """)
            for index in 0..<Model.initialUsers {
                let user = try await f.user("user\(index)")
                runner.model.users.append(user)
                runner.model.labels[user.description] = "u\(index)"
                runner.model.userKeys.append(-1 - index)
            }
            for index in 0..<Model.initialAgents {
                let agent = try await f.staff(.serviceDesk)
                runner.model.agents.append(agent)
                runner.model.labels[agent.description] = "desk\(index)"
            }
            for index in 0..<Model.initialOrganisations {
                let org = try await f.organisation("Differential Org \(index)")
                runner.model.orgs.append(org)
                runner.model.labels[org.description] = "org\(index)"
            }
            return runner
        }

        // MARK: Executing a step

        /// Runs `step`, the `position`-th of its sequence (the key of whatever it creates, for shrinking).
        mutating func execute(_ step: Step, position: Int) async throws -> StepResult {
            tally.steps += 1
            let ask = askDatabase?.contains(step.kind) ?? true
            let before = (requests: model.requests.count, assignments: model.assignments.count)
            var refs = model.references(of: step)
            var result: StepResult
            switch step {
            case .register:
                let user = try await f.user("registered")
                model.labels[user.description] = "u\(model.users.count)"
                model.users.append(user)
                tally.registrations += 1
                result = StepResult(resolved: "\(model.label(user)) registers", swift: nil, database: nil, changed: true)
            case .request(let actorIndex, let role, let orgIndex, let days):
                result = await submit(
                    actor: model.users[actorIndex % model.users.count], role: role, org: orgIndex.map { model.orgs[$0 % model.orgs.count] },
                    until: days.map(model.clock(plus:)), ask: ask)
            case .approve(let actorIndex, let requestIndex, let channel, let ticket, let days):
                result = try await decide(
                    actorIndex: actorIndex, requestIndex: requestIndex, channel: channel, action: .approve, ticket: ticket,
                    until: days.map(model.clock(plus:)), ask: ask)
            case .reject(let actorIndex, let requestIndex, let channel, let reason):
                result = try await decide(
                    actorIndex: actorIndex, requestIndex: requestIndex, channel: channel, action: .reject(reason: reason),
                    ticket: false, until: nil, ask: ask)
            case .cancel(let actorIndex, let requestIndex):
                result = await cancel(actorIndex: actorIndex, requestIndex: requestIndex, ask: ask)
            case .revoke(let actorIndex, let assignmentIndex, let channel):
                let actor = channel == .serviceDesk ? model.agents[actorIndex % model.agents.count] : model.users[actorIndex % model.users.count]
                let candidates =
                    channel == .serviceDesk
                    ? Array(model.assignments.indices) : model.assignments.indices.filter { model.assignments[$0].holder != actor }
                result = await revoke(actor: actor, candidates: candidates, position: assignmentIndex, channel: channel, ask: ask)
            case .dropOwn(let actorIndex, let assignmentIndex):
                let actor = model.users[actorIndex % model.users.count]
                let candidates = model.assignments.indices.filter { model.assignments[$0].holder == actor }
                result = await revoke(actor: actor, candidates: candidates, position: assignmentIndex, channel: .own, ask: ask)
            case .advanceClock(let days, let runJobs):
                result = try await advanceClock(days: days, runJobs: runJobs)
            case .decideReview(let actorIndex, let itemIndex, let channel, let decision):
                result = await decideReview(actorIndex: actorIndex, itemIndex: itemIndex, channel: channel, decision: decision, ask: ask)
            }
            if case .register = step { model.userKeys.append(position) }
            if model.requests.count > before.requests {
                model.requestKeys.append(position)
                refs.createdRequest = true
            }
            if model.assignments.count > before.assignments, let holder = model.assignments.last?.holder,
                let holderIndex = model.users.firstIndex(where: { $0.id == holder })
            {
                model.assignmentKeys.append(position)
                refs.createdAssignmentHolder = model.userKeys[holderIndex]
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

        /// A grant as the model tracks it: inactive from the start when it ends before the jobs' clock (R21).
        private func tracked(_ grant: RoleAssignment) -> TrackedAssignment {
            TrackedAssignment(
                assignment: grant, revoked: !ApprovalPolicy.isActive(revokedAt: grant.revokedAt, endsAt: grant.endsAt, now: model.clock))
        }

        private mutating func submit(actor: TestAccount, role: Role, org: OrganisationID?, until: Date?, ask: Bool) async -> StepResult {
            let dry = databaseOnly
            let real = f.requests
            let justification = "differential property test"
            let database =
                ask
                ? await Verdict.run {
                    try await dry.submit(actor: actor, role: role, organisation: org, justification: justification, accessUntil: until)
                }.0 : nil
            let (swift, submission) = await Verdict.run {
                try await real.submit(actor: actor, role: role, organisation: org, justification: justification, accessUntil: until)
            }
            let resolved =
                "\(model.label(actor)) requests \(role.rawValue) @\(model.label(org))\(until.map { " until \($0.formatted(.iso8601))" } ?? "")"
            if let submission {
                model.requests.append(TrackedRequest(request: submission.request, status: submission.request.status))
                if let grant = submission.grant { model.assignments.append(tracked(grant)) }
            }
            return StepResult(resolved: resolved, swift: swift, database: database)
        }

        private mutating func decide(
            actorIndex: Int, requestIndex: Int, channel: DecisionChannel, action: DecisionAction, ticket: Bool, until: Date?, ask: Bool
        ) async throws -> StepResult {
            guard !model.requests.isEmpty else {
                tally.skipped += 1
                return StepResult(resolved: "no request to decide", swift: nil, database: nil)
            }
            let actor = channel == .serviceDesk ? model.agents[actorIndex % model.agents.count] : model.users[actorIndex % model.users.count]
            let index = requestIndex % model.requests.count
            let id = model.requests[index].request.id
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
            let resolved =
                "\(model.label(actor)) \(verb) \(model.label(request: index)) [now \(state)] via \(channel)\(note)"
                + (until.map { " until \($0.formatted(.iso8601))" } ?? "")
            let dry = databaseOnly
            let real = f.requests
            let database =
                ask
                ? await Verdict.run {
                    try await dry.decide(actor: actor, request: id, channel: channel, action: action, comment: nil, grantUntil: until)
                }.0 : nil
            let (swift, decision) = await Verdict.run {
                try await real.decide(actor: actor, request: id, channel: channel, action: action, comment: nil, grantUntil: until)
            }
            if let decision {
                model.requests[index].status = decision.request.status
                if let grant = decision.grant {
                    // A renewal ended the requester's previous assignment of the role (R21).
                    for i in model.assignments.indices
                    where model.assignments[i].holder == grant.account && model.assignments[i].assignment.role == grant.role
                        && model.assignments[i].assignment.organisation == grant.organisation
                    {
                        model.assignments[i].revoked = true
                    }
                    model.assignments.append(tracked(grant))
                }
            }
            return StepResult(resolved: resolved, swift: swift, database: database, changed: opened)
        }

        /// Opens the R10 ticket as the requester when the request is a pending first-super-user request without an
        /// open ticket. Failures are ignored (the decision's verdicts are what the test compares).
        private mutating func openTicketIfNone(_ index: Int, agent: TestAccount) async throws -> Bool {
            let tracked = model.requests[index]
            guard tracked.status == .pending, tracked.request.role == .superUser,
                let current = try? await f.requests.request(tracked.request.id, actor: agent),
                current.status == .pending, current.approverKind == .emaServiceDesk
            else { return false }
            let open = try await f.ownerQuery(
                "SELECT id::text FROM service_desk_tickets WHERE access_request_id = \(current.id.rawValue) AND status = 'open'")
            guard open.isEmpty else { return false }
            guard let requester = (model.users + model.agents).first(where: { $0.id == current.requester }),
                (try? await f.openTicket(for: current, by: requester)) != nil
            else { return false }
            tally.ticketsOpened += 1
            return true
        }

        private mutating func cancel(actorIndex: Int, requestIndex: Int, ask: Bool) async -> StepResult {
            guard !model.requests.isEmpty else {
                tally.skipped += 1
                return StepResult(resolved: "no request to cancel", swift: nil, database: nil)
            }
            let everyone = model.users + model.agents
            let actor = everyone[actorIndex % everyone.count]
            let index = requestIndex % model.requests.count
            let id = model.requests[index].request.id
            let resolved = "\(model.label(actor)) cancels \(model.label(request: index))"
            let dry = databaseOnly
            let real = f.requests
            let database = ask ? await Verdict.run { try await dry.cancel(actor: actor, request: id) }.0 : nil
            let (swift, cancelled) = await Verdict.run { try await real.cancel(actor: actor, request: id) }
            if let cancelled { model.requests[index].status = cancelled.status }
            return StepResult(resolved: resolved, swift: swift, database: database)
        }

        private mutating func revoke(
            actor: TestAccount, candidates: [Int], position: Int, channel: RevocationChannel, ask: Bool
        ) async -> StepResult {
            guard !candidates.isEmpty else {
                tally.skipped += 1
                return StepResult(
                    resolved: "\(model.label(actor)) has no assignment to \(channel == .own ? "drop" : "revoke")",
                    swift: nil, database: nil)
            }
            let index = candidates[position % candidates.count]
            let id = model.assignments[index].assignment.id
            let verb = channel == .own ? "drops" : "revokes"
            let resolved = "\(model.label(actor)) \(verb) \(model.label(assignment: index)) via \(channel)"
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
            if let revoked { model.assignments[index].revoked = revoked.revokedAt != nil }
            return StepResult(resolved: resolved, swift: swift, database: database)
        }

        /// Moves the jobs' clock on; with `runJobs`, the grants and reviews jobs run, and the model learns what they did.
        private mutating func advanceClock(days: Int, runJobs: Bool) async throws -> StepResult {
            model.clockOffsetDays += days
            _ = try await f.ownerQuery("UPDATE settings SET job_clock_offset = \("\(model.clockOffsetDays) days")::interval RETURNING 'ok'")
            let now = model.clock
            for i in model.assignments.indices where !model.assignments[i].revoked {
                if let end = model.assignments[i].assignment.endsAt, end <= now { model.assignments[i].revoked = true }
            }
            var note = ""
            if runJobs {
                let grants = try await f.expiry.runGrantJobs()
                let reviews = try await AccessReviewStore(database: f.worker).runReviewJobs()
                note = ": \(grants.ended) grant(s) ended, \(reviews.opened) review(s) opened, \(reviews.closed) closed"
                tally.grantsEnded += grants.ended
                tally.reviewsOpened += reviews.opened
                tally.reviewsClosed += reviews.closed
                // Reviews closed with items undecided revoked those (R22); the model learns it from the database.
                let revokedByReviews = Set(
                    try await f.ownerQuery("SELECT id::text FROM role_assignments WHERE revoked_by_review IS NOT NULL").compactMap { Int64($0) })
                for i in model.assignments.indices where revokedByReviews.contains(model.assignments[i].assignment.id) {
                    model.assignments[i].revoked = true
                }
                let known = Set(model.reviewItems.map(\.id))
                for row in try await f.ownerQuery(
                    """
                    SELECT i.id || ' ' || i.review_id || ' ' || i.account_id || ' ' || i.assignment_id || ' ' || i.organisation_id
                    FROM access_review_items i ORDER BY i.id
                    """)
                {
                    let parts = row.split(separator: " ").map(String.init)
                    guard parts.count == 5, let id = Int64(parts[0]), !known.contains(id), let review = Int64(parts[1]),
                        let holder = UUID(uuidString: parts[2]), let assignment = Int64(parts[3]), let org = OrganisationID(parts[4])
                    else { continue }
                    model.reviewItems.append(
                        TrackedReviewItem(
                            id: id, review: review, holder: AccountID(holder), assignment: assignment, organisation: org, decided: false))
                }
                let closed = Set(
                    try await f.ownerQuery("SELECT i.id::text FROM access_review_items i WHERE i.outcome IS NOT NULL").compactMap { Int64($0) })
                for i in model.reviewItems.indices where closed.contains(model.reviewItems[i].id) { model.reviewItems[i].decided = true }
            }
            return StepResult(
                resolved: "the jobs' clock moves \(days) day(s) on, to +\(model.clockOffsetDays)\(note)", swift: nil, database: nil, changed: true)
        }

        private mutating func decideReview(
            actorIndex: Int, itemIndex: Int, channel: DecisionChannel, decision: ReviewDecision, ask: Bool
        ) async -> StepResult {
            guard !model.reviewItems.isEmpty else {
                tally.skipped += 1
                return StepResult(resolved: "no review item to decide", swift: nil, database: nil)
            }
            let actor = channel == .serviceDesk ? model.agents[actorIndex % model.agents.count] : model.users[actorIndex % model.users.count]
            let index = itemIndex % model.reviewItems.count
            let item = model.reviewItems[index]
            let resolved =
                "\(model.label(actor)) decides \(decision.rawValue) on review item \(item.id) (\(model.label(item.holder))'s role @\(model.label(item.organisation)))"
            let dry = reviewsDatabaseOnly
            let real = AccessReviewStore(database: f.database)
            let decisions = [AccessReviewStore.Decision(item: item.id, decision: decision)]
            let database = ask ? await Verdict.run { try await dry.decide(actor: actor, review: item.review, decisions) }.0 : nil
            let (swift, decided) = await Verdict.run { try await real.decide(actor: actor, review: item.review, decisions) }
            if decided != nil {
                model.reviewItems[index].decided = true
                if decision == .revoked, let i = model.assignments.firstIndex(where: { $0.assignment.id == item.assignment }) {
                    model.assignments[i].revoked = true
                }
            }
            return StepResult(resolved: resolved, swift: swift, database: database)
        }

        // MARK: Invariants

        /// The invariants of the issue, each a query (as the owner) for the rows that break it.
        static let invariants: [(name: String, query: PostgresQuery)] = [
            (
                "R19: no open service desk ticket for a request decided by the organisation's super users",
                """
                SELECT t.id::text FROM service_desk_tickets t JOIN access_requests r ON r.id = t.access_request_id
                WHERE t.status = 'open' AND r.approver_kind = 'organisation-super-users'
                """
            ),
            (
                "R20: no super-user request waits for the super users of an organisation that has none (it went back to the desk)",
                """
                SELECT r.id::text FROM access_requests r
                WHERE r.status = 'pending' AND r.role = 'spor-industry-super-user' AND r.approver_kind = 'organisation-super-users'
                  AND spor_active_super_user_count(r.organisation_id) = 0
                """
            ),
            (
                "R19: no request waits for the service desk in an organisation that has a super user (it was re-routed)",
                """
                SELECT r.id::text FROM access_requests r
                WHERE r.status = 'pending' AND r.approver_kind = 'ema-service-desk' AND EXISTS (
                    SELECT 1 FROM role_assignments a WHERE a.organisation_id = r.organisation_id
                    AND a.role = 'spor-industry-super-user' AND a.revoked_at IS NULL
                    AND (a.ends_at IS NULL OR a.ends_at > spor_job_now()))
                """
            ),
            (
                "no organisation has two active first super users",
                """
                SELECT organisation_id FROM role_assignments WHERE first_super_user AND revoked_at IS NULL
                  AND (ends_at IS NULL OR ends_at > spor_job_now())
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
                "one audit event per role assignment change (granted once; revoked, dropped or ended once if no longer held)",
                """
                SELECT g.id::text || ': granted ' || granted || ', revoked ' || revoked
                FROM (SELECT g.id, g.revoked_at,
                             (SELECT count(*) FROM audit_events e WHERE e.subject_type = 'role_assignment'
                                AND e.subject_id = g.id::text AND e.action = 'role-assignment.granted') AS granted,
                             (SELECT count(*) FROM audit_events e WHERE e.subject_type = 'role_assignment'
                                AND e.subject_id = g.id::text
                                AND e.action IN ('role-assignment.revoked', 'role-assignment.dropped', 'role-assignment.ended')) AS revoked
                      FROM role_assignments g) g
                WHERE granted <> 1 OR revoked <> CASE WHEN g.revoked_at IS NULL THEN 0 ELSE 1 END
                """
            ),
            (
                "no account holds a role twice in one organisation",
                """
                SELECT account_id::text || ' ' || role || ' ' || coalesce(organisation_id, '-') FROM role_assignments
                WHERE revoked_at IS NULL AND (ends_at IS NULL OR ends_at > spor_job_now())
                GROUP BY account_id, role, organisation_id HAVING count(*) > 1
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
            (
                "R21: no grant ends later than its request asked",
                """
                SELECT g.id::text FROM role_assignments g JOIN access_requests r ON r.id = g.access_request_id
                WHERE r.access_until IS NOT NULL AND (g.ends_at IS NULL OR g.ends_at > r.access_until)
                """
            ),
            (
                "R21: an assignment ended by the clock ended at its end, audited",
                """
                SELECT g.id::text FROM role_assignments g
                WHERE g.lapsed AND (g.revoked_at <> g.ends_at OR NOT EXISTS (
                    SELECT 1 FROM audit_events e WHERE e.subject_type = 'role_assignment' AND e.subject_id = g.id::text
                    AND e.action = 'role-assignment.ended'))
                """
            ),
            (
                "R21: after the grants job, no assignment is unrevoked past its end",
                """
                SELECT g.id::text FROM role_assignments g WHERE g.revoked_at IS NULL AND g.ends_at <= spor_job_now()
                """
            ),
            (
                "R22: nobody decided their own review item, and a revoked item's role is revoked",
                """
                SELECT i.id::text FROM access_review_items i JOIN role_assignments g ON g.id = i.assignment_id
                WHERE i.decided_by = i.account_id OR (i.decision = 'revoked' AND g.revoked_at IS NULL)
                """
            ),
            (
                "R22: a closed review has no item without a decision or an outcome",
                """
                SELECT i.id::text FROM access_review_items i JOIN access_reviews r ON r.id = i.review_id
                WHERE r.closed_at IS NOT NULL AND i.decision IS NULL AND i.outcome IS NULL
                """
            ),
        ]

        /// Broken invariants: name → offending rows.
        func brokenInvariants() async throws -> [(name: String, rows: [String])] {
            // The grants job runs every minute in service: settle what the clock has ended before checking.
            _ = try await f.expiry.runGrantJobs()
            var broken: [(name: String, rows: [String])] = []
            for invariant in Self.invariants {
                let rows = try await f.ownerQuery(invariant.query)
                if !rows.isEmpty { broken.append((invariant.name, rows)) }
            }
            // R15, R16, R4 read back (0053: the commands' own writes are no longer checked at commit).
            broken += try await f.bookkeepingFailures()
            return broken
        }

        /// Cross-check of the test's own model against the database (a wrong model would make the test meaningless).
        func modelMismatches() async throws -> [String] {
            var mismatches: [String] = []
            let active = try await f.ownerQuery(
                "SELECT id::text FROM role_assignments WHERE revoked_at IS NULL AND (ends_at IS NULL OR ends_at > spor_job_now()) ORDER BY id")
            let modelled = model.assignments.filter { !$0.revoked }.map { String($0.assignment.id) }
            if Set(active) != Set(modelled) { mismatches.append("active assignments: database \(active), model \(modelled)") }
            let statuses = try await f.ownerQuery("SELECT id::text || ':' || status FROM access_requests ORDER BY id")
            let modelStatuses = model.requests.map { "\($0.request.id.rawValue):\($0.status.rawValue)" }
            if Set(statuses) != Set(modelStatuses) {
                mismatches.append("request statuses: database \(statuses), model \(modelStatuses)")
            }
            return mismatches
        }
    }
}
