import Foundation
import PostgresNIO

extension PostgresConnection {
    /// Every row of a one-column text query (inside `Fixture.asApplication`: as the application role).
    public func texts(_ query: PostgresQuery) async throws -> [String] {
        var values: [String] = []
        for try await value in try await self.query(query, logger: TestDatabase.logger).decode(String.self) { values.append(value) }
        return values
    }
}

/// Collects values out of a `@Sendable` transaction body.
public final class Collected<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var storage: [Value] = []

    public init() {}

    public func append(_ value: Value) { lock.withLock { storage.append(value) } }
    public func append(contentsOf values: [Value]) { lock.withLock { storage.append(contentsOf: values) } }
    public var values: [Value] { lock.withLock { storage } }
}
