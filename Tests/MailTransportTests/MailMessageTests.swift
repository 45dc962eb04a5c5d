import Foundation
import MailTransport
import PropertyBased
import Testing

@Suite("Rendering")
struct MailMessageTests {
    static let date = Date(timeIntervalSince1970: 1_796_142_787)  // Tue, 01 Dec 2026 16:33:07 UTC

    static func message(subject: String = "Hello", body: String = "Hi.\n", fromName: String? = "SPOR Access") -> MailMessage {
        MailMessage(
            from: "noreply@spor.example", fromName: fromName, to: "anna@example.org", subject: subject, body: body, date: date,
            messageID: "outbox-42.1796142787@spor.example")
    }

    @Test func asciiMessageHasTheHeadersAndCRLF() throws {
        let text = Self.message().rendered()
        #expect(
            text == """
                Date: Tue, 01 Dec 2026 16:33:07 +0000\r
                From: "SPOR Access" <noreply@spor.example>\r
                To: anna@example.org\r
                Subject: Hello\r
                Message-ID: <outbox-42.1796142787@spor.example>\r
                Auto-Submitted: auto-generated\r
                MIME-Version: 1.0\r
                Content-Type: text/plain; charset=utf-8\r
                Content-Transfer-Encoding: 7bit\r
                \r
                Hi.\r

                """)
        expectCRLFOnly(text)
        // ASCII is 7bit whatever the transport offers.
        #expect(Self.message().rendered(eightBit: false) == text)
    }

    @Test func fromWithoutNameAndWithQuotesInName() {
        #expect(header("From", in: Self.message(fromName: nil).rendered()) == "noreply@spor.example")
        #expect(header("From", in: Self.message(fromName: #"The "Desk" \ EMA"#).rendered()) == #""The \"Desk\" \\ EMA" <noreply@spor.example>"#)
    }

    @Test func nonASCIIFromNameIsEncoded() throws {
        let value = try #require(header("From", in: Self.message(fromName: "Agence européenne – Service").rendered()))
        #expect(value.hasSuffix(" <noreply@spor.example>"))
        #expect(decodeEncodedWords(String(value.dropLast(" <noreply@spor.example>".count))) == "Agence européenne – Service")
    }

    @Test(arguments: [
        "SPOR – access request approved",
        "Zugang für „Bundesinstitut für Arzneimittel und Medizinprodukte“ – Bestätigung erforderlich – bitte prüfen 😀",
        String(repeating: "é", count: 200),
        String(repeating: "–x", count: 90) + "👩‍👩‍👧",
    ])
    func nonASCIISubjectIsEncodedWordsThatRoundTrip(subject: String) throws {
        let text = Self.message(subject: subject).rendered()
        expectFoldedUnder78(text)
        let value = try #require(header("Subject", in: text))
        let words = value.split(separator: " ")
        for word in words {
            #expect(word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?=") && word.count <= 75, "\(word)")
            let payload = word.dropFirst("=?UTF-8?B?".count).dropLast(2)
            let bytes = try #require(Data(base64Encoded: String(payload)))
            #expect(String(data: bytes, encoding: .utf8) != nil, "an encoded-word splits a UTF-8 character")
        }
        #expect(decodeEncodedWords(value) == subject)
    }

    @Test func longASCIISubjectIsFoldedAtSpaces() throws {
        let subject = (1...30).map { "word\($0)" }.joined(separator: " ")
        let text = Self.message(subject: subject).rendered()
        expectFoldedUnder78(text)
        #expect(text.contains("Subject: word1 word2"))
        #expect(header("Subject", in: text) == subject)
    }

    @Test func headerTextCannotInjectHeaders() {
        let text = Self.message(subject: "Hi\r\nBcc: evil@example.org").rendered()
        #expect(header("Subject", in: text) == "Hi Bcc: evil@example.org")
        #expect(!text.contains("\r\nBcc:"))
    }

    @Test func bodyIsWrappedAt78WithURLsKeptWhole() throws {
        let url = "https://spor.example/access/requests/5f0c8e7a-2b1d-4c3e-9f8a-7b6c5d4e3f2a/approve?token=" + String(repeating: "x", count: 40)
        let paragraph = (1...40).map { "lorem\($0)" }.joined(separator: " ")
        let body = "Dear Anna,   \n\n\(paragraph)\nOpen \(url) to approve.\r\nOld Mac line\rEnd\n"
        let text = Self.message(body: body).rendered()
        expectCRLFOnly(text)
        #expect(text.hasSuffix("End\r\n"))
        let bodyStart = try #require(text.range(of: "\r\n\r\n")).upperBound
        let lines = text[bodyStart...].components(separatedBy: "\r\n").dropLast()
        #expect(lines.first == "Dear Anna,")
        #expect(lines.contains(url))
        #expect(lines.contains("Open"))
        #expect(lines.contains("to approve."))
        #expect(lines.contains("Old Mac line"))
        for line in lines where line != url {
            #expect(line.count <= 78, "\(line)")
            #expect(!line.hasSuffix(" "))
        }
        // Wrapping only breaks at spaces: joining the wrapped paragraph gives it back.
        let wrapped = lines.filter { $0.hasPrefix("lorem") }
        #expect(wrapped.count > 1)
        #expect(wrapped.joined(separator: " ") == paragraph)
    }

    @Test func nonASCIIBodyIs8BitOrQuotedPrintable() throws {
        let body = "Grüße aus Amsterdam – bis bald.\n" + String(repeating: "äöü=", count: 30) + "\n.leading dot\n"
        let eightBit = Self.message(body: body).rendered(eightBit: true)
        #expect(header("Content-Transfer-Encoding", in: eightBit) == "8bit")
        #expect(eightBit.contains("Grüße aus Amsterdam – bis bald.\r\n"))

        let quoted = Self.message(body: body).rendered(eightBit: false)
        #expect(header("Content-Transfer-Encoding", in: quoted) == "quoted-printable")
        #expect(quoted.utf8.allSatisfy { $0 < 0x80 })
        expectCRLFOnly(quoted)
        let encodedBody = try #require(quoted.components(separatedBy: "\r\n\r\n").last)
        #expect(encodedBody.hasPrefix("Gr=C3=BC=C3=9Fe aus Amsterdam =E2=80=93 bis bald.\r\n"))
        for line in encodedBody.components(separatedBy: "\r\n") {
            #expect(line.count <= 76, "\(line)")
        }
        let decodedBody = try #require(eightBit.components(separatedBy: "\r\n\r\n").last)
        #expect(decodeQuotedPrintable(encodedBody) == decodedBody)
    }

    @Test func dateIsRFC5322InUTC() {
        let text = MailMessage(
            from: "a@example.org", to: "b@example.org", subject: "x", body: "", date: Date(timeIntervalSince1970: 0), messageID: "m@x"
        ).rendered()
        #expect(header("Date", in: text) == "Thu, 01 Jan 1970 00:00:00 +0000")
        #expect(text.hasSuffix("Content-Transfer-Encoding: 7bit\r\n\r\n"))
    }

    /// The date is computed from the day number; Foundation's formatter is the reference, over instants from 1901 to
    /// 2096 (leap years, century years, before 1970, fractions of a second). Fixed seeds and a fresh one; replay one
    /// with SPOR_DATE_SEED.
    @Test func dateAgreesWithFoundationsFormatter() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let fixed = ["aEMuQWgsd64yLM1SRcBg3z5Yg11klpX2d5rAgb5TWMU=", "tL9ziFPTrszxDBPXVCzW9/64YZchlgdmIbQ+KlV04ys="]
        let seeds = ProcessInfo.processInfo.environment["SPOR_DATE_SEED"].map { [$0] } ?? fixed + [Xoshiro().currentSeed]
        let edges: [Double] = [0, -1, 86_399.999, 951_782_400, 951_868_800, 4_107_542_400, -2_208_988_800, 1_796_142_787.5]
        for seed in seeds {
            print("dateAgreesWithFoundationsFormatter seed \(seed) (replay: SPOR_DATE_SEED=\(seed))")
            guard var generator = Xoshiro(seed: seed) else {
                Issue.record("not a PropertyBased seed: \(seed)")
                continue
            }
            let instants = edges + (0..<2_000).map { _ in Double(Int64.random(in: -2_100_000_000...4_100_000_000, using: &generator)) + 0.25 }
            for instant in instants {
                let date = Date(timeIntervalSince1970: instant)
                let text = MailMessage(from: "a@example.org", to: "b@example.org", subject: "x", body: "", date: date, messageID: "m@x").rendered()
                #expect(header("Date", in: text) == formatter.string(from: date), "instant \(instant), seed \(seed)")
            }
        }
    }

    @Test func longLinesKeepCharacterColumnsAndLoseTrailingSpaces() throws {
        let word = String(repeating: "é", count: 30)  // 30 characters, 60 bytes: fits the width by characters
        let text = Self.message(body: "\(word) \(word)   \nend\t \n").rendered()
        let body = try #require(text.components(separatedBy: "\r\n\r\n").last)
        #expect(body == "\(word) \(word)\r\nend\r\n")
        let long = Self.message(body: "\(word) \(word) \(word)\n").rendered()
        #expect(long.components(separatedBy: "\r\n\r\n").last == "\(word) \(word)\r\n\(word)\r\n")
    }
}

// MARK: Helpers

/// The unfolded value of the first header field `name` of a rendered message.
func header(_ name: String, in message: String) -> String? {
    let headers = message.components(separatedBy: "\r\n\r\n")[0].replacingOccurrences(of: "\r\n ", with: " ")
    for line in headers.components(separatedBy: "\r\n") where line.lowercased().hasPrefix(name.lowercased() + ":") {
        return String(line.dropFirst(name.count + 1).drop(while: { $0 == " " }))
    }
    return nil
}

/// Decodes a run of `=?UTF-8?B?...?=` words (whitespace between them is not part of the text, RFC 2047 §6.2).
func decodeEncodedWords(_ value: String) -> String? {
    var bytes: [UInt8] = []
    for word in value.split(separator: " ") {
        guard word.hasPrefix("=?UTF-8?B?"), word.hasSuffix("?="),
            let data = Data(base64Encoded: String(word.dropFirst("=?UTF-8?B?".count).dropLast(2)))
        else {
            return nil
        }
        bytes += data
    }
    return String(data: Data(bytes), encoding: .utf8)
}

/// Decodes a quoted-printable body with CRLF line ends.
func decodeQuotedPrintable(_ text: String) -> String {
    var bytes: [UInt8] = []
    let input = Array(text.utf8)
    var index = 0
    while index < input.count {
        if input[index] == UInt8(ascii: "="), index + 2 < input.count {
            if input[index + 1] != UInt8(ascii: "\r") {  // not a soft line break
                bytes.append(UInt8(String(decoding: input[(index + 1)...(index + 2)], as: UTF8.self), radix: 16)!)
            }
            index += 3
        } else {
            bytes.append(input[index])
            index += 1
        }
    }
    return String(decoding: bytes, as: UTF8.self)
}

func expectCRLFOnly(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let bytes = Array(text.utf8)
    for (index, byte) in bytes.enumerated() {
        if byte == UInt8(ascii: "\n") {
            #expect(index > 0 && bytes[index - 1] == UInt8(ascii: "\r"), "bare LF at \(index)", sourceLocation: sourceLocation)
        } else if byte == UInt8(ascii: "\r") {
            #expect(index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "\n"), "bare CR at \(index)", sourceLocation: sourceLocation)
        }
    }
}

func expectFoldedUnder78(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) {
    for line in text.components(separatedBy: "\r\n\r\n")[0].components(separatedBy: "\r\n") {
        #expect(line.count <= 78, "header line too long: \(line)", sourceLocation: sourceLocation)
        #expect(!line.trimmingCharacters(in: .whitespaces).isEmpty, "whitespace-only header line", sourceLocation: sourceLocation)
    }
}
