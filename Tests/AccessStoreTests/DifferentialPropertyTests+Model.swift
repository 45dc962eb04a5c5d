import AccessDomain
import AccessStore
import AccessTestSupport
import Foundation
import PostgresNIO
import Testing

// The differential property test's model: the steps it runs and what it knows of the database (see
// DifferentialPropertyTests.swift).

extension DifferentialPropertyTests {
    // MARK: - Steps

    /// One command. Actors, requests and assignments are small indices into the run's own lists, taken modulo their
    /// current sizes when the step runs, so every sequence is valid and shrinking may delete any step.
    enum Step: Sendable, Equatable, CustomStringConvertible {
        /// A new verified user (with security answers) joins the user list.
        case register
        /// `users[actor]` files a request for `role` in `orgs[org]` (nil: no organisation), asking for access for `days`
        /// on the jobs' clock (nil: no end; R21).
        case request(actor: Int, role: Role, org: Int?, days: Int?)
        /// `.serviceDesk`: `agents[actor]`; `.organisation`: `users[actor]`. `ticket`: an agent first opens the R10
        /// ticket for a pending first-super-user request (as its requester) when none is open. `days`: the grant ends
        /// that many days after now on the jobs' clock (nil: as the request asked; R21).
        case approve(actor: Int, request: Int, channel: DecisionChannel, ticket: Bool, days: Int?)
        case reject(actor: Int, request: Int, channel: DecisionChannel, reason: String)
        /// `(users + agents)[actor]` cancels `requests[request]`.
        case cancel(actor: Int, request: Int)
        /// `.serviceDesk`: `agents[actor]` revokes `assignments[assignment]`; `.organisation`: `users[actor]` revokes the
        /// `assignment`-th of the assignments held by others.
        case revoke(actor: Int, assignment: Int, channel: RevocationChannel)
        /// `users[actor]` drops the `assignment`-th of their own assignments (channel `.own`).
        case dropOwn(actor: Int, assignment: Int)
        /// The jobs' clock moves `days` ahead (R21: grants past their end are no longer active); with `runJobs`, the
        /// grants job and the reviews job then run (grants end, reviews open and close: R21, R22).
        case advanceClock(days: Int, runJobs: Bool)
        /// `.serviceDesk`: `agents[actor]`; `.organisation`: `users[actor]` decides the `item`-th review item (R22).
        case decideReview(actor: Int, item: Int, channel: DecisionChannel, decision: ReviewDecision)

        var kind: String {
            switch self {
            case .register: "register"
            case .request: "request"
            case .approve: "approve"
            case .reject: "reject"
            case .cancel: "cancel"
            case .revoke: "revoke"
            case .dropOwn: "drop-own"
            case .advanceClock: "advance-clock"
            case .decideReview: "decide-review"
            }
        }

        var description: String {
            switch self {
            case .register: ".register"
            case .request(let actor, let role, let org, let days):
                ".request(actor: \(actor), role: .\(role), org: \(org.map(String.init) ?? "nil"), days: \(days.map(String.init) ?? "nil"))"
            case .approve(let actor, let request, let channel, let ticket, let days):
                ".approve(actor: \(actor), request: \(request), channel: .\(channel), ticket: \(ticket), days: \(days.map(String.init) ?? "nil"))"
            case .reject(let actor, let request, let channel, let reason):
                ".reject(actor: \(actor), request: \(request), channel: .\(channel), reason: \"\(reason)\")"
            case .cancel(let actor, let request): ".cancel(actor: \(actor), request: \(request))"
            case .revoke(let actor, let assignment, let channel):
                ".revoke(actor: \(actor), assignment: \(assignment), channel: .\(channel))"
            case .dropOwn(let actor, let assignment): ".dropOwn(actor: \(actor), assignment: \(assignment))"
            case .advanceClock(let days, let runJobs): ".advanceClock(days: \(days), runJobs: \(runJobs))"
            case .decideReview(let actor, let item, let channel, let decision):
                ".decideReview(actor: \(actor), item: \(item), channel: .\(channel), decision: .\(decision))"
            }
        }
    }

    // MARK: - The model

    struct TrackedRequest: Sendable {
        let request: AccessRequest
        var status: RequestStatus
    }

    struct TrackedAssignment: Sendable {
        let assignment: RoleAssignment
        /// Revoked, or past its end on the jobs' clock (R21): no longer active.
        var revoked: Bool
        var holder: AccountID { assignment.account }
    }

    /// An item of an access review as the reviews job opened it (R22).
    struct TrackedReviewItem: Sendable {
        let id: Int64
        let review: Int64
        let holder: AccountID
        let assignment: Int64
        let organisation: OrganisationID
        var decided: Bool
    }

    /// The test's model of one database: its actors, organisations, the requests filed and the roles granted, as the
    /// runner saw them succeed. Steps refer to its lists by index; the step generator reads it to pick likely steps.
    struct Model: Sendable {
        var users: [TestAccount] = []
        var agents: [TestAccount] = []
        var orgs: [OrganisationID] = []
        var requests: [TrackedRequest] = []
        var assignments: [TrackedAssignment] = []
        /// The items of the reviews opened so far (R22), in id order.
        var reviewItems: [TrackedReviewItem] = []
        /// How far the jobs' clock runs ahead of now (settings.job_clock_offset), in days.
        var clockOffsetDays = 0
        var labels: [String: String] = [:]
        /// Stable keys of the users, requests and assignments (parallel to the lists): the position of the step that
        /// created each (initial users: -1, -2, ...). Shrinking uses them to re-point indices after deleting steps.
        var userKeys: [Int] = []
        var requestKeys: [Int] = []
        var assignmentKeys: [Int] = []

        /// Users, service desk agents and organisations every run starts with.
        static let initialUsers = 5
        static let initialAgents = 2
        static let initialOrganisations = 3

        /// The jobs' clock as the database computes it (spor_job_now()).
        var clock: Date { Date().addingTimeInterval(Double(clockOffsetDays) * 86_400) }

        /// `days` after now on the jobs' clock.
        func clock(plus days: Int) -> Date { clock.addingTimeInterval(Double(days) * 86_400) }

        // MARK: Labels for traces

        func label(_ account: AccountID) -> String { labels[account.description] ?? account.description }
        func label(_ account: TestAccount) -> String { label(account.id) }
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

        /// Indices into `users` of the active super users of `org`, as the model knows them.
        func activeSuperUsers(of org: OrganisationID?) -> [Int] {
            guard let org else { return [] }
            let holders = Set(
                assignments.filter {
                    !$0.revoked && $0.assignment.role == .superUser && $0.assignment.organisation == org
                }.map(\.holder.rawValue))
            return users.indices.filter { holders.contains(users[$0].rawValue) }
        }

        /// The keys of the entities `step` refers to, resolved as `execute` resolves its indices.
        func references(of step: Step) -> References {
            var refs = References()
            func user(_ index: Int) -> Int { userKeys[index % users.count] }
            switch step {
            case .register:
                break
            case .request(let actor, _, _, _):
                refs.actorUser = user(actor)
            case .approve(let actor, let request, let channel, _, _), .reject(let actor, let request, let channel, _):
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
            case .advanceClock:
                break
            case .decideReview(let actor, _, let channel, _):
                if channel == .serviceDesk { refs.actorAgent = actor % agents.count } else { refs.actorUser = user(actor) }
            }
            return refs
        }
    }
}
