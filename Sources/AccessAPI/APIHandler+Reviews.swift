import AccessDomain
import AccessOpenAPI
import AccessStore
import Foundation

// R22: access reviews over HTTP — an organisation's reviews and their items, for its super users and staff; decisions
// one at a time or many at once (all or none).
extension APIHandler {
    func listAccessReviews(_ input: Operations.ListAccessReviews.Input) async throws -> Operations.ListAccessReviews.Output {
        let actor = try RequestActor.required()
        let found = try await reviews.reviews(actor: actor, organisation: input.path.orgId)
        return .ok(.init(body: .json(.init(items: found.map(Self.review)))))
    }

    func listAccessReviewItems(_ input: Operations.ListAccessReviewItems.Input) async throws -> Operations.ListAccessReviewItems.Output {
        let actor = try RequestActor.required()
        let limit = try Paging.limit(input.query.limit)
        let after = try Paging.after(input.query.cursor)
        let found = try await reviews.items(actor: actor, review: input.path.reviewId, after: after, limit: limit + 1)
        // R13: the review belongs to the organisation of the address used. Each row names it; an empty page asks once.
        if found.contains(where: { $0.organisation != input.path.orgId }) {
            throw Refusal(.notFound, .r13, "Access review \(input.path.reviewId) not found.")
        }
        if found.isEmpty { try await requireReview(input.path.reviewId, of: input.path.orgId, actor: actor) }
        let page = Array(found.prefix(limit)).map(\.item)
        return .ok(
            .init(
                body: .json(
                    .init(
                        items: page.map(Self.item),
                        nextCursor: found.count > limit ? page.last.map { Paging.cursor(after: $0.id) } : nil))))
    }

    func decideAccessReviewItem(_ input: Operations.DecideAccessReviewItem.Input) async throws -> Operations.DecideAccessReviewItem.Output {
        let actor = try RequestActor.required()
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        let decided = try await reviews.decide(
            actor: actor, review: input.path.reviewId,
            [.init(item: input.path.itemId, decision: body.decision, comment: try Self.comment(body.comment, field: "comment"))],
            expectedOrganisation: input.path.orgId)
        guard let item = decided.first else { throw Refusal(.notFound, .r13, "Review item \(input.path.itemId) not found.") }
        return .ok(.init(body: .json(Self.item(item))))
    }

    func decideAccessReviewItems(_ input: Operations.DecideAccessReviewItems.Input) async throws -> Operations.DecideAccessReviewItems.Output {
        let actor = try RequestActor.required()
        guard case .json(let body) = input.body else { throw Problem.unsupportedMediaType }
        // The store refuses an empty, oversized or repeating batch (422, field `decisions`).
        var decisions: [AccessReviewStore.Decision] = []
        for (index, d) in body.decisions.enumerated() {
            decisions.append(
                .init(
                    item: d.value2.itemId, decision: d.value1.decision,
                    comment: try Self.comment(d.value1.comment, field: "decisions[\(index)].comment")))
        }
        let decided = try await reviews.decide(
            actor: actor, review: input.path.reviewId, decisions, expectedOrganisation: input.path.orgId)
        return .ok(.init(body: .json(.init(items: decided.map(Self.item)))))
    }

    /// R13: the review belongs to the organisation of the address used (otherwise it is not found).
    private func requireReview(_ id: Int64, of organisation: OrganisationID, actor: BearerToken) async throws {
        guard try await reviews.reviews(actor: actor, organisation: organisation).contains(where: { $0.id == id }) else {
            throw Refusal(.notFound, .r13, "Access review \(id) not found.")
        }
    }

    private static func comment(_ value: String?, field: String) throws -> String? {
        guard let value else { return nil }
        guard value.count <= 2000 else { throw Problem.validation("\(field) has at most 2000 characters.", field: field) }
        return value
    }

    static func review(_ r: AccessReview) -> Components.Schemas.AccessReview {
        .init(
            id: r.id, organisationId: r.organisation, openedAt: r.openedAt, dueAt: r.dueAt, closedAt: r.closedAt,
            status: r.closedAt == nil ? .open : .closed, items: r.items, certified: r.certified, revoked: r.revoked,
            undecided: r.undecided)
    }

    static func item(_ i: AccessReviewItem) -> Components.Schemas.AccessReviewItem {
        .init(
            id: i.id, assignmentId: i.assignment, accountId: i.account, email: i.email, role: i.role, decision: i.decision,
            decidedBy: i.decidedBy, decidedAt: i.decidedAt, comment: i.comment,
            outcome: i.outcome.flatMap { .init(rawValue: $0.rawValue) })
    }
}
