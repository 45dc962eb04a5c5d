// swift-tools-version: 6.2
import PackageDescription

let package = Package(
    name: "spor-access",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "spor-access", targets: ["spor-access"]),
        .library(name: "AccessDomain", targets: ["AccessDomain"]),
        .library(name: "AccessStore", targets: ["AccessStore"]),
        .library(name: "AccessAPI", targets: ["AccessAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-system.git", from: "1.8.1"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-openapi-generator.git", from: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime.git", from: "1.13.4"),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird.git", from: "2.1.0"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
    ],
    targets: [
        /// The domain: value types and the Swift half of every rule (pure functions, no I/O). Foundation only.
        .target(name: "AccessDomain"),
        /// PostgreSQL: connection, one-transaction commands, repositories, migrations, reports.
        .target(
            name: "AccessStore",
            dependencies: [
                "AccessDomain",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        /// A PostgreSQL cluster from the system's server binaries in a local folder: start, stop, provision.
        .target(
            name: "EmbeddedPostgres",
            dependencies: [
                "AccessStore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        /// E-mail: RFC 5322 messages and a small SMTP client (RFC 5321: STARTTLS, implicit TLS, AUTH PLAIN/LOGIN) on
        /// SwiftNIO. Knows nothing of the product.
        .target(
            name: "MailTransport",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        /// The HTTP contract: `openapi.yaml` and the types and server protocol generated from it.
        .target(
            name: "AccessOpenAPI",
            dependencies: [
                "AccessDomain",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
            ],
            resources: [.copy("openapi.yaml")],
            // The generated code imports as `package`; SwiftPM's resource accessor imports plainly.
            swiftSettings: [.enableUpcomingFeature("InternalImportsByDefault")],
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator")]
        ),
        /// HTTP: the handlers of the generated protocol, middleware, problem details, health, metrics, workers.
        .target(
            name: "AccessAPI",
            dependencies: [
                "AccessDomain",
                "AccessStore",
                "AccessOpenAPI",
                "MailTransport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        /// The command: serve, migrate, staff, organisations, report.
        .executableTarget(
            name: "spor-access",
            dependencies: [
                "AccessAPI",
                "AccessDomain",
                "AccessStore",
                "EmbeddedPostgres",
                "MailTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        /// Test support shared by the test targets: a throwaway PostgreSQL cluster, a database per test, the fixture,
        /// the UUID helper and the seeded random generator.
        .target(
            name: "AccessTestSupport",
            dependencies: [
                "AccessDomain",
                "AccessStore",
                "EmbeddedPostgres",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        /// Test support of the API tests: the HTTP client, the app builder, onboarding over HTTP.
        .target(
            name: "AccessAPITestSupport",
            dependencies: [
                "AccessAPI",
                "AccessDomain",
                "AccessStore",
                "AccessTestSupport",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ]
        ),
        /// Test support for mail: a real SMTP server (aiosmtpd, `scripts/smtp-sink.py`) started per test, and
        /// self-signed certificates for its TLS.
        .target(name: "SMTPTestSupport"),
        .testTarget(name: "AccessDomainTests", dependencies: ["AccessDomain"]),
        .testTarget(
            name: "MailTransportTests",
            dependencies: [
                "MailTransport",
                "SMTPTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "AccessStoreTests",
            dependencies: [
                "AccessDomain",
                "AccessStore",
                "EmbeddedPostgres",
                "AccessTestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ]
        ),
        .testTarget(
            name: "AccessAPITests",
            dependencies: [
                "AccessAPI",
                "AccessAPITestSupport",
                "AccessDomain",
                "AccessStore",
                "AccessTestSupport",
                "MailTransport",
                "SMTPTestSupport",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
