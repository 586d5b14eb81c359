import HearthSystem
#if canImport(Glibc)
import Glibc
#endif

/// A parser for the env files the seed writes (section 3 of its description):
/// `KEY=value`, optional `export `, `"double"` and `'single'` quotes, `# comments` on their own
/// line or after a value, and arrays written as `["a", "b"]`.
///
/// The seed's template line `${AI_NAME}_PASSWORD=${AI_NAME}` states its password scheme (each
/// AI's password is its name); it sets no key, and `seedSchemeLine` records where it was.
public struct EnvFile: Sendable {
    public struct Entry: Sendable, Equatable {
        public let key: String
        public let value: String
        public let line: Int
    }

    public let path: String
    public let entries: [Entry]
    /// The line of the seed's template `${AI_NAME}_PASSWORD=${AI_NAME}`, when the file has it.
    public let seedSchemeLine: Int?

    /// The seed's per-AI template key and the only value it may have.
    public static let templateKey = "${AI_NAME}_PASSWORD"
    public static let templateValue = "${AI_NAME}"

    public init(path: String, text: String) throws(Failure) {
        self.path = path
        var entries: [Entry] = []
        var seedSchemeLine: Int?
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            guard let entry = try EnvFile.parseLine(Substring(rawLine), path: path, line: lineNumber) else { continue }
            if entry.key == EnvFile.templateKey {
                seedSchemeLine = lineNumber
            } else {
                entries.append(entry)
            }
        }
        self.entries = entries
        self.seedSchemeLine = seedSchemeLine
    }

    /// Reads and parses a file; a missing file is an error naming it.
    public static func load(path: String) throws(Failure) -> EnvFile {
        try EnvFile(path: path, text: try read(path).text)
    }

    /// A file's text and its owner and mode, read from one descriptor (what is checked is what
    /// was read).
    static func read(_ path: String) throws(Failure) -> (text: String, status: FileSystem.Status) {
        do {
            let (bytes, status) = try FileSystem.readFile(path)
            return (String(decoding: bytes, as: UTF8.self), status)
        } catch {
            throw Failure.configuration(key: nil, "cannot read configuration file \(error)")
        }
    }

    /// True for a key whose value is a secret (a password): its value is never shown.
    static func isSecretKey(_ key: String) -> Bool {
        ConfigKeys.byName[key]?.secret == true || key.uppercased().hasSuffix(ConfigKeys.passwordSuffix)
    }

    static func parseLine(_ raw: Substring, path: String, line: Int) throws(Failure) -> Entry? {
        var text = raw
        if text.last == "\r" { text = text.dropLast() }
        text = text.drop(while: { $0 == " " || $0 == "\t" })
        if text.isEmpty || text.first == "#" { return nil }
        let here = "\(path):\(line)"
        if text.hasPrefix("export ") {
            text = text.dropFirst("export ".count).drop(while: { $0 == " " || $0 == "\t" })
        }
        guard let eq = text.firstIndex(of: "=") else {
            // The line is not shown: a password pasted on a line of its own must not reach the console.
            throw Failure.configuration(key: nil, "\(here): expected KEY=VALUE, found a line without '=' (not shown)")
        }
        let key = String(text[..<eq]).trimmingCharacters(in: " \t")
        if key != templateKey && !isKeyName(key) {
            guard showableName(key) else {
                throw Failure.configuration(key: nil, "\(here): not a valid key name (not shown: it may be a secret)")
            }
            throw Failure.configuration(key: key, "\(here): not a valid key name")
        }
        let value = try parseValue(text[text.index(after: eq)...], key: key, here: here)
        if key == templateKey {
            guard value == templateValue else {
                throw Failure.configuration(
                    key: key,
                    "\(here): only the seed's scheme \(templateKey)=\(templateValue) is understood here; "
                        + "set a password per AI instead, e.g. LOGOS_PASSWORD=...")
            }
        }
        return Entry(key: key, value: value, line: line)
    }

    /// Whether the name of a line that is no key of ours may be shown in an error: it reads as
    /// a name, its letters of one case (a typo's `postgres_port`, `POSTGRS_PORT`), at most 64
    /// bytes. A mixed-case run of letters may be a pasted secret (`q7Rk2mZpW9xY==`, its `=`
    /// padding read as an assignment): not shown.
    package static func showableName(_ key: String) -> Bool {
        let letters = key.unicodeScalars.filter(\.isASCIILetter)
        let oneCase = letters.allSatisfy { ("a"..."z").contains($0) } || letters.allSatisfy { ("A"..."Z").contains($0) }
        return oneCase && !key.isEmpty && key.utf8.count <= 64
    }

    static func isKeyName(_ key: String) -> Bool {
        guard let first = key.unicodeScalars.first, first == "_" || first.isASCIILetter else { return false }
        return key.unicodeScalars.allSatisfy { $0 == "_" || $0.isASCIILetter || $0.isASCIIDigit }
    }

    static func parseValue(_ input: Substring, key: String, here: String) throws(Failure) -> String {
        let text = input.drop(while: { $0 == " " || $0 == "\t" })
        guard let first = text.first else { return "" }
        var value = ""
        var rest: Substring
        switch first {
        case "\"", "'":
            var index = text.index(after: text.startIndex)
            var closed = false
            while index < text.endIndex {
                let c = text[index]
                if c == first {
                    closed = true
                    break
                }
                if first == "\"" && c == "\\" {
                    let next = text.index(after: index)
                    guard next < text.endIndex else { break }
                    switch text[next] {
                    case "n": value.append("\n")
                    case "t": value.append("\t")
                    default: value.append(text[next])
                    }
                    index = text.index(after: next)
                    continue
                }
                value.append(c)
                index = text.index(after: index)
            }
            guard closed else {
                throw Failure.configuration(key: key, "\(here): unterminated \(first) quote")
            }
            rest = text[text.index(after: index)...]
            if first == "\"" && key != templateKey && value.contains("${") {
                throw Failure.configuration(
                    key: key, "\(here): variable expansion (${...}) is not supported; use single quotes for a literal value")
            }
        case "[":
            // An array: up to the matching ']' outside quotes; element syntax is checked later.
            var index = text.startIndex
            var quote: Character? = nil
            var closed = false
            while index < text.endIndex {
                let c = text[index]
                if let q = quote {
                    if c == "\\" {
                        index = text.index(after: index)
                        if index == text.endIndex { break }
                    } else if c == q {
                        quote = nil
                    }
                } else if c == "\"" || c == "'" {
                    quote = c
                } else if c == "]" {
                    closed = true
                    break
                }
                index = text.index(after: index)
            }
            guard closed else {
                throw Failure.configuration(key: key, "\(here): array is missing its closing ']'")
            }
            value = String(text[...index])
            rest = text[text.index(after: index)...]
        default:
            // Unquoted: up to a '#' that follows white space, trailing white space trimmed.
            var end = text.endIndex
            var previous: Character = " "
            var index = text.startIndex
            while index < text.endIndex {
                if text[index] == "#" && (previous == " " || previous == "\t") {
                    end = index
                    break
                }
                previous = text[index]
                index = text.index(after: index)
            }
            value = String(text[..<end]).trimmingCharacters(in: " \t")
            rest = ""
            if key != templateKey && value.contains("${") {
                throw Failure.configuration(
                    key: key, "\(here): variable expansion (${...}) is not supported; use single quotes for a literal value")
            }
        }
        let trailing = rest.drop(while: { $0 == " " || $0 == "\t" })
        if !trailing.isEmpty && trailing.first != "#" {
            if isSecretKey(key) {
                throw Failure.configuration(key: key, "\(here): unexpected text after the quoted value (not shown: a secret)")
            }
            // (an assignment after the value may be a password's: `AI_NAMES="logos" LOGOS_PASSWORD=…`)
            if trailing.contains("=") {
                throw Failure.configuration(
                    key: key, "\(here): unexpected text after the value (not shown: it holds a '=', it may be a secret)")
            }
            throw Failure.configuration(key: key, "\(here): unexpected text after the value: '\(trailing)'")
        }
        return value
    }
}

