import Foundation
import Logging
import PostgresNIO

/// Sends one notification (e-mail). Delivery is at least once: a sender may see a message again after a crash
/// between sending and marking, so receivers should tolerate duplicates.
public protocol NotificationSender: Sendable {
    func send(to recipient: String, subject: String, body: String, template: String) async throws
}

/// Writes notifications to the log (the default when no mail relay is configured).
public struct LogNotificationSender: NotificationSender {
    let logger: Logger
    public init(logger: Logger) { self.logger = logger }
    public func send(to recipient: String, subject: String, body: String, template: String) async throws {
        logger.info("notification", metadata: ["to": "\(recipient)", "subject": "\(subject)", "template": "\(template)"])
    }
}

/// Delivers the outbox (R16): claims undelivered rows (SKIP LOCKED, so several workers never send one at once),
/// sends them, and marks each delivered or records the error for a later attempt.
public struct NotificationDelivery: Sendable {
    let database: Database
    public let sender: any NotificationSender
    var logger: Logger { database.logger }

    public init(database: Database, sender: any NotificationSender) {
        self.database = database
        self.sender = sender
    }

    /// Delivers up to `batch` notifications; returns how many were sent.
    @discardableResult
    public func deliverPending(batch: Int = 100) async throws -> Int {
        try await database.transaction { connection in
            let claimed = try await connection.all(
                "SELECT id, recipient_email, template, subject, body FROM spor_claim_notifications(\(Int32(clamping: batch)))",
                as: (Int64, String, String, String, String).self, logger: logger)
            var sent = 0
            for (id, recipient, template, subject, body) in claimed {
                var failure: String?
                do {
                    try await sender.send(to: recipient, subject: subject, body: body, template: template)
                    sent += 1
                } catch {
                    failure = "\(error)"
                    logger.warning("notification not delivered", metadata: ["id": "\(id)", "error": "\(error)"])
                }
                try await connection.query("SELECT spor_mark_notification(\(id), \(failure))", logger: logger)
            }
            return sent
        }
    }
}
