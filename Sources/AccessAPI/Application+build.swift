import AccessStore
import Hummingbird
import Logging
import PostgresNIO
import ServiceLifecycle

/// Builds the whole service: the one wiring that `serve` and the tests share.
///
/// The database client runs as a service of the application, so it starts with it and is closed on shutdown.
public func buildApplication(
    _ configuration: AppConfiguration,
    metrics: HTTPMetrics = HTTPMetrics(),
    logger: Logger
) throws -> some ApplicationProtocol {
    let client = try configuration.database.makeClient(
        logger: logger, maximumConnections: configuration.maximumDatabaseConnections)
    let router = buildRouter(configuration, client: client, metrics: metrics)
    let database = Database(client: client, logger: logger)
    var services: [any Service] = [client]
    if configuration.runBackgroundWorkers {
        services.append(PeriodicWorker.outbox(
            NotificationDelivery(client: client, sender: LogNotificationSender(logger: logger), logger: logger),
            interval: .seconds(2), logger: logger))
        services.append(PeriodicWorker.expiry(AccessRequestStore(database: database), interval: .seconds(60), logger: logger))
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

func buildRouter(_ configuration: AppConfiguration, client: PostgresClient, metrics: HTTPMetrics) -> Router<AppRequestContext> {
    let router = Router(context: AppRequestContext.self)
    router.add(middleware: RequestIDMiddleware())
    router.add(middleware: HTTPMetricsMiddleware(metrics: metrics))
    router.add(middleware: ProblemMiddleware())
    HealthRoutes(
        client: client,
        migrations: MigrationRunner(migrations: configuration.migrations, logger: Logger(label: "spor-access.migrations")),
        metrics: metrics
    ).register(on: router)
    return router
}
