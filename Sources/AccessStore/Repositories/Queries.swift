import AccessDomain
import Foundation
import Logging
import PostgresNIO

/// Read models for lists: OMS search and pages of access requests.
public struct Queries: Sendable {
    public let database: Database
    public init(database: Database) { self.database = database }
    var logger: Logger { database.logger }

    /// An organisation of the OMS dictionary.
    public struct Organisation: Sendable, Equatable {
        public let id: OrganisationID
        public let name: String
        public let country: String
        public let city: String
        public let status: OrganisationStatus
    }

    /// OMS search (R1): trigram similarity on the case- and accent-folded name; best match first.
    public func searchOrganisations(query: String?, country: String?, limit: Int, offset: Int) async throws -> [Organisation] {
        try await database.transaction { connection in
            let q = query?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
            let rows = try await connection.all(
                """
                SELECT id, name, country, city, status FROM organisations
                WHERE (\(q) = '' OR spor_fold(name) % spor_fold(\(q)) OR spor_fold(name) LIKE '%' || spor_fold(\(q)) || '%')
                  AND (\(country)::text IS NULL OR country = \(country))
                ORDER BY CASE WHEN \(q) = '' THEN 0 ELSE similarity(spor_fold(name), spor_fold(\(q))) END DESC, id
                LIMIT \(limit) OFFSET \(offset)
                """, as: (String, String, String, String, String).self, logger: logger)
            return try rows.compactMap { row in
                guard let id = OrganisationID(row.0) else { return nil }
                return Organisation(id: id, name: row.1, country: row.2, city: row.3, status: try stored(row.4, in: "organisations"))
            }
        }
    }

    public func organisation(_ id: OrganisationID) async throws -> Organisation {
        guard
            let found = try await database.transaction(
                { connection in
                    try await connection.first(
                        "SELECT name, country, city, status FROM organisations WHERE id = \(id.rawValue)",
                        as: (String, String, String, String).self, logger: logger)
                })
        else { throw Refusal(.notFound, .r1, "Organisation \(id) is not in OMS.") }
        return Organisation(id: id, name: found.0, country: found.1, city: found.2, status: try stored(found.3, in: "organisations"))
    }

    /// The actor's own requests, newest first, before `before` (keyset paging by id).
    public func myRequests(actor caller: any Caller, before: Int64?, limit: Int) async throws -> [AccessRequest] {
        try await database.transaction(as: caller) { connection, actor in
            try await connection.all(
                """
                SELECT \(unescaped: AccessRequest.columns) FROM access_requests WHERE requester_id = \(actor.rawValue) AND (\(before)::bigint IS NULL OR id < \(before))
                ORDER BY id DESC LIMIT \(limit)
                """, as: AccessRequest.Row.self, logger: logger
            ).map(AccessRequest.init(row:))
        }
    }

    /// An organisation's requests for its super users and staff (R13: anyone else gets not-found).
    public func organisationRequests(
        actor caller: any Caller, organisation: OrganisationID, status: RequestStatus?, before: Int64?, limit: Int
    ) async throws -> [AccessRequest] {
        try await database.transaction(as: caller) { connection, actor in
            let allowed =
                try await connection.first(
                    "SELECT spor_actor_is_staff() OR spor_is_active_super_user(\(actor.rawValue), \(organisation.rawValue))",
                    as: Bool.self, logger: logger) ?? false
            guard allowed else { throw Refusal(.notFound, .r13, "Organisation \(organisation) has nothing for you here.") }
            return try await connection.all(
                """
                SELECT \(unescaped: AccessRequest.columns) FROM access_requests
                WHERE organisation_id = \(organisation.rawValue) AND (\(status?.rawValue)::text IS NULL OR status = \(status?.rawValue))
                  AND (\(before)::bigint IS NULL OR id < \(before))
                ORDER BY id DESC LIMIT \(limit)
                """, as: AccessRequest.Row.self, logger: logger
            ).map(AccessRequest.init(row:))
        }
    }
}
