import AccessStore
import AccessTestSupport
import Foundation
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import OpenAPIRuntime
import PostgresNIO
import Testing

@testable import AccessAPI

/// Records what the generated code registers.
final class RecordingTransport: ServerTransport, Sendable {
    let routes = NIOLockedValueBox<Set<String>>([])

    func register(
        _ handler: @Sendable @escaping (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?),
        method: HTTPRequest.Method, path: String
    ) throws {
        _ = routes.withLockedValue { $0.insert("\(method.rawValue) \(path)") }
    }
}

@Suite("The contract")
struct ContractTests {
    /// `METHOD /path` of every operation in openapi.yaml (paths two spaces in, methods four).
    static func documentedOperations() throws -> Set<String> {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/AccessOpenAPI/openapi.yaml")
        let text = try String(contentsOf: url, encoding: .utf8)
        var operations: Set<String> = []
        var path: String?
        var inPaths = false
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line == "paths:" {
                inPaths = true
                continue
            }
            if inPaths && !line.hasPrefix(" ") && !line.isEmpty { inPaths = false }
            guard inPaths else { continue }
            if line.hasPrefix("  /") && line.hasSuffix(":") && !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    ") && !line.hasPrefix("     ") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "post", "put", "delete", "patch"].contains(String(key)) {
                    operations.insert("\(key.uppercased()) \(path)")
                }
            }
        }
        return operations
    }

    @Test("Every operation of openapi.yaml is served, and nothing else is registered from it")
    func servedRoutesMatchTheDocument() throws {
        let logger = TestDatabase.logger
        let url = DatabaseURL(host: "127.0.0.1", port: 1, username: "nobody", password: nil, database: "none")
        let database = Database(client: try url.makeClient(logger: logger), logger: logger)
        let handler = APIHandler(
            requests: AccessRequestStore(database: database), accounts: AccountStore(database: database),
            sessions: SessionStore(database: database), tickets: TicketStore(database: database),
            queries: Queries(database: database), reports: Reports(database: database), reviews: AccessReviewStore(database: database))
        let transport = RecordingTransport()
        try handler.registerHandlers(on: transport)
        let documented = try Self.documentedOperations()
        #expect(documented.count >= 20)
        #expect(transport.routes.withLockedValue { $0 } == documented)
    }
}
