import Foundation
import Logging
import PostgresNIO

/// One message of the outbox, as claimed for delivery.
public struct OutboxMessage: Sendable, Equatable {
    public let id: Int64
    public let recipient: String
    public let template: String
    public let subject: String
    /// The text as the command wrote it; `{{public-url}}` stands for the service's public address.
    public let body: String
    /// When the change that caused it committed (the message's `Date`, the same on every attempt).
    public let createdAt: Date
    /// 1 on the first attempt.
    public let attempt: Int

    public init(id: Int64, recipient: String, template: String, subject: String, body: String, createdAt: Date, attempt: Int) {
        self.id = id
        self.recipient = recipient
        self.template = template
        self.subject = subject
        self.body = body
        self.createdAt = createdAt
        self.attempt = attempt
    }
}

/// What one attempt to send a message came to.
public enum DeliveryOutcome: Sendable, Equatable {
    /// Handed over (the mail server's reply, or where the file went).
    case sent(String)
    /// Not now (connection refused, timeout, a 4xx reply): try again later.
    case transient(String)
    /// Never (a 5xx reply for this message or recipient): the message is dead.
    case permanent(String)
}

/// Sends outbox messages (e-mail). Delivery is at least once: after a crash between sending and recording, a
/// message is sent again with the same Message-ID, so receivers can drop the duplicate.
public protocol NotificationSender: Sendable {
    /// One outcome per message, in order; one message's failure does not stop the others.
    func send(_ messages: [OutboxMessage]) async -> [DeliveryOutcome]
}

/// When a message that failed for now is tried again, how long a claim lasts, and when to give up.
public struct RetryPolicy: Sendable, Equatable {
    /// The pause after the first failed attempt; it doubles with every further one, up to `maximumDelay`.
    public var initialDelay: Duration
    public var maximumDelay: Duration
    /// After this many failed attempts a transient failure ends the message as dead too.
    public var maximumAttempts: Int
    /// How long a claimed message stays with its worker; after that, another worker may claim it (the first died).
    public var lease: Duration

    /// The defaults: 30 s, doubling to 1 h, dead after 16 attempts (about 9 h of trying), 5 min leases.
    public init(
        initialDelay: Duration = .seconds(30), maximumDelay: Duration = .seconds(3600), maximumAttempts: Int = 16,
        lease: Duration = .seconds(300)
    ) {
        self.initialDelay = initialDelay
        self.maximumDelay = maximumDelay
        self.maximumAttempts = maximumAttempts
        self.lease = lease
    }

    /// The pause after failed attempt `attempt` (1-based): exponential, with "equal jitter" (half fixed, half
    /// random, `unit` in 0..<1), so workers that failed together do not retry together.
    public func delay(afterAttempt attempt: Int, unit: Double) -> Duration {
        let exponent = Double(max(0, min(attempt - 1, 30)))
        let full = min(Self.seconds(initialDelay) * pow(2, exponent), Self.seconds(maximumDelay))
        return .milliseconds(Int64((full / 2 + full / 2 * min(max(unit, 0), 1)) * 1000))
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}

/// The outbox's figures (for `/metrics`).
public struct OutboxFigures: Sendable, Equatable {
    public let queued: Int
    public let dead: Int
    /// Seconds.
    public let oldestQueuedAge: Double

    public init(queued: Int, dead: Int, oldestQueuedAge: Double) {
        self.queued = queued
        self.dead = dead
        self.oldestQueuedAge = oldestQueuedAge
    }
}

/// What one delivery round did.
public struct DeliveryRound: Sendable, Equatable {
    public var claimed = 0
    public var sent = 0
    /// Transient failures (to be tried again).
    public var failed = 0
    /// Messages that ended dead this round.
    public var dead = 0

    public init(claimed: Int = 0, sent: Int = 0, failed: Int = 0, dead: Int = 0) {
        (self.claimed, self.sent, self.failed, self.dead) = (claimed, sent, failed, dead)
    }
}

/// Delivers the outbox (R16), as the worker role: claims due messages with a lease and commits, sends them with no
/// transaction open, and records each outcome — sent, tried again after a back-off, or dead with the reply.
public struct NotificationDelivery: Sendable {
    let database: Database
    public let sender: any NotificationSender
    public let retry: RetryPolicy
    var logger: Logger { database.logger }

    public init(database: Database, sender: any NotificationSender, retry: RetryPolicy = RetryPolicy()) {
        self.database = database
        self.sender = sender
        self.retry = retry
    }

    /// Claims, sends and records up to `batch` due messages.
    @discardableResult
    public func deliverPending(batch: Int = 50) async throws -> DeliveryRound {
        let messages = try await claim(batch: batch)
        guard !messages.isEmpty else { return DeliveryRound() }
        let outcomes = await sender.send(messages)
        return try await record(zip(messages, outcomes).map { ($0, $1) })
    }

    /// Leases up to `batch` due messages to this worker (committed before anything is sent).
    public func claim(batch: Int) async throws -> [OutboxMessage] {
        try await database.transaction { connection in
            try await connection.all(
                """
                SELECT id, recipient_email, template, subject, body, created_at, attempts
                FROM spor_claim_notifications(\(Int32(clamping: batch)), \(RetryPolicy.seconds(retry.lease)))
                """, as: (Int64, String, String, String, String, Date, Int32).self, logger: logger
            ).map { OutboxMessage(id: $0.0, recipient: $0.1, template: $0.2, subject: $0.3, body: $0.4, createdAt: $0.5, attempt: Int($0.6)) }
        }
    }

    /// Records the outcomes of claimed messages in one statement.
    @discardableResult
    public func record(_ results: [(OutboxMessage, DeliveryOutcome)]) async throws -> DeliveryRound {
        var round = DeliveryRound(claimed: results.count)
        var ids: [Int64] = []
        var states: [String] = []
        var replies: [String] = []
        var delays: [Double] = []
        for (message, outcome) in results {
            let (state, reply, pause) = decide(message, outcome)
            switch state {
            case "sent": round.sent += 1
            case "retry": round.failed += 1
            default:
                round.dead += 1
                if case .transient = outcome { round.failed += 1 }
            }
            ids.append(message.id)
            states.append(state)
            replies.append(reply)
            delays.append(pause)
        }
        let query: PostgresQuery = """
            SELECT spor_record_delivery(t.id, t.outcome, t.reply, t.retry)
            FROM unnest(\(ids)::bigint[], \(states)::text[], \(replies)::text[], \(delays)::float8[]) AS t(id, outcome, reply, retry)
            """
        _ = try await database.transaction { connection in
            try await connection.query(query, logger: logger).collect()
        }
        return round
    }

    /// The state an outcome records: sent; retry after a back-off; or dead (permanent, or out of attempts).
    private func decide(_ message: OutboxMessage, _ outcome: DeliveryOutcome) -> (String, String, Double) {
        switch outcome {
        case .sent(let reply):
            return ("sent", reply, 0)
        case .transient(let reply) where message.attempt < retry.maximumAttempts:
            let pause = retry.delay(afterAttempt: message.attempt, unit: Double.random(in: 0..<1))
            logger.warning(
                "notification not delivered, trying again",
                metadata: ["id": "\(message.id)", "attempt": "\(message.attempt)", "reply": "\(reply)", "retryIn": "\(pause)"])
            return ("retry", reply, RetryPolicy.seconds(pause))
        case .transient(let reply), .permanent(let reply):
            logger.error("notification dead", metadata: ["id": "\(message.id)", "attempt": "\(message.attempt)", "reply": "\(reply)"])
            return ("dead", reply, 0)
        }
    }

    /// Queue depth, dead messages and the age of the oldest waiting one.
    public func figures() async throws -> OutboxFigures {
        try await database.transaction { connection in
            let row = try await connection.first(
                "SELECT queued, dead, oldest_queued_seconds FROM spor_outbox_figures()", as: (Int64, Int64, Double).self,
                logger: logger)
            return OutboxFigures(queued: Int(row?.0 ?? 0), dead: Int(row?.1 ?? 0), oldestQueuedAge: row?.2 ?? 0)
        }
    }
}
