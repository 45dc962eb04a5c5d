// swift-tools-version: 6.2
// The load generator of Benchmarks/api/load.sh: a closed-loop HTTP/1.1 client on one SwiftNIO event loop thread
// (keep-alive connections, one request in flight per client), so that it costs little of the 2 cores it shares with
// the service and PostgreSQL. A separate package: the service's build never sees it.
import PackageDescription

let package = Package(
    name: "spor-load",
    products: [.executable(name: "spor-load", targets: ["spor-load"])],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2")
    ],
    targets: [
        .executableTarget(
            name: "spor-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        )
    ],
    // Everything runs on one event loop thread; Swift 5 mode spares the Sendable ceremony of a callback client.
    swiftLanguageModes: [.v5]
)
