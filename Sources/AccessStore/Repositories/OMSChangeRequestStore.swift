import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// A request to add an organisation to the OMS dictionary (R17).
public struct OMSChangeRequest: Sendable, Equatable {
    public let id: Int64
    public let requester: AccountID
    public let name: String
    public let country: String
    public let city: String
    public let status: ChangeRequestStatus
    public let organisation: OrganisationID?
    public let decisionReason: String?
}

/// OMS change requests: filed by holders of an effective SPOR role, decided by a data steward (R17).
public struct OMSChangeRequestStore: Sendable {
    public let database: Database
    public let policy: PolicyMode

    public init(database: Database, policy: PolicyMode = .enforced) {
        self.database = database
        self.policy = policy
    }

    /// Files a request to add an organisation (R17), field by field.
    public func file(
        actor caller: any Caller, name: String, country: String, city: String, address: String?, justification: String?, documents: [Upload]
    ) async throws -> OMSChangeRequest {
        try await file(
            actor: caller,
            OMSChangeRequestDraft(name: name, country: country, city: city, address: address, justification: justification, documents: documents))
    }

    /// Files a request to add an organisation (R17). Its fields are the caller's to check (`ApprovalPolicy.validate`,
    /// as the API does); the database requires only what its constraints say. One read of the facts (an effective
    /// SPOR role), then one call (`spor_file_oms_change_request`) that stores the request and its documents and audits.
    public func file(actor caller: any Caller, _ draft: OMSChangeRequestDraft) async throws -> OMSChangeRequest {
        if policy == .enforced {
            let facts = try await self.facts(caller, nil)
            try ApprovalPolicy.canFileOMSChangeRequest(hasEffectiveSPORRole: facts.hasEffectiveRole).get()
        }
        let documents = draft.documents
        guard
            let row = try await database.command(
                """
                SELECT * FROM spor_file_oms_change_request(\(caller.bearerToken), \(draft.name), \(draft.country), \(draft.city),
                    \(draft.address), \(draft.justification), \(documents.map(\.fileName)), \(documents.map(\.contentType.rawValue)),
                    \(documents.map { ByteBuffer(bytes: $0.bytes) }))
                """)
        else { throw StoreError.ruleViolation(code: "insert-failed", rule: "R17", message: "the change request was not stored") }
        return try Self.changeRequest(row)
    }

    /// Approves (creating the organisation with the next ORG id) or rejects with a reason; the requester is notified.
    /// One read of the facts, then one call (`spor_decide_oms_change_request`).
    public func decide(actor caller: any Caller, request id: Int64, approve: Bool, reason: String?) async throws -> OMSChangeRequest {
        if policy == .enforced {
            let facts = try await self.facts(caller, id)
            guard let status = facts.status else { throw Refusal(.notFound, .r13, "OMS change request \(id) not found.") }
            try ApprovalPolicy.canDecideOMSChangeRequest(actor: Actor(id: facts.actor, staffRoles: facts.staffRoles)).get()
            try ApprovalPolicy.decideOMSChangeRequest(
                id: id, status: status, approve: approve, reason: reason, requester: facts.requester, decider: facts.actor
            ).get()
        }
        guard
            let row = try await database.command(
                "SELECT * FROM spor_decide_oms_change_request(\(caller.bearerToken), \(id), \(approve), \(reason))")
        else { throw Refusal(.notFound, .r13, "OMS change request \(id) not found.") }
        return try Self.changeRequest(row)
    }

    /// What `spor_oms_facts` answers.
    private struct Facts {
        let actor: AccountID
        let hasEffectiveRole: Bool
        let staffRoles: Set<StaffRole>
        let status: ChangeRequestStatus?
        let requester: AccountID?
    }

    private func facts(_ caller: any Caller, _ id: Int64?) async throws -> Facts {
        guard
            let row = try await database.call(
                "SELECT actor, has_effective_role, staff_roles, status, requester_id FROM spor_oms_facts(\(caller.bearerToken), \(id))")
        else { throw Refusal(.notAuthenticated, .r13, "Sign in first.") }
        let (actor, effective, staff, status, requester) = try row.decode((UUID, Bool, [String], String?, UUID?).self)
        return Facts(
            actor: AccountID(actor), hasEffectiveRole: effective, staffRoles: Set(staff.compactMap(StaffRole.init(rawValue:))),
            status: try status.map { try stored($0, in: "oms_change_requests") }, requester: requester.map(AccountID.init))
    }

    /// A row of `spor_oms_change_request`.
    private static func changeRequest(_ row: PostgresRow) throws -> OMSChangeRequest {
        let (id, requester, name, country, city, status, organisation, reason) = try row.decode(
            (Int64, UUID, String, String, String, String, String?, String?).self)
        return OMSChangeRequest(
            id: id, requester: AccountID(requester), name: name, country: country, city: city,
            status: try stored(status, in: "oms_change_requests"), organisation: organisation.flatMap(OrganisationID.init),
            decisionReason: reason)
    }
}
