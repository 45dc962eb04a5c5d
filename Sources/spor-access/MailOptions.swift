import AccessAPI
import ArgumentParser
import MailTransport

/// How `serve` delivers e-mail: SMTP with `--smtp-url`, otherwise `.eml` files in `--mail-dir`.
struct MailOptions: ParsableArguments {
    @Option(
        name: .customLong("smtp-url"),
        help:
            "Mail server: smtp://[user:password@]host[:port][?starttls=required] (STARTTLS when offered) or smtps://… (implicit TLS). Env: SPOR_SMTP_URL. Default: none — messages are written to --mail-dir."
    )
    var smtpURL: String?

    @Option(
        name: .customLong("smtp-ca-file"),
        help: "PEM file of the CA certificates to trust for the mail server's TLS. Env: SPOR_SMTP_CA_FILE. Default: the system's trust store.")
    var smtpCAFile: String?

    @Option(
        name: .customLong("mail-from"),
        help: "Sender of every message: address or 'Name <address>'. Env: SPOR_MAIL_FROM. Default: EMA Account Management <no-reply@localhost>")
    var mailFrom: String?

    @Option(
        name: .customLong("mail-dir"),
        help: "Folder the messages are written to as .eml files when there is no --smtp-url. Env: SPOR_MAIL_DIR. Default: .data/mail")
    var mailDirectory: String?

    @Option(
        name: .customLong("public-url"),
        help: "The service's address as people reach it; verification links start with it. Env: SPOR_PUBLIC_URL. Default: http://<host>:<port>")
    var publicURL: String?

    func configuration(_ options: DatabaseOptions, host: String, port: Int) throws -> MailConfiguration {
        var mail = MailConfiguration()
        if let url = options.value(smtpURL, "SPOR_SMTP_URL") {
            do {
                mail.transport = .smtp(try SMTPConfiguration(url: url, caFile: options.value(smtpCAFile, "SPOR_SMTP_CA_FILE")))
            } catch {
                throw ValidationError("--smtp-url: \(error)")
            }
        } else {
            mail.transport = .drop(directory: options.value(mailDirectory, "SPOR_MAIL_DIR") ?? ".data/mail")
        }
        if let from = options.value(mailFrom, "SPOR_MAIL_FROM") {
            do {
                (mail.fromAddress, mail.fromName) = try MailConfiguration.parseSender(from)
            } catch {
                throw ValidationError("\(error)")
            }
        }
        let listening = host == "0.0.0.0" || host == "::" ? "localhost" : host
        let url = options.value(publicURL, "SPOR_PUBLIC_URL") ?? "http://\(listening):\(port)"
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw ValidationError("--public-url '\(url)' must start with http:// or https://")
        }
        mail.publicURL = url
        return mail
    }
}
