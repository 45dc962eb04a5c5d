import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting

/// The API tests' one HTTP client: JSON over HummingbirdTesting, with the service's bearer tokens.
public struct API: Sendable {
    public let client: any TestClientProtocol

    public init(client: any TestClientProtocol) { self.client = client }

    /// One response: status, headers and body; the body is read as JSON or text on demand.
    public struct Reply: Sendable {
        public let status: HTTPResponse.Status
        public let headers: HTTPFields
        public let body: ByteBuffer

        /// The body as a JSON object (empty when it is not one).
        public var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:] }
        /// The body as text.
        public var text: String { String(buffer: body) }
        public var contentType: String? { headers[.contentType] }
        public subscript(_ key: String) -> Any? { json[key] }
        /// A problem's stable `code`.
        public var code: String? { json["code"] as? String }
        /// A page's `items`.
        public var items: [[String: Any]] { json["items"] as? [[String: Any]] ?? [] }
    }

    /// Sends `body` (if any) as JSON and asks for JSON.
    @discardableResult
    public func call(_ method: HTTPRequest.Method, _ uri: String, token: String? = nil, _ body: [String: Any]? = nil) async throws -> Reply {
        let data = try body.map { try JSONSerialization.data(withJSONObject: $0) }
        return try await send(
            method, uri, token: token, headers: [.contentType: "application/json", .accept: "application/json"],
            body: data.map { ByteBuffer(bytes: $0) })
    }

    /// Sends exactly `headers` (plus the bearer token, if any) and `body`: raw bodies, other media types, extra headers.
    @discardableResult
    public func send(
        _ method: HTTPRequest.Method, _ uri: String, token: String? = nil, headers: HTTPFields = [:], body: ByteBuffer? = nil
    ) async throws -> Reply {
        var headers = headers
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(uri: uri, method: method, headers: headers, body: body) { response in
            Reply(status: response.status, headers: response.headers, body: response.body)
        }
    }
}
