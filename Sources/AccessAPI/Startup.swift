import AccessStore
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// How the service comes up.
public enum StartupMode: Sendable {
    /// Serve at once (the tests: their database is migrated before the service is built).
    case immediate
    /// Listen at once, but answer API calls with 503 `starting` until the database answers and every migration is
    /// applied — applying them first as `migrateWith` when given. An unreachable database is tried again with
    /// backoff, one log line per attempt, and `/health/ready` says why it is not ready meanwhile.
    case waitForDatabase(migrateWith: DatabaseURL?)
}

/// Whether the service has its database yet, and if not, why (what `/health/ready` and the 503 say).
public final class StartupGate: Sendable {
    enum State: Sendable, Equatable {
        case waiting(String)
        case open
    }

    private let state: Mutex<State>

    public init(open: Bool) {
        state = Mutex(open ? .open : .waiting("starting: connecting to the database"))
    }

    public var isOpen: Bool { state.withLock { $0 == .open } }
    /// Why the gate is closed; nil when it is open.
    public var reason: String? {
        state.withLock {
            if case .waiting(let reason) = $0 { return reason }
            return nil
        }
    }

    func wait(_ reason: String) { state.withLock { $0 = .waiting(reason) } }
    func open() { state.withLock { $0 = .open } }
}

/// The start-up of `StartupMode.waitForDatabase`: connects (as the owner to migrate, then as the application role),
/// applies pending migrations, checks that all are current, and opens the gate. A database that cannot be reached,
/// or whose migrations are not current yet (another instance migrating, `--no-migrate`), is tried again after 0.25 s,
/// doubling to 1 s (so the service is ready about a second after the database is). A migration that fails, or an applied one that was changed, ends the service with that error.
struct DatabaseStartup: Service, CustomStringConvertible {
    let gate: StartupGate
    let application: DatabaseURL
    let owner: DatabaseURL?
    let migrations: MigrationSet
    let database: Database
    let logger: Logger

    /// What ServiceLifecycle logs (not the migrations' text).
    var description: String { "DatabaseStartup(\(application))" }

    func run() async throws {
        let started = ContinuousClock.now
        var delay = Duration.milliseconds(250)
        var attempt = 1
        var said: (reason: String, at: ContinuousClock.Instant)?
        let target = "\(application.host):\(application.port)"
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            let waitingFor: String
            do {
                if let owner {
                    let applied = try await owner.withSingleConnection(logger: logger) { connection in
                        try await MigrationRunner(migrations: migrations, logger: logger).migrate(connection: connection)
                    }
                    logger.info("migrations current", metadata: ["appliedNow": "\(applied.count)", "total": "\(migrations.migrations.count)"])
                }
                try await application.withSingleConnection(logger: logger) { connection in
                    try await connection.query("SELECT 1", logger: logger)
                }
                switch await database.readiness(of: migrations) {
                case .ready:
                    gate.open()
                    logger.info("database ready: API open", metadata: ["database": "\(application)", "attempts": "\(attempt)"])
                    try? await gracefulShutdown()
                    return
                case .migrationsNotCurrent(let problem):
                    waitingFor = "the database at \(target) answers, but \(problem)"
                case .unreachable(let reason):
                    waitingFor = "the database at \(target) cannot be reached: \(reason)"
                }
            } catch let error as MigrationError {
                throw error
            } catch {
                // Anything but a migration's own failure is the database not (yet) answering: wait and try again.
                waitingFor = "the database at \(target) cannot be reached: \(Self.reason(error))"
            }
            let waited = Int((ContinuousClock.now - started).components.seconds)
            gate.wait("starting: \(waitingFor) (waiting \(waited) s, attempt \(attempt); trying again every second)")
            // One line when the reason is new, and one every 30 s while it stays: a person sees what is wrong without
            // a line per attempt.
            if said?.reason != waitingFor || ContinuousClock.now - said!.at >= .seconds(30) {
                logger.warning(
                    "waiting for the database: \(waitingFor). Trying again every second (attempt \(attempt), \(waited) s so far); API calls are answered 503 'starting' until then."
                )
                said = (waitingFor, ContinuousClock.now)
            }
            let pause = delay
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: pause) }
            delay = min(delay * 2, .seconds(1))
            attempt += 1
        }
    }

    /// Why a connection could not be opened, in words: the cause PostgresNIO and NIO wrap several times.
    static func reason(_ error: any Error) -> String {
        let text = StoreErrors.describe(error)
        let lower = text.lowercased()
        let known: [(String, String)] = [
            ("connection refused", "connection refused (nothing listens at that address and port)"),
            ("timed out", "the connection timed out"), ("timeout", "the connection timed out"),
            ("name or service not known", "unknown host name"), ("nodename nor servname", "unknown host name"),
            ("network is unreachable", "network unreachable"), ("no route to host", "no route to host"),
            ("connection reset", "the connection was reset"),
        ]
        return known.first { lower.contains($0.0) }?.1 ?? text
    }
}

/// Answers API calls with 503 `starting` (and `Retry-After`) while the start-up gate is closed; health, metrics
/// and the contract answer always.
struct StartupGateMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let gate: StartupGate

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if let reason = gate.reason, request.uri.path.hasPrefix("/v1/") {
            throw Problem(
                status: .serviceUnavailable, code: "starting", title: "Starting",
                detail: "The service is not ready yet: \(reason).", retryAfter: 2)
        }
        return try await next(request, context)
    }
}

/// At most `limit` API calls in progress at once; more get 503 `overloaded` at once (a bounded queue in front of
/// the database pool instead of an unbounded one). Health and metrics are not counted.
struct InFlightLimitMiddleware: RouterMiddleware {
    typealias Context = AppRequestContext
    let limit: Int
    let counter = Counter()

    final class Counter: Sendable { let value = Atomic<Int>(0) }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard request.uri.path.hasPrefix("/v1/") else { return try await next(request, context) }
        let now = counter.value.add(1, ordering: .relaxed).newValue
        defer { counter.value.subtract(1, ordering: .relaxed) }
        if now > limit {
            throw Problem(
                status: .serviceUnavailable, code: "overloaded", title: "Overloaded",
                detail: "More than \(limit) calls are in progress; try again in a moment.", retryAfter: 1)
        }
        return try await next(request, context)
    }
}
