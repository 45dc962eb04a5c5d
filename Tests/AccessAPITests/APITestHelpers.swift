import AccessTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting

extension API {
    /// Registers, verifies (token from the outbox), signs in and sets security questions — all over HTTP.
    /// Returns the bearer token.
    func onboard(_ name: String, fixture f: Fixture, password: String = "correct horse battery") async throws -> String {
        let email = "\(name.lowercased())-\(UUID().uuidString.prefix(6).lowercased())@example.com"
        let registered = try await call(.post, "/v1/accounts", ["email": email, "displayName": name, "password": password])
        guard registered.status == .created else { throw FixtureError("registration of \(email) failed: \(registered.json)") }
        guard
            let body = try await f.ownerQuery(
                "SELECT body FROM notification_outbox WHERE template = 'verify-email' AND recipient_email = \(email)"
            ).first
        else { throw FixtureError("no verification e-mail for \(email)") }
        let token = String(body.split(separator: " ").last ?? "")
        _ = try await call(.post, "/v1/accounts/verify", ["token": token])
        let session = try await call(.post, "/v1/sessions", ["email": email, "password": password])
        guard let bearer = session["token"] as? String else { throw FixtureError("sign-in of \(email) failed: \(session.json)") }
        let answers = [
            ["question": "First pet?", "answer": "Rex"], ["question": "Birth city?", "answer": "Leiden"],
            ["question": "First school?", "answer": "Regenboog"],
        ]
        _ = try await call(.put, "/v1/me/security-questions", token: bearer, ["answers": answers])
        return bearer
    }

    /// Files an access request over HTTP.
    func request(_ role: String, _ organisation: String?, token: String) async throws -> Reply {
        var body: [String: Any] = ["role": role]
        if let organisation { body["organisationId"] = organisation }
        return try await call(.post, "/v1/access-requests", token: token, body)
    }
}
