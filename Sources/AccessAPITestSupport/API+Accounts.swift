import AccessDomain
import AccessTestSupport
import Foundation
import HTTPTypes

extension API {
    /// The one onboarding over HTTP: registers, verifies with the token from the outbox, signs in and sets the security
    /// questions. Returns the bearer token.
    public func onboard(_ name: String, fixture f: Fixture, password: String = "correct horse battery") async throws -> String {
        let email = "\(name.lowercased())-\(UUID().uuidString.prefix(6).lowercased())@example.com"
        let registered = try await call(.post, "/v1/accounts", ["email": email, "displayName": name, "password": password])
        guard registered.status == .created else { throw FixtureError("registration of \(email) failed: \(registered.json)") }
        let token = try await f.verificationToken(sentTo: email)
        _ = try await call(.post, "/v1/accounts/verify", ["token": token])
        let bearer = try await signIn(email: email, password: password)
        let answers = [
            ["question": "First pet?", "answer": "Rex"], ["question": "Birth city?", "answer": "Leiden"],
            ["question": "First school?", "answer": "Regenboog"],
        ]
        _ = try await call(.put, "/v1/me/security-questions", token: bearer, ["answers": answers])
        return bearer
    }

    /// Signs in; the bearer token. Throws unless the session was created (201 with a token).
    public func signIn(email: String, password: String) async throws -> String {
        let session = try await call(.post, "/v1/sessions", ["email": email, "password": password])
        guard session.status == .created, let token = session["token"] as? String else {
            throw FixtureError("sign-in of \(email) failed: \(session.status) \(session.json)")
        }
        return token
    }

    /// Signs a fixture account in (fixture users and staff have known passwords, their e-mail is looked up).
    public func signIn(_ account: TestAccount, fixture f: Fixture, password: String = "correct horse battery") async throws -> String {
        guard let email = try await f.ownerQuery("SELECT email FROM accounts WHERE id = \(account.pgUUID)").first else {
            throw FixtureError("no account \(account)")
        }
        return try await signIn(email: email, password: password)
    }

    /// Files an access request for `role` in `organisation` (nil: none).
    public func request(_ role: String, _ organisation: String?, token: String) async throws -> Reply {
        var body: [String: Any] = ["role": role]
        if let organisation { body["organisationId"] = organisation }
        return try await call(.post, "/v1/access-requests", token: token, body)
    }
}
