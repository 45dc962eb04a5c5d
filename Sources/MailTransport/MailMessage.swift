import Foundation

/// One e-mail to one recipient.
public struct MailMessage: Sendable, Equatable {
    public var from: String
    public var fromName: String?
    public var to: String
    public var subject: String
    public var body: String
    public var date: Date
    /// Without angle brackets, e.g. `outbox-42.1733070000@spor.example`.
    public var messageID: String

    public init(from: String, fromName: String? = nil, to: String, subject: String, body: String, date: Date, messageID: String) {
        self.from = from
        self.fromName = fromName
        self.to = to
        self.subject = subject
        self.body = body
        self.date = date
        self.messageID = messageID
    }

    /// Whether the body has characters outside ASCII (then it needs 8BITMIME or quoted-printable).
    public var bodyIsASCII: Bool {
        body.utf8.allSatisfy { $0 < 0x80 }
    }

    /// The RFC 5322 message, CRLF line ends, ending in CRLF. Not dot-stuffed (that is the wire's job).
    ///
    /// Non-ASCII header text is sent as RFC 2047 encoded-words, header lines are folded under 78 columns, and body
    /// lines are wrapped at 78 columns at spaces (a longer word such as a URL stays whole on its own line).
    /// - Parameter eightBit: true: a non-ASCII body is sent as `8bit`; false: as `quoted-printable`. An all-ASCII
    ///   body is always `7bit`.
    public func rendered(eightBit: Bool = true) -> String {
        let lines = Self.bodyLines(body)
        let fitsSMTP = lines.allSatisfy { $0.utf8.count <= 998 }
        let encoding: String
        let bodyLines: [String]
        if bodyIsASCII && fitsSMTP {
            (encoding, bodyLines) = ("7bit", lines)
        } else if eightBit && fitsSMTP {
            (encoding, bodyLines) = ("8bit", lines)
        } else {
            (encoding, bodyLines) = ("quoted-printable", lines.flatMap(Self.quotedPrintable))
        }
        let sender: [String]
        if let name = fromName.map(Self.singleLine), !name.isEmpty {
            sender = Self.phrase(name, columns: 76 - "From: ".count) + ["<\(Self.singleLine(from))>"]
        } else {
            sender = [Self.singleLine(from)]
        }
        let headers = [
            "Date: " + Self.rfc5322Date(date),
            Self.fold("From", sender),
            "To: " + Self.singleLine(to),
            Self.fold("Subject", Self.unstructured(Self.singleLine(subject), columns: 76 - "Subject: ".count)),
            "Message-ID: <\(Self.singleLine(messageID))>",
            "Auto-Submitted: auto-generated",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=utf-8",
            "Content-Transfer-Encoding: " + encoding,
        ]
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + bodyLines.map { $0 + "\r\n" }.joined()
    }

    // MARK: Headers

    /// `Tue, 01 Dec 2026 16:33:07 +0000`, in UTC (civil date from the day number: no calendar or time zone object).
    static func rfc5322Date(_ date: Date) -> String {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let (dayNumber, secondOfDay) = seconds.quotientAndRemainder(dividingBy: 86_400)
        let days = secondOfDay < 0 ? dayNumber - 1 : dayNumber
        let second = secondOfDay < 0 ? secondOfDay + 86_400 : secondOfDay
        // Howard Hinnant's days_from_civil, inverted: day 0 is 1970-01-01 (a Thursday).
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = Int(((days % 7) + 11) % 7)  // 0 = Sunday
        let weekdays = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(weekdays[weekday]), \(two(day)) \(months[Int(month) - 1]) \(year) "
            + "\(two(second / 3600)):\(two(second / 60 % 60)):\(two(second % 60)) +0000"
    }

    /// Header text on one line: line breaks and other control characters become spaces, runs of spaces one space.
    static func singleLine(_ text: String) -> String {
        let spaced = String(text.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : Character($0) })
        return spaced.split(separator: " ").joined(separator: " ")
    }

    /// The words of unstructured text (a subject): as they are if ASCII, else encoded-words; the first fits in `columns`.
    static func unstructured(_ text: String, columns: Int) -> [String] {
        text.utf8.allSatisfy { $0 < 0x80 } ? text.split(separator: " ").map(String.init) : encodedWords(text, columns: columns)
    }

    /// A display name: a quoted string if ASCII, else encoded-words.
    static func phrase(_ text: String, columns: Int) -> [String] {
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else {
            return encodedWords(text, columns: columns)
        }
        return ["\"" + text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""]
    }

    /// `=?UTF-8?B?...?=` words (RFC 2047), each at most 75 characters, the first at most `columns`; characters are never
    /// split between words.
    static func encodedWords(_ text: String, columns: Int) -> [String] {
        // A word of n bytes is 12 + 4 * ceil(n / 3) characters long.
        func capacity(_ columns: Int) -> Int { max(3, (min(columns, 75) - 12) / 4 * 3) }
        var words: [String] = []
        var chunk: [UInt8] = []
        var limit = capacity(columns)
        func flush() {
            words.append("=?UTF-8?B?" + Data(chunk).base64EncodedString() + "?=")
            chunk = []
            limit = capacity(75)
        }
        for character in text {
            let bytes = Array(String(character).utf8)
            if !chunk.isEmpty && chunk.count + bytes.count > limit {
                flush()
            }
            chunk += bytes
        }
        if !chunk.isEmpty {
            flush()
        }
        return words
    }

    /// `Name: word word`, folded before a word when a line would exceed 76 columns.
    static func fold(_ name: String, _ words: [String]) -> String {
        var lines = [name + ":"]
        for (index, word) in words.enumerated() {
            if index > 0 && lines[lines.count - 1].count + 1 + word.count > 76 {
                lines.append("")
            }
            lines[lines.count - 1] += " " + word
        }
        return lines.joined(separator: "\r\n")
    }

    // MARK: Body

    /// The body's lines: line ends normalised, each line wrapped at 78 columns, trailing spaces removed.
    static func bodyLines(_ body: String) -> [String] {
        let normalised =
            body.utf8.contains(0x0D)
            ? body.replacingOccurrences(of: "\r\n", with: "\n").replacingOccurrences(of: "\r", with: "\n") : body
        var lines = normalised.split(separator: "\n", omittingEmptySubsequences: false)
        if lines.last?.isEmpty == true {
            lines.removeLast()
        }
        return lines.flatMap { wrap($0, width: 78) }
    }

    /// Breaks a line at spaces so that each piece is at most `width` characters; a longer word stays whole.
    static func wrap(_ line: Substring, width: Int) -> [String] {
        // A line of at most `width` bytes has at most `width` characters: most lines never count characters.
        guard line.utf8.count > width && line.count > width else {
            return [trimmed(line)]
        }
        var pieces: [String] = []
        var current: String?
        var currentCount = 0
        for word in line.split(separator: " ", omittingEmptySubsequences: false) {
            let wordCount = word.count
            if let text = current, currentCount + 1 + wordCount <= width {
                current = text + " " + word
                currentCount += 1 + wordCount
            } else {
                current.map { pieces.append(trimmed($0[...])) }
                current = String(word)
                currentCount = wordCount
            }
        }
        current.map { pieces.append(trimmed($0[...])) }
        return pieces
    }

    /// The text without its trailing spaces and tabs.
    static func trimmed(_ text: Substring) -> String {
        var end = text.utf8.endIndex
        while end > text.utf8.startIndex {
            let before = text.utf8.index(before: end)
            let byte = text.utf8[before]
            guard byte == 0x20 || byte == 0x09 else { break }
            end = before
        }
        return String(decoding: text.utf8[..<end], as: UTF8.self)
    }

    /// One line as quoted-printable (RFC 2045): soft line breaks keep every line at most 76 characters.
    static func quotedPrintable(_ line: String) -> [String] {
        let hex = Array("0123456789ABCDEF")
        let bytes = Array(line.utf8)
        var lines: [String] = []
        var current = ""
        for (index, byte) in bytes.enumerated() {
            let isWhitespace = byte == 0x20 || byte == 0x09
            let literal = (byte >= 33 && byte <= 126 && byte != 0x3D) || (isWhitespace && index < bytes.count - 1)
            let token = literal ? String(UnicodeScalar(byte)) : "=" + String(hex[Int(byte >> 4)]) + String(hex[Int(byte & 0xF)])
            if current.count + token.count > 75 {
                lines.append(current + "=")
                current = ""
            }
            current += token
        }
        lines.append(current)
        return lines
    }
}
