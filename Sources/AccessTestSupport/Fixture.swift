import AccessDomain
import AccessStore
import Foundation
import Logging
import PostgresNIO

/// A test's world: its own database, clients for the owner and the application role, the stores, and helpers that
/// build the situations rules talk about (organisations, verified users, staff, super users).
public struct Fixture: Sendable {
    public let db: TestDatabase
    /// Owner connection: set-up only (imports, staff), never to prove a rule.
    public let owner: PostgresClient
    /// Application-role connection: what the service uses; row-level security and triggers apply.
    public let app: PostgresClient
    public let database: Database
    /// Background work's handle: the owner's connection acting as `spor_worker` (outbox delivery, expiry).
    public let worker: Database
    public let requests: AccessRequestStore
    public let accounts: AccountStore
    public let sessions: SessionStore
    public let tickets: TicketStore
    public let oms: OMSChangeRequestStore
    public let administration: StaffAdministration

    /// Runs `body` with a fresh migrated database and running clients.
    public static func with<T: Sendable>(_ body: @Sendable (Fixture) async throws -> T) async throws -> T {
        try await TestDatabase.with { db in
            try await db.withOwnerClient { owner in
                try await db.withApplicationClient(maximumConnections: 60) { app in
                    try await body(Fixture(db: db, owner: owner, app: app))
                }
            }
        }
    }

    init(db: TestDatabase, owner: PostgresClient, app: PostgresClient) {
        self.db = db
        self.owner = owner
        self.app = app
        // A loaded test machine may take seconds to open a pool's first connections: the bounded wait for a
        // connection is tested where it is the point (FaultTests), and generous everywhere else.
        var database = Database(client: app, logger: TestDatabase.logger)
        database.connectionWait = .seconds(60)
        self.database = database
        var worker = Database(client: owner, logger: TestDatabase.logger, role: DatabaseRole.worker)
        worker.connectionWait = .seconds(60)
        self.worker = worker
        self.requests = AccessRequestStore(database: database)
        self.accounts = AccountStore(database: database, bcryptCost: 4)
        self.sessions = SessionStore(database: database)
        self.tickets = TicketStore(database: database)
        self.oms = OMSChangeRequestStore(database: database)
        self.administration = StaffAdministration(ownerClient: owner, logger: TestDatabase.logger)
    }

    /// Expiry of due requests as background work runs it (the worker role).
    public var expiry: AccessRequestStore { AccessRequestStore(database: worker) }

    /// The same stores with the Swift policy switched off (and optionally rolling back): the database alone decides.
    public func databaseOnly(dryRun: Bool = false) -> (requests: AccessRequestStore, tickets: TicketStore, oms: OMSChangeRequestStore) {
        var raw = database
        raw.dryRun = dryRun
        return (
            AccessRequestStore(database: raw, policy: .databaseOnly), TicketStore(database: raw, policy: .databaseOnly),
            OMSChangeRequestStore(database: raw, policy: .databaseOnly)
        )
    }

    // MARK: Situations

    /// An organisation in OMS.
    public func organisation(_ name: String = "Org \(UUID().uuidString.prefix(6))", country: String = "NL") async throws -> OrganisationID {
        let ids = try await administration.importOrganisations([.init(name: name, country: country, city: "Amsterdam")])
        guard let id = ids.first else { throw FixtureError("organisation not created") }
        return id
    }

    /// The password of every user the fixture makes, and of its staff.
    public static let password = "correct horse battery"
    public static let staffPassword = "staff password 123"

    /// A verified, signed-in user with security answers set (ready to file requests).
    public func user(_ name: String = "user") async throws -> TestAccount {
        let email = "\(name)-\(UUID().uuidString.prefix(8))@example.com".lowercased()
        try await accounts.register(email: email, displayName: name, password: Self.password)
        try await accounts.verify(token: try await verificationToken(sentTo: email))
        let user = try await signIn(email)
        try await accounts.setSecurityAnswers(
            actor: user,
            answers: [("First pet?", "Rex"), ("Birth city?", "Leiden"), ("First school?", "De Regenboog")].map(SecurityAnswer.init))
        return user
    }

    /// An EMA staff member, signed in.
    public func staff(_ role: StaffRole) async throws -> TestAccount {
        let email = "\(role.rawValue)-\(UUID().uuidString.prefix(8))@ema.example".lowercased()
        try await administration.addStaff(email: email, displayName: role.rawValue, role: role, password: Self.staffPassword, bcryptCost: 4)
        return try await signIn(email, password: Self.staffPassword)
    }

    /// Signs in through the database's own check (`spor_sign_in`) with the fixture's password.
    public func signIn(_ email: String, password: String = Self.password) async throws -> TestAccount {
        let session = try await sessions.signIn(email: email, password: password)
        return TestAccount(id: session.profile.account, bearerToken: session.token)
    }

    /// A new session of an existing account, made as the owner (for accounts a test found in the database).
    public func session(of account: AccountID) async throws -> TestAccount {
        let token = UUID().uuidString + UUID().uuidString
        try await owner.withTransaction(logger: TestDatabase.logger) { connection in
            try await connection.query(
                """
                INSERT INTO sessions (token_hash, account_id, expires_at)
                VALUES (sha256(convert_to(\(token), 'UTF8')), \(account.rawValue), now() + interval '1 hour')
                """, logger: TestDatabase.logger)
            try await connection.query(
                "INSERT INTO audit_events (action, subject_type, subject_id) VALUES ('session.started', 'account', \(account.description))",
                logger: TestDatabase.logger)
        }
        return TestAccount(id: account, bearerToken: token)
    }

    /// A minimal PDF (a `%PDF-n.n` header and a `%%EOF` trailer: what R10 checks).
    public static let pdf: [UInt8] = Array("%PDF-1.4\n% SPOR User Affiliation Template Letter\n%%EOF\n".utf8)

    /// A 1×1 PNG (signature, IHDR, IDAT, IEND).
    public static let png: [UInt8] = [
        0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00, 0x01,
        0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4, 0x89, 0x00, 0x00, 0x00, 0x0A, 0x49, 0x44, 0x41,
        0x54, 0x78, 0x9C, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0D, 0x0A, 0x2D, 0xB4, 0x00, 0x00, 0x00, 0x00, 0x49,
        0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
    ]

    /// Opens the R10 ticket for a pending first-super-user request.
    @discardableResult
    public func openTicket(for request: AccessRequest, by requester: TestAccount) async throws -> ServiceDeskTicket {
        guard let organisation = request.organisation else { throw FixtureError("request has no organisation") }
        return try await tickets.open(
            actor: requester, request: request.id, subject: "SPOR Super user role access – request ID \(request.id)",
            description: nil,
            signatory: Signatory(
                name: "Dr. A. Director", jobTitle: "Head of Regulatory Affairs", email: "director@example.com",
                organisation: organisation, hasManagerialAuthority: true),
            letter: Upload(fileName: "affiliation.pdf", contentType: .pdf, bytes: Self.pdf))
    }

    /// A user who became a super user of `organisation`: first through the service desk, later through a super user.
    public func superUser(of organisation: OrganisationID, approvedBy approver: TestAccount? = nil) async throws -> TestAccount {
        let account = try await user("super")
        let request = try await requests.submit(actor: account, role: .superUser, organisation: organisation, justification: nil).request
        if request.approverKind == .emaServiceDesk {
            try await openTicket(for: request, by: account)
            var desk = approver
            if desk == nil { desk = try await staff(.serviceDesk) }
            guard let desk else { throw FixtureError("no service desk agent") }
            _ = try await requests.decide(actor: desk, request: request.id, channel: .serviceDesk, action: .approve)
        } else {
            let superUsers = try await ownerQuery(
                "SELECT account_id::text FROM role_assignments WHERE organisation_id = \(organisation.rawValue) AND role = 'spor-industry-super-user' AND revoked_at IS NULL ORDER BY id LIMIT 1"
            )
            guard let first = superUsers.first.flatMap(AccountID.init) else { throw FixtureError("no super user to approve") }
            let decider: TestAccount
            if let approver { decider = approver } else { decider = try await session(of: first) }
            _ = try await requests.decide(actor: decider, request: request.id, channel: .organisation, action: .approve)
        }
        return account
    }

    /// Moves the jobs' clock (`spor_job_now()`, also the clock of grant ends: R21) `offset` ahead of now — an
    /// interval such as `8 days` or `13 months` — as the owner: days pass without waiting and no row is back-dated.
    public func setJobClock(ahead offset: String) async throws {
        _ = try await ownerQuery("UPDATE settings SET job_clock_offset = \(offset)::interval RETURNING 'ok'")
    }

    /// Rows of a one-column text query run as the owner (to inspect state in assertions, never to prove a rule).
    public func ownerQuery(_ query: PostgresQuery) async throws -> [String] {
        var values: [String] = []
        for try await value in try await owner.query(query, logger: TestDatabase.logger).decode(String.self) { values.append(value) }
        return values
    }

    /// The token of the verification e-mail sent to `email`: the last word of its body in the outbox (R2: the account is
    /// activated only by the e-mailed token).
    public func verificationToken(sentTo email: String) async throws -> String {
        guard
            let body = try await ownerQuery(
                "SELECT body FROM notification_outbox WHERE template = 'verify-email' AND recipient_email = \(email)"
            ).first
        else { throw FixtureError("no verification e-mail for \(email)") }
        return String(body.split(separator: " ").last ?? "")
    }

    /// Runs statements as the application role acting for `actor` in one transaction, bypassing all Swift code:
    /// the way to prove the SQL half of a rule. Errors are mapped like the store maps them.
    public func asApplication(
        actor: TestAccount?, _ body: @escaping @Sendable (PostgresConnection) async throws -> Void
    ) async throws {
        var raw = Database(client: app, logger: TestDatabase.logger)
        raw.maximumAttempts = 1
        raw.connectionWait = .seconds(60)
        try await raw.transaction(optionallyAs: actor) { connection, _ in try await body(connection) }
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
