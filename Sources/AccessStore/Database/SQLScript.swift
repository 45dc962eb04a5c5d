/// Splits a SQL script into statements at top-level semicolons.
///
/// PostgreSQL's extended protocol (the one PostgresNIO speaks) runs one statement per query, so a migration file
/// is run statement by statement. Quotes (`'…'`, `"…"`, `E'…'`), dollar quotes (`$$…$$`, `$tag$…$tag$`),
/// line comments and nested block comments are respected.
public enum SQLScript {
    public static func statements(in script: String) -> [String] {
        let chars = Array(script.unicodeScalars)
        var statements: [String] = []
        var current = String.UnicodeScalarView()
        var hasContent = false
        var i = 0

        func flush() {
            let text = String(current).trimmingWhitespace()
            if hasContent && !text.isEmpty { statements.append(text) }
            current = String.UnicodeScalarView()
            hasContent = false
        }
        func append(_ range: Range<Int>) {
            current.append(contentsOf: chars[range])
        }

        while i < chars.count {
            let c = chars[i]
            let next: Unicode.Scalar? = i + 1 < chars.count ? chars[i + 1] : nil
            switch c {
            case "-" where next == "-":
                var j = i
                while j < chars.count && chars[j] != "\n" { j += 1 }
                append(i..<j)
                i = j
            case "/" where next == "*":
                var depth = 0
                var j = i
                repeat {
                    if chars[j] == "/" && j + 1 < chars.count && chars[j + 1] == "*" {
                        depth += 1
                        j += 2
                    } else if chars[j] == "*" && j + 1 < chars.count && chars[j + 1] == "/" {
                        depth -= 1
                        j += 2
                    } else {
                        j += 1
                    }
                } while depth > 0 && j < chars.count
                append(i..<j)
                i = j
            case "'", "\"":
                var j = i + 1
                let escapes = c == "'" && i > 0 && (chars[i - 1] == "E" || chars[i - 1] == "e")
                while j < chars.count {
                    if escapes && chars[j] == "\\" {
                        j += 2
                        continue
                    }
                    if chars[j] == c {
                        if j + 1 < chars.count && chars[j + 1] == c {
                            j += 2
                            continue
                        }  // doubled quote
                        break
                    }
                    j += 1
                }
                j = min(j + 1, chars.count)
                append(i..<j)
                hasContent = true
                i = j
            case "$":
                // A dollar-quote tag: $$ or $identifier$ (not a positional parameter like $1).
                var j = i + 1
                while j < chars.count, chars[j] == "_" || chars[j].properties.isAlphabetic || (j > i + 1 && chars[j].properties.numericType != nil) {
                    j += 1
                }
                if j < chars.count && chars[j] == "$" {
                    let tag = Array(chars[i...j])
                    var k = j + 1
                    var end = chars.count
                    while k + tag.count <= chars.count {
                        if Array(chars[k..<(k + tag.count)]) == tag {
                            end = k + tag.count
                            break
                        }
                        k += 1
                    }
                    append(i..<end)
                    hasContent = true
                    i = end
                } else {
                    append(i..<(i + 1))
                    hasContent = true
                    i += 1
                }
            case ";":
                flush()
                i += 1
            default:
                current.append(c)
                if !c.properties.isWhitespace { hasContent = true }
                i += 1
            }
        }
        flush()
        return statements
    }
}

extension String {
    func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let start = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let end = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[start...end])
    }
}
