import AccessOpenAPI
import AccessStore
import Hummingbird
import Logging
import OpenAPIHummingbird
import OpenAPIRuntime
import ServiceLifecycle

/// Builds the whole service: the one wiring that `serve` and the tests share.
///
/// The database client runs as a service of the application, so it starts with it and is closed on shutdown.
public func buildApplication(
    _ configuration: AppConfiguration,
    metrics: HTTPMetrics = HTTPMetrics(),
    logger: Logger
) throws -> some ApplicationProtocol {
    var database = try Database.connect(
        to: configuration.database, logger: logger, maximumConnections: configuration.maximumDatabaseConnections)
    database.connectionWait = configuration.connectionWait
    database.preparedStatements = configuration.preparedStatements
    database.admission = TenantAdmission(
        limit: configuration.maximumConnectionsPerOrganisation
            ?? TenantAdmission.defaultLimit(poolSize: configuration.maximumDatabaseConnections),
        onRefusal: { [metrics] _ in metrics.recordAdmissionRefusal() })
    // Reports may read from a replica: spor_report only reads, and authenticating a token writes nothing.
    var reporting = try configuration.reportingDatabase.map { try Database.connect(to: $0, logger: logger, maximumConnections: 5) }
    reporting?.connectionWait = configuration.connectionWait
    let gate: StartupGate
    var services: [any Service] = [database.service]
    switch configuration.startup {
    case .immediate:
        gate = StartupGate(open: true)
    case .waitForDatabase(let owner):
        gate = StartupGate(open: false)
        services.append(
            DatabaseStartup(
                gate: gate, application: configuration.database, owner: owner, migrations: configuration.migrations,
                database: database, logger: logger))
    }
    let router = try buildRouter(
        configuration, database: database, reportingDatabase: reporting ?? database, metrics: metrics, gate: gate)
    if let reporting { services.append(reporting.service) }
    if configuration.runBackgroundWorkers {
        let worker = try Database.connect(to: configuration.workerDatabase, logger: logger, maximumConnections: 2, role: DatabaseRole.worker)
        services.append(worker.service)
        services.append(
            PeriodicWorker.outbox(
                NotificationDelivery(database: worker, sender: configuration.mail.makeSender(logger: logger), retry: configuration.mail.retry),
                metrics: metrics, interval: configuration.mail.pollInterval, gate: gate, logger: logger))
        services.append(
            PeriodicWorker.expiry(AccessRequestStore(database: worker), interval: .seconds(60), gate: gate, metrics: metrics, logger: logger))
        services.append(
            PeriodicWorker.reminders(
                AccessRequestStore(database: worker), interval: .seconds(60), gate: gate, metrics: metrics, logger: logger))
        services.append(
            PeriodicWorker.reviews(
                AccessReviewStore(database: worker), interval: .seconds(60), gate: gate, metrics: metrics, logger: logger))
        services.append(
            PeriodicWorker.grants(
                AccessRequestStore(database: worker), interval: .seconds(60), gate: gate, metrics: metrics, logger: logger))
    }
    return Application(
        router: router,
        configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "spor-access"),
        services: services,
        onServerRunning: { channel in
            logger.info("listening", metadata: ["url": "http://\(configuration.host):\(channel.localAddress?.port ?? configuration.port)"])
        },
        logger: logger
    )
}

func buildRouter(
    _ configuration: AppConfiguration, database: Database, reportingDatabase: Database, metrics: HTTPMetrics,
    gate: StartupGate = StartupGate(open: true)
) throws -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
    router.add(middleware: ResponseHeadersMiddleware())
    router.add(middleware: ProblemMiddleware())
    router.add(middleware: InFlightLimitMiddleware(limit: configuration.maximumRequestsInFlight))
    router.add(middleware: StartupGateMiddleware(gate: gate))
    router.add(middleware: BodyLimitMiddleware(maximumSize: configuration.maximumBodySize))
    HealthRoutes(database: database, migrations: configuration.migrations, metrics: metrics, gate: gate).register(on: router)
    router.get("/openapi.yaml") { _, _ in
        Response(
            status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
    }

    let sessions = SessionStore(database: database, lifetime: configuration.sessionLifetime)
    let api = router.group()
        .add(middleware: AuthenticationMiddleware())
        .add(middleware: IdempotencyMiddleware(keys: IdempotencyStore(database: database), maximumBodySize: configuration.maximumBodySize))
    let handler = APIHandler(
        requests: AccessRequestStore(database: database),
        accounts: AccountStore(database: database, bcryptCost: configuration.bcryptCost),
        sessions: sessions,
        tickets: TicketStore(database: database),
        queries: Queries(database: database),
        reports: Reports(database: reportingDatabase),
        reviews: AccessReviewStore(database: database))
    // The generated routes are registered on the authenticated group; the transport maps them onto Hummingbird.
    // Compact JSON (keys sorted, as before, but not pretty-printed: fewer bytes and less work on every response).
    try handler.registerHandlers(on: api, configuration: Configuration(jsonEncodingOptions: [.sortedKeys]))
    return router
}
