import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// One statement of a revision file, with the line it starts on.
public struct SQLStatement: Sendable, Equatable {
    public let text: String
    public let line: Int

    /// The first words, upper-cased ("CREATE EXTENSION").
    public func startsWith(_ words: String...) -> Bool {
        let mine = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" || $0 == "(" })
        guard mine.count >= words.count else { return false }
        return zip(mine, words).allSatisfy { $0.0.uppercased() == $0.1 }
    }

    /// `CREATE EXTENSION ...`: where the extension is missing, run by a superuser before the
    /// revision's transaction (vector is not a trusted extension).
    public var isCreateExtension: Bool { startsWith("CREATE", "EXTENSION") }

    /// The extension a `CREATE EXTENSION [IF NOT EXISTS] name ...` makes (unquoted names folded
    /// to lower case, as the server does); nil for any other statement.
    public var extensionName: String? {
        guard isCreateExtension else { return nil }
        var words = text.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }).dropFirst(2)
        if words.count >= 3, words.prefix(3).map({ $0.uppercased() }) == ["IF", "NOT", "EXISTS"] {
            words = words.dropFirst(3)
        }
        guard var name = words.first.map(String.init) else { return nil }
        if name.hasSuffix(";") { name.removeLast() }
        if name.hasPrefix("\""), name.hasSuffix("\""), name.count >= 2 {
            return String(name.dropFirst().dropLast()).replacing("\"\"", with: "\"")
        }
        return name.lowercased()
    }

    /// Transaction control, which a revision may not hold: the runner owns the transaction.
    public var isTransactionControl: Bool {
        ["BEGIN", "COMMIT", "ROLLBACK", "ABORT", "END"].contains { startsWith($0) } || startsWith("START", "TRANSACTION")
    }

    /// The statement on one line, cut to `limit` characters, for error messages.
    public func brief(_ limit: Int = 240) -> String {
        let flat = text.split(whereSeparator: { $0 == "\n" || $0 == "\r" || $0 == "\t" || $0 == " " }).joined(separator: " ")
        return flat.count <= limit ? flat : String(flat.prefix(limit)) + " ..."
    }
}

/// Splits SQL text into statements at the semicolons that end them, skipping semicolons in
/// 'strings' (E'' escapes included), "identifiers", $tag$ dollar quotes $tag$, -- comments
/// and nested /* comments */. Comments before a statement are not part of it; a part holding
/// only comments or blanks is no statement. (SQL-standard function bodies, BEGIN ATOMIC ...
/// END, are not supported: write function bodies dollar-quoted.)
public enum SQLScript {
    public static func split(_ sql: String) -> [SQLStatement] {
        let bytes = Array(sql.utf8)
        var statements: [SQLStatement] = []
        var i = 0
        var line = 1
        var start: Int? = nil  // first significant byte of the current statement
        var startLine = 0
        let n = bytes.count

        func isIdent(_ b: UInt8) -> Bool {
            (b >= 0x61 && b <= 0x7a) || (b >= 0x41 && b <= 0x5a) || (b >= 0x30 && b <= 0x39) || b == 0x5f || b >= 0x80
        }
        func mark() {
            if start == nil {
                start = i
                startLine = line
            }
        }
        func finish(_ end: Int) {
            if let s = start {
                let text = String(decoding: bytes[s..<end], as: UTF8.self)
                var trimmed = Substring(text)
                while let l = trimmed.last, l == " " || l == "\n" || l == "\t" || l == "\r" { trimmed = trimmed.dropLast() }
                if !trimmed.isEmpty { statements.append(SQLStatement(text: String(trimmed), line: startLine)) }
            }
            start = nil
        }

        while i < n {
            let b = bytes[i]
            switch b {
            case 0x0a:  // \n
                line += 1
                i += 1
            case 0x20, 0x09, 0x0d:
                i += 1
            case 0x2d where i + 1 < n && bytes[i + 1] == 0x2d:  // -- comment
                while i < n && bytes[i] != 0x0a { i += 1 }
            case 0x2f where i + 1 < n && bytes[i + 1] == 0x2a:  // /* comment */, nesting
                var depth = 0
                while i < n {
                    if bytes[i] == 0x2f && i + 1 < n && bytes[i + 1] == 0x2a {
                        depth += 1
                        i += 2
                    } else if bytes[i] == 0x2a && i + 1 < n && bytes[i + 1] == 0x2f {
                        depth -= 1
                        i += 2
                        if depth == 0 { break }
                    } else {
                        if bytes[i] == 0x0a { line += 1 }
                        i += 1
                    }
                }
            case 0x3b:  // ;
                finish(i)
                i += 1
            case 0x27:  // 'string', E'string'
                mark()
                let escapes = i > 0 && (bytes[i - 1] == 0x45 || bytes[i - 1] == 0x65) && (i < 2 || !isIdent(bytes[i - 2]))
                i += 1
                while i < n {
                    let c = bytes[i]
                    if c == 0x0a { line += 1 }
                    if escapes && c == 0x5c {
                        i += 2
                        continue
                    }
                    if c == 0x27 {
                        if i + 1 < n && bytes[i + 1] == 0x27 {
                            i += 2
                            continue
                        }
                        i += 1
                        break
                    }
                    i += 1
                }
            case 0x22:  // "identifier"
                mark()
                i += 1
                while i < n {
                    if bytes[i] == 0x0a { line += 1 }
                    if bytes[i] == 0x22 {
                        if i + 1 < n && bytes[i + 1] == 0x22 {
                            i += 2
                            continue
                        }
                        i += 1
                        break
                    }
                    i += 1
                }
            case 0x24 where !(i > 0 && isIdent(bytes[i - 1])):  // $tag$ ... $tag$ (not $1, not a$b)
                mark()
                var j = i + 1
                if j < n && !(bytes[j] >= 0x30 && bytes[j] <= 0x39) {
                    while j < n && isIdent(bytes[j]) { j += 1 }
                }
                guard j < n && bytes[j] == 0x24 else {
                    i += 1
                    break
                }
                let tag = Array(bytes[i...j])
                i = j + 1
                while i < n {
                    if bytes[i] == 0x24 && i + tag.count <= n && Array(bytes[i..<(i + tag.count)]) == tag {
                        i += tag.count
                        break
                    }
                    if bytes[i] == 0x0a { line += 1 }
                    i += 1
                }
            default:
                mark()
                i += 1
            }
        }
        finish(n)
        return statements
    }
}
