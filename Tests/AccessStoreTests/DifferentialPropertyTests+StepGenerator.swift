import AccessDomain
import AccessStore
import AccessTestSupport

extension DifferentialPropertyTests {
    /// Draws the steps of a run. PropertyBased's seeded generator (through `SeededRandom`) makes every choice, so a
    /// seed always means the same sequence; each step is biased by the model (pending requests, active super users,
    /// who holds what), so the mix of outcomes is healthy.
    struct StepGenerator {
        var rng: SeededRandom

        /// The next step, for the model as it is now.
        mutating func next(for model: Model) -> Step {
            // Time passes now and then (R21, R22), and open review items get decided.
            if rng.chance(5) { return .advanceClock(days: 1 + rng.int(12), runJobs: rng.chance(75)) }
            if model.reviewItems.contains(where: { !$0.decided }), rng.chance(25) { return reviewStep(model) }
            let roll = rng.int(100)
            switch roll {
            case 0..<4 where model.users.count < 16: return .register
            case 0..<34: return requestStep(model)
            case 34..<58: return decisionStep(model, approve: true)
            case 58..<68: return decisionStep(model, approve: false)
            case 68..<76: return cancelStep(model)
            case 76..<88: return revokeStep(model)
            default: return dropStep(model)
            }
        }

        private mutating func requestStep(_ model: Model) -> Step {
            let actor = rng.int(model.users.count)
            let roll = rng.int(100)
            let role: Role = roll < 42 ? .superUser : roll < 84 ? .industryUser : .unaffiliatedUser
            let org: Int?
            if role == .unaffiliatedUser {
                org = rng.chance(15) ? rng.int(model.orgs.count) : nil
            } else {
                org = rng.chance(6) ? nil : rng.int(model.orgs.count)
            }
            let days: Int? = role != .unaffiliatedUser && rng.chance(25) ? 3 + rng.int(40) : nil
            return .request(actor: actor, role: role, org: org, days: days)
        }

        private mutating func reviewStep(_ model: Model) -> Step {
            let open = model.reviewItems.indices.filter { !model.reviewItems[$0].decided }
            let index = !open.isEmpty && rng.chance(85) ? rng.pick(open) : rng.int(model.reviewItems.count)
            let decision: ReviewDecision = rng.chance(60) ? .certified : .revoked
            if rng.chance(25) { return .decideReview(actor: rng.int(model.agents.count), item: index, channel: .serviceDesk, decision: decision) }
            let item = model.reviewItems[index]
            let others = model.activeSuperUsers(of: item.organisation).filter { model.users[$0] != item.holder }
            let actor = !others.isEmpty && rng.chance(80) ? rng.pick(others) : rng.int(model.users.count)
            return .decideReview(actor: actor, item: index, channel: .organisation, decision: decision)
        }

        private mutating func decisionStep(_ model: Model, approve: Bool) -> Step {
            guard !model.requests.isEmpty else { return requestStep(model) }
            let desk = rng.chance(approve ? 45 : 35)
            let pending = model.requests.indices.filter {
                model.requests[$0].status == .pending && (!desk || model.requests[$0].request.role == .superUser)
            }
            let index = !pending.isEmpty && rng.chance(80) ? rng.pick(pending) : rng.int(model.requests.count)
            let actor: Int
            if desk {
                actor = rng.int(model.agents.count)
            } else {
                let superUsers = model.activeSuperUsers(of: model.requests[index].request.organisation)
                actor = !superUsers.isEmpty && rng.chance(85) ? rng.pick(superUsers) : rng.int(model.users.count)
            }
            let channel: DecisionChannel = desk ? .serviceDesk : .organisation
            if approve {
                let days: Int? = rng.chance(25) ? 1 + rng.int(45) : nil
                return .approve(actor: actor, request: index, channel: channel, ticket: rng.chance(80), days: days)
            }
            let reason =
                rng.chance(85)
                ? rng.pick(["Not employed by this organisation", "Please ask for the industry user role instead"])
                : rng.pick(["", "   "])
            return .reject(actor: actor, request: index, channel: channel, reason: reason)
        }

        private mutating func cancelStep(_ model: Model) -> Step {
            guard !model.requests.isEmpty else { return requestStep(model) }
            let everyone = model.users + model.agents
            let pending = model.requests.indices.filter { model.requests[$0].status == .pending }
            if !pending.isEmpty && rng.chance(75) {
                let index = rng.pick(pending)
                let actor = everyone.firstIndex { $0.id == model.requests[index].request.requester } ?? rng.int(everyone.count)
                return .cancel(actor: actor, request: index)
            }
            return .cancel(actor: rng.int(everyone.count), request: rng.int(model.requests.count))
        }

        private mutating func revokeStep(_ model: Model) -> Step {
            guard !model.assignments.isEmpty else { return requestStep(model) }
            let active = model.assignments.indices.filter { !model.assignments[$0].revoked }
            if rng.chance(25) {
                let target = !active.isEmpty && rng.chance(75) ? rng.pick(active) : rng.int(model.assignments.count)
                return .revoke(actor: rng.int(model.agents.count), assignment: target, channel: .serviceDesk)
            }
            let target = !active.isEmpty && rng.chance(80) ? rng.pick(active) : rng.int(model.assignments.count)
            let holder = model.assignments[target].holder
            let superUsers = model.activeSuperUsers(of: model.assignments[target].assignment.organisation).filter { model.users[$0] != holder }
            var actor = !superUsers.isEmpty && rng.chance(80) ? rng.pick(superUsers) : rng.int(model.users.count)
            if model.users[actor] == holder { actor = (actor + 1) % model.users.count }
            let candidates = model.assignments.indices.filter { model.assignments[$0].holder != model.users[actor] }
            guard let position = candidates.firstIndex(of: target) else { return requestStep(model) }
            return .revoke(actor: actor, assignment: position, channel: .organisation)
        }

        private mutating func dropStep(_ model: Model) -> Step {
            guard !model.assignments.isEmpty else { return requestStep(model) }
            let active = model.assignments.indices.filter { !model.assignments[$0].revoked }
            let target = !active.isEmpty && rng.chance(85) ? rng.pick(active) : rng.int(model.assignments.count)
            let holder = model.assignments[target].holder
            guard let actor = model.users.firstIndex(where: { $0.id == holder }) else { return requestStep(model) }
            let own = model.assignments.indices.filter { model.assignments[$0].holder == holder }
            guard let position = own.firstIndex(of: target) else { return requestStep(model) }
            return .dropOwn(actor: actor, assignment: position)
        }
    }
}
