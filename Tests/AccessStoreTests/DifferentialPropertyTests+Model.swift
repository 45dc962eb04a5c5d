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

    // MARK: - The model

    struct TrackedRequest: Sendable {
        let request: AccessRequest
        var status: RequestStatus
    }

    struct TrackedAssignment: Sendable {
        let assignment: RoleAssignment
        var revoked: Bool
        var holder: AccountID { assignment.account }
    }

    /// The test's model of one database: its actors, organisations, the requests filed and the roles granted, as the
    /// runner saw them succeed. Steps refer to its lists by index; the step generator reads it to pick likely steps.
    struct Model: Sendable {
        var users: [TestAccount] = []
        var agents: [TestAccount] = []
        var orgs: [OrganisationID] = []
        var requests: [TrackedRequest] = []
        var assignments: [TrackedAssignment] = []
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
    }
}
