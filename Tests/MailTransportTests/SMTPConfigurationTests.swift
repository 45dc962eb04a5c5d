import MailTransport
import Testing

@Suite("SMTP URLs")
struct SMTPConfigurationTests {
    @Test func smtpDefaults() throws {
        let configuration = try SMTPConfiguration(url: "smtp://mail.example.org")
        #expect(configuration == SMTPConfiguration(host: "mail.example.org", port: 25, security: .startTLSIfOffered))
        #expect(configuration.clientName == "localhost")
        #expect(configuration.connectTimeout == .seconds(10))
        #expect(configuration.commandTimeout == .seconds(30))
    }

    @Test func smtpsDefaults() throws {
        let configuration = try SMTPConfiguration(url: "SMTPS://mail.example.org/", caFile: "/etc/ca.pem")
        #expect(configuration == SMTPConfiguration(host: "mail.example.org", port: 465, security: .implicitTLS, caFile: "/etc/ca.pem"))
    }

    @Test func credentialsArePercentDecoded() throws {
        let configuration = try SMTPConfiguration(url: "smtp://relay%40spor.example:p%40ss%3Aw%2Frd%20x@127.0.0.1:2525?starttls=required")
        #expect(configuration.username == "relay@spor.example")
        #expect(configuration.password == "p@ss:w/rd x")
        #expect(configuration.host == "127.0.0.1")
        #expect(configuration.port == 2525)
        #expect(configuration.security == .startTLSRequired)
        #expect(!configuration.description.contains("p%40ss") && !configuration.description.contains("p@ss"))
        #expect(configuration.description == "smtp://relay%40spor.example@127.0.0.1:2525?starttls=required")
    }

    @Test func userWithoutPasswordAndIPv6Host() throws {
        let configuration = try SMTPConfiguration(url: "smtps://anna@[::1]:4650")
        #expect(configuration.username == "anna")
        #expect(configuration.password == nil)
        #expect(configuration.host == "::1")
        #expect(configuration.port == 4650)
    }

    @Test(arguments: [
        ("ftp://mail.example.org", "unsupported scheme 'ftp'"),
        ("mail.example.org:25", "expected smtp://host"),
        ("smtp://", "missing host"),
        ("smtp://user:secret@:25", "missing host"),
        ("smtp://mail.example.org:0", "invalid port '0'"),
        ("smtp://mail.example.org:70000", "invalid port '70000'"),
        ("smtp://mail.example.org:2x5", "invalid port '2x5'"),
        ("smtp://mail.example.org?tls=yes", "unknown query item 'tls'"),
        ("smtp://mail.example.org?starttls=maybe", "starttls must be 'required'"),
        ("smtps://mail.example.org?starttls=required", "starttls does not apply to smtps"),
        ("smtp://mail.example.org/inbox", "a path is not allowed"),
        ("smtp://user:sec%zzret@mail.example.org", "password is not valid percent-encoding"),
    ])
    func invalidURLsAreRefusedWithTheProblem(url: String, problem: String) {
        do {
            let configuration = try SMTPConfiguration(url: url)
            Issue.record("accepted \(url) as \(configuration)")
        } catch let error as SMTPConfigurationError {
            #expect(error.description.contains(problem), "\(error)")
            #expect(!error.description.contains("secret") && !error.description.contains("sec%zzret"))
        } catch {
            Issue.record("unexpected \(error)")
        }
    }
}
