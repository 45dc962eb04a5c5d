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

    /// OMS search (R1): trigram similarity on the case- and accent-folded name; best match first. One statement.
    public func searchOrganisations(query: String?, country: String?, limit: Int, offset: Int) async throws -> [Organisation] {
        let search = query?.trimmingCharacters(in: .whitespacesAndNewlines)
        let rows = try await database.rows(
            """
            SELECT * FROM spor_search_organisations(\(search), \(country), \(Int32(clamping: limit)), \(Int32(clamping: offset)))
            """)
        return try rows.compactMap { row in
            let (id, name, country, city, status) = try row.decode((String, String, String, String, String).self)
            guard let id = OrganisationID(id) else { return nil }
            return Organisation(id: id, name: name, country: country, city: city, status: try stored(status, in: "organisations"))
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

    /// The actor's own requests, newest first, before `before` (keyset paging by id). One statement.
    public func myRequests(actor caller: any Caller, before: Int64?, limit: Int) async throws -> [AccessRequest] {
        try await database.rows(
            "SELECT \(unescaped: AccessRequest.columns) FROM spor_my_requests(\(caller.bearerToken), \(before), \(Int32(clamping: limit)))"
        ).map { try AccessRequest(row: $0.decode(AccessRequest.Row.self)) }
    }

    /// An organisation's requests for its super users and staff (R13: anyone else gets not-found). One statement.
    public func organisationRequests(
        actor caller: any Caller, organisation: OrganisationID, status: RequestStatus?, before: Int64?, limit: Int
    ) async throws -> [AccessRequest] {
        try await database.rows(
            """
            SELECT \(unescaped: AccessRequest.columns)
            FROM spor_organisation_requests(\(caller.bearerToken), \(organisation.rawValue), \(status?.rawValue), \(before),
                                            \(Int32(clamping: limit)))
            """
        ).map { try AccessRequest(row: $0.decode(AccessRequest.Row.self)) }
    }
}
