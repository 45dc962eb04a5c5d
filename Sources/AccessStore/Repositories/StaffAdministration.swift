import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// Administrator commands run with the owner's connection (the command line, not the HTTP API): staff accounts
/// (R4) and the OMS dictionary import (R1). Each writes its audit events (R15).
public struct StaffAdministration: Sendable {
    let database: Database
    var logger: Logger { database.logger }

    /// `ownerClient` connects as the owner role; the commands run as it (no switch to the application role).
    public init(ownerClient: PostgresClient, logger: Logger) {
        self.database = Database(client: ownerClient, logger: logger, role: nil)
    }

    /// Creates an active staff account (e-mail verified, security questions waived) or adds the role to the
    /// existing account of that e-mail. Returns the account.
    @discardableResult
    public func addStaff(email: String, displayName: String, role: StaffRole, password: String?, bcryptCost: UInt8 = 12) async throws -> AccountID {
        let hash = try await password.asyncMap { try await PasswordHashing.hash($0, cost: bcryptCost) }
        return try await database.transaction { connection in
            let existing = try await connection.first(
                "SELECT id FROM accounts WHERE lower(email) = lower(\(email))", as: UUID.self, logger: logger)
            let account = existing.map(AccountID.init) ?? AccountID(UUID())
            if existing == nil {
                guard let hash else {
                    throw Refusal(.validationFailed, .r4, "A new staff account needs a password.", field: "password")
                }
                try await connection.query(
                    """
                    INSERT INTO accounts (id, email, display_name, status, security_questions_waived, verified_at)
                    VALUES (\(account.rawValue), \(email), \(displayName), 'active', true, now())
                    """, logger: logger)
                try await connection.query(
                    "INSERT INTO credentials (account_id, password_hash) VALUES (\(account.rawValue), \(hash))", logger: logger)
                try await Journal.audit(
                    connection,
                    actor: nil,
                    organisation: nil,
                    action: .accountCreatedByAdministrator,
                    subject: .account(account),
                    after: ["email": email, "status": "active"],
                    logger: logger)
            }
            try await connection.query(
                "INSERT INTO staff_roles (account_id, role) VALUES (\(account.rawValue), \(role.rawValue)) ON CONFLICT DO NOTHING",
                logger: logger)
            try await Journal.audit(
                connection,
                actor: nil,
                organisation: nil,
                action: .staffRoleGranted,
                subject: .account(account),
                after: ["role": role.rawValue],
                logger: logger)
            return account
        }
    }

    /// One organisation of an OMS import: `id` is kept when given, else the next ORG id is assigned.
    public struct OrganisationRow: Sendable {
        public var id: OrganisationID?
        public var name: String
        public var country: String
        public var city: String
        public init(id: OrganisationID? = nil, name: String, country: String, city: String) {
            self.id = id
            self.name = name
            self.country = country
            self.city = city
        }
    }

    /// Loads organisations into the OMS dictionary (R1) in one transaction; returns their ids.
    public func importOrganisations(_ rows: [OrganisationRow]) async throws -> [OrganisationID] {
        return try await database.transaction { connection in
            var ids: [OrganisationID] = []
            for row in rows {
                let inserted: String?
                if let id = row.id {
                    inserted = try await connection.first(
                        "INSERT INTO organisations (id, name, country, city) VALUES (\(id.rawValue), \(row.name), \(row.country), \(row.city)) RETURNING id",
                        as: String.self, logger: logger)
                    // Keep the sequence ahead of ids given explicitly, so the next assigned id cannot collide.
                    try await connection.query(
                        """
                        SELECT setval('organisation_number_seq', greatest(substr(\(id.rawValue), 5)::bigint,
                                      (SELECT last_value FROM organisation_number_seq)))
                        """, logger: logger)
                } else {
                    inserted = try await connection.first(
                        "INSERT INTO organisations (name, country, city) VALUES (\(row.name), \(row.country), \(row.city)) RETURNING id",
                        as: String.self, logger: logger)
                }
                guard let inserted, let id = OrganisationID(inserted) else { continue }
                try await Journal.audit(
                    connection,
                    actor: nil,
                    organisation: id,
                    action: .organisationImported,
                    subject: .organisation(id),
                    after: ["name": row.name, "country": row.country, "city": row.city],
                    logger: logger)
                ids.append(id)
            }
            return ids
        }
    }
}
