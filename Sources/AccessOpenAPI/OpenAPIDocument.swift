import Foundation

/// The contract, served at `GET /openapi.yaml`: the same file the server interface is generated from.
package enum OpenAPIDocument {
    package static let text: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
            let text = try? String(contentsOf: url, encoding: .utf8)
        else { return "openapi: 3.1.0\ninfo: {title: SPOR Access, version: unknown}\npaths: {}\n" }
        return text
    }()
}
