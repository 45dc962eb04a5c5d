import Foundation

/// How the connection to the SMTP server is secured.
public enum SMTPSecurity: Sendable, Equatable {
    /// Plain connection, upgraded with STARTTLS when the server offers it.
    case startTLSIfOffered
    /// Plain connection that must be upgraded with STARTTLS; nothing is sent when the server does not offer it.
    case startTLSRequired
    /// TLS from the first byte (`smtps`, usually port 465).
    case implicitTLS
}

/// Where and how to deliver mail.
public struct SMTPConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    public var security: SMTPSecurity
    /// AUTH is used only when a user name is given (PLAIN, else LOGIN), and only over TLS unless the host is
    /// `localhost`, `127.0.0.1` or `::1`.
    public var username: String?
    public var password: String?
    /// PEM file of CA certificates to trust; nil: the system's trust roots.
    public var caFile: String?
    /// The name sent with EHLO.
    public var clientName: String
    /// How long establishing the TCP connection may take.
    public var connectTimeout: Duration
    /// How long each reply may take (the reply to the end of the message data may take twice as long).
    public var commandTimeout: Duration

    public init(
        host: String, port: Int = 25, security: SMTPSecurity = .startTLSIfOffered, username: String? = nil, password: String? = nil,
        caFile: String? = nil, clientName: String = "localhost", connectTimeout: Duration = .seconds(10),
        commandTimeout: Duration = .seconds(30)
    ) {
        self.host = host
        self.port = port
        self.security = security
        self.username = username
        self.password = password
        self.caFile = caFile
        self.clientName = clientName
        self.connectTimeout = connectTimeout
        self.commandTimeout = commandTimeout
    }

    /// Parses an SMTP URL:
    /// - `smtp://[user:password@]host[:port][?starttls=required]`: port 25 by default, STARTTLS used when offered
    ///   (required with `starttls=required`);
    /// - `smtps://[user:password@]host[:port]`: implicit TLS, port 465 by default.
    ///
    /// User and password are percent-decoded; an IPv6 host is written in brackets. Throws ``SMTPConfigurationError``
    /// naming the problem (never showing the password) for anything else.
    public init(url: String, caFile: String? = nil) throws {
        func fail(_ message: String) -> SMTPConfigurationError {
            SMTPConfigurationError(description: "invalid SMTP URL: \(message)")
        }
        guard let schemeEnd = url.range(of: "://") else {
            throw fail("expected smtp://host or smtps://host")
        }
        let scheme = url[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "smtp" || scheme == "smtps" else {
            throw fail("unsupported scheme '\(scheme)' (use smtp or smtps)")
        }
        var rest = url[schemeEnd.upperBound...]
        guard !rest.contains("#") else {
            throw fail("a fragment (#) is not allowed")
        }
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var authority = rest
        if let slash = rest.firstIndex(of: "/") {
            authority = rest[..<slash]
            guard rest[slash...] == "/" else {
                throw fail("a path is not allowed")
            }
        }

        var username: String?
        var password: String?
        if let at = authority.lastIndex(of: "@") {
            let userInfo = authority[..<at]
            authority = authority[authority.index(after: at)...]
            let user = userInfo.prefix(while: { $0 != ":" })
            guard let decoded = user.removingPercentEncoding, !decoded.isEmpty else {
                throw fail("the user name is empty or not valid percent-encoding")
            }
            username = decoded
            if user.endIndex < userInfo.endIndex {
                guard let decoded = userInfo[userInfo.index(after: user.endIndex)...].removingPercentEncoding else {
                    throw fail("the password is not valid percent-encoding")
                }
                password = decoded
            }
        }

        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw fail("unclosed '[' in the host")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else {
                    throw fail("unexpected text after the IPv6 address")
                }
                portText = after.dropFirst()
            }
        } else if let colon = authority.firstIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else {
            throw fail("missing host")
        }
        guard host.allSatisfy({ $0.isLetter || $0.isNumber || "-._:".contains($0) }) else {
            throw fail("invalid host '\(host)'")
        }
        var port = scheme == "smtps" ? 465 : 25
        if let portText {
            guard let value = Int(portText), portText.allSatisfy(\.isASCII), (1...65535).contains(value) else {
                throw fail("invalid port '\(portText)' (expected 1 to 65535)")
            }
            port = value
        }

        var security: SMTPSecurity = scheme == "smtps" ? .implicitTLS : .startTLSIfOffered
        for item in query.split(separator: "&") {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = parts[0].removingPercentEncoding ?? String(parts[0])
            let value = parts.count > 1 ? (parts[1].removingPercentEncoding ?? String(parts[1])) : ""
            switch (name, value) {
            case ("starttls", "required") where scheme == "smtp":
                security = .startTLSRequired
            case ("starttls", _) where scheme == "smtp":
                throw fail("starttls must be 'required' (STARTTLS is used when offered without it)")
            case ("starttls", _):
                throw fail("starttls does not apply to smtps (TLS from the first byte)")
            default:
                throw fail("unknown query item '\(name)'")
            }
        }
        self.init(host: String(host), port: port, security: security, username: username, password: password, caFile: caFile)
    }

    /// Whether the host is this machine (credentials may then go over a plain connection).
    var hostIsLoopback: Bool {
        let host = host.lowercased()
        return host == "localhost" || host == "::1" || host == "127.0.0.1"
    }
}

extension SMTPConfiguration: CustomStringConvertible {
    /// The configuration as a URL, without the password.
    public var description: String {
        let scheme = security == .implicitTLS ? "smtps" : "smtp"
        let user = username.map { ($0.addingPercentEncoding(withAllowedCharacters: .urlUserAllowed) ?? $0) + "@" } ?? ""
        let host = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(user)\(host):\(port)" + (security == .startTLSRequired ? "?starttls=required" : "")
    }
}

/// An SMTP URL that cannot be used; the description names the problem.
public struct SMTPConfigurationError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
}
