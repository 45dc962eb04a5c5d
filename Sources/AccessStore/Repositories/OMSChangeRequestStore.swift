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

    var logger: Logger { database.logger }

    /// Files a request to add an organisation (R17), field by field.
    public func file(
        actor caller: any Caller, name: String, country: String, city: String, address: String?, justification: String?, documents: [Upload]
    ) async throws -> OMSChangeRequest {
        try await file(
            actor: caller,
            OMSChangeRequestDraft(name: name, country: country, city: city, address: address, justification: justification, documents: documents))
    }

    /// Files a request to add an organisation (R17). Its fields are the caller's to check (`ApprovalPolicy.validate`,
    /// as the API does); the database requires only what its constraints say.
    public func file(actor caller: any Caller, _ draft: OMSChangeRequestDraft) async throws -> OMSChangeRequest {
        let (name, country, city, address, justification) = (draft.name, draft.country, draft.city, draft.address, draft.justification)
        return try await database.transaction(as: caller) { connection, actor in
            if policy == .enforced {
                let effective =
                    try await connection.first(
                        """
                        SELECT EXISTS (SELECT 1 FROM role_assignments WHERE account_id = \(actor.rawValue) AND revoked_at IS NULL
                                       AND effective_from <= now())
                        """, as: Bool.self, logger: logger) ?? false
                try ApprovalPolicy.canFileOMSChangeRequest(hasEffectiveSPORRole: effective).get()
            }
            guard
                let id = try await connection.first(
                    """
                    INSERT INTO oms_change_requests (requester_id, name, country, city, address, justification)
                    VALUES (\(actor.rawValue), \(name), \(country), \(city), \(address), \(justification)) RETURNING id
                    """, as: Int64.self, logger: logger)
            else { throw StoreError.ruleViolation(code: "insert-failed", rule: "R17", message: "the change request was not stored") }
            for upload in draft.documents {
                let document = try await Documents.insert(upload, owner: actor, organisation: nil, connection, logger)
                try await connection.query(
                    "INSERT INTO oms_change_request_documents (change_request_id, document_id) VALUES (\(id), \(document))",
                    logger: logger)
            }
            try await Journal.audit(
                connection,
                actor: actor,
                organisation: nil,
                action: .changeRequestFiled,
                subject: .init(type: .omsChangeRequest, id: String(id)),
                after: ["name": name, "country": country, "city": city],
                logger: logger)
            return try await Self.load(id, connection, logger)
        }
    }

    /// Approves (creating the organisation with the next ORG id) or rejects with a reason; the requester is notified.
    public func decide(actor caller: any Caller, request id: Int64, approve: Bool, reason: String?) async throws -> OMSChangeRequest {
        try await database.transaction(as: caller) { connection, actor in
            let request = try await Self.load(id, connection, logger)
            if policy == .enforced {
                let staff = try await AccessRequestStore.staffRoles(of: actor, connection, logger)
                try ApprovalPolicy.canDecideOMSChangeRequest(actor: Actor(id: actor, staffRoles: staff)).get()
                try ApprovalPolicy.decideOMSChangeRequest(id: id, status: request.status, approve: approve, reason: reason).get()
            }
            var organisation: OrganisationID?
            if approve {
                guard
                    let created = try await connection.first(
                        "INSERT INTO organisations (name, country, city) VALUES (\(request.name), \(request.country), \(request.city)) RETURNING id",
                        as: String.self, logger: logger
                    ).flatMap(OrganisationID.init)
                else { throw StoreError.ruleViolation(code: "insert-failed", rule: "R17", message: "the organisation was not created") }
                organisation = created
                try await Journal.audit(
                    connection,
                    actor: actor,
                    organisation: created,
                    action: .organisationCreated,
                    subject: .init(type: .organisation, id: created.rawValue),
                    after: ["name": request.name, "changeRequest": String(id)],
                    logger: logger)
            }
            let status: ChangeRequestStatus = approve ? .approved : .rejected
            try await connection.query(
                """
                UPDATE oms_change_requests SET status = \(status.rawValue), decided_by = \(actor.rawValue), decided_at = now(),
                       decision_reason = \(reason), organisation_id = \(organisation?.rawValue)
                WHERE id = \(id)
                """, logger: logger)
            try await Journal.audit(
                connection,
                actor: actor,
                organisation: organisation,
                action: approve ? .changeRequestApproved : .changeRequestRejected,
                subject: .init(type: .omsChangeRequest, id: String(id)),
                before: ["status": "pending"],
                after: ["status": status.rawValue, "organisation": organisation?.rawValue ?? ""],
                logger: logger)
            let email = try await AccessRequestStore.email(of: request.requester, connection, logger)
            try await Journal.notify(
                connection,
                organisation: organisation,
                recipient: request.requester,
                email: email,
                Journal.Message(
                    template: .changeRequestDecided,
                    subject: approve
                        ? "\(request.name) was added to OMS as \(organisation?.rawValue ?? "")"
                        : "Your OMS change request \(id) was rejected",
                    body: approve
                        ? "Your organisation is now in the OMS dictionary with id \(organisation?.rawValue ?? ""). You can request the SPOR Industry Super User role for it."
                        : "Your request to add \(request.name) to OMS was rejected: \(reason ?? "")"),
                about: .init(type: .omsChangeRequest, id: String(id)),
                logger: logger)
            return try await Self.load(id, connection, logger)
        }
    }

    static func load(_ id: Int64, _ connection: PostgresConnection, _ logger: Logger) async throws -> OMSChangeRequest {
        guard
            let row = try await connection.first(
                """
                SELECT requester_id, name, country, city, status, organisation_id, decision_reason
                FROM oms_change_requests WHERE id = \(id)
                """, as: (UUID, String, String, String, String, String?, String?).self, logger: logger)
        else { throw Refusal(.notFound, .r13, "OMS change request \(id) not found.") }
        guard let status = ChangeRequestStatus(rawValue: row.4) else {
            throw StoreError.constraintViolation(constraint: "oms_change_requests", message: "unknown status \(row.4)")
        }
        return OMSChangeRequest(
            id: id, requester: AccountID(row.0), name: row.1, country: row.2, city: row.3, status: status,
            organisation: row.5.flatMap(OrganisationID.init), decisionReason: row.6)
    }
}
