import HearthSystem
#if canImport(Glibc)
import Glibc
#endif

/// Typed readers for raw values; each error names the key, the value and where it came from.
package enum ConfigValues {
    static func fail(_ key: String, _ raw: RawValue, _ why: String, secret: Bool = false) -> Failure {
        Failure.configuration(key: key, value: secret ? nil : raw.value, "\(why) (from \(raw.origin))")
    }

    static func int(_ key: String, _ raw: RawValue, _ range: ClosedRange<Int>, _ what: String) throws(Failure) -> Int {
        guard let value = Int(raw.value), range.contains(value) else {
            throw fail(key, raw, "not \(what) (a whole number from \(range.lowerBound) to \(range.upperBound))")
        }
        return value
    }

    /// `auto` (nil) or a whole number in `range`.
    static func intOrAuto(_ key: String, _ raw: RawValue, _ range: ClosedRange<Int>, _ what: String) throws(Failure)
        -> Int?
    {
        if raw.value.lowercased() == "auto" { return nil }
        guard let value = Int(raw.value), range.contains(value) else {
            throw fail(key, raw, "not auto or \(what) (a whole number from \(range.lowerBound) to \(range.upperBound))")
        }
        return value
    }

    static func bool(_ key: String, _ raw: RawValue) throws(Failure) -> Bool {
        switch raw.value.lowercased() {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw fail(key, raw, "not a boolean (true or false)")
        }
    }

    /// `["a", "b"]` (the seed's form), `['a']`, `[]`, or `a,b`. Elements are trimmed; an empty
    /// element is an error.
    static func list(_ key: String, _ raw: RawValue) throws(Failure) -> [String] {
        let text = raw.value.trimmingCharacters(in: " \t")
        if text.isEmpty { return [] }
        guard text.hasPrefix("[") else {
            if text.hasSuffix("]") || text.contains("\"") || text.contains("'") {
                throw fail(key, raw, "malformed array: write [\"a\", \"b\"] or a,b")
            }
            let parts = text.split(separator: ",", omittingEmptySubsequences: false).map {
                String($0).trimmingCharacters(in: " \t")
            }
            if parts.contains(where: \.isEmpty) { throw fail(key, raw, "empty element in list") }
            return parts
        }
        guard text.hasSuffix("]") else { throw fail(key, raw, "malformed array: missing closing ']'") }
        let body = Array(text.dropFirst().dropLast())
        var items: [String] = []
        var index = 0
        func skipSpaces() {
            while index < body.count && (body[index] == " " || body[index] == "\t") { index += 1 }
        }
        skipSpaces()
        if index == body.count { return [] }
        while true {
            skipSpaces()
            guard index < body.count else { throw fail(key, raw, "malformed array: element missing after ','") }
            var item = ""
            let quote = body[index]
            if quote == "\"" || quote == "'" {
                index += 1
                var closed = false
                while index < body.count {
                    if body[index] == quote {
                        closed = true
                        index += 1
                        break
                    }
                    if body[index] == "\\" && quote == "\"" && index + 1 < body.count {
                        index += 1
                    }
                    item.append(body[index])
                    index += 1
                }
                guard closed else { throw fail(key, raw, "malformed array: unterminated \(quote) quote") }
            } else {
                while index < body.count && body[index] != "," && body[index] != " " && body[index] != "\t" {
                    if body[index] == "\"" || body[index] == "'" || body[index] == "[" || body[index] == "]" {
                        throw fail(key, raw, "malformed array: unexpected \(body[index])")
                    }
                    item.append(body[index])
                    index += 1
                }
            }
            if item.isEmpty { throw fail(key, raw, "empty element in array") }
            items.append(item)
            skipSpaces()
            if index == body.count { break }
            guard body[index] == "," else {
                throw fail(key, raw, "malformed array: expected ',' between elements")
            }
            index += 1
        }
        return items
    }

    // MARK: names

    /// A plain SQL identifier that never needs quoting: a lower-case letter, then [a-z0-9_].
    static func isPlainIdentifier(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first) else { return false }
        return name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || $0.isASCIIDigit || $0 == "_" }
    }

    /// A Debian system account name (the default NAME_REGEX of adduser/useradd), at most 32.
    static func isSystemUserName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, ("a"..."z").contains(first) || first == "_",
            name.utf8.count <= 32
        else { return false }
        return name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || $0.isASCIIDigit || $0 == "_" || $0 == "-"
        }
    }

    package static let maxIdentifierBytes = 63

    static func identifier(_ key: String, _ raw: RawValue) throws(Failure) -> String {
        let name = raw.value
        guard isPlainIdentifier(name) else {
            throw fail(key, raw, "not a plain name: a lower-case letter, then lower-case letters, digits or _")
        }
        guard name.utf8.count <= maxIdentifierBytes else {
            throw fail(key, raw, "longer than PostgreSQL's \(maxIdentifierBytes)-byte limit for names")
        }
        return name
    }

    // MARK: addresses

    static func isIPAddress(_ text: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, text, &v4) == 1 || inet_pton(AF_INET6, text, &v6) == 1
    }

    static func isCIDR(_ text: String) -> Bool {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let prefix = Int(parts[1]) else { return false }
        let address = String(parts[0])
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, address, &v4) == 1 { return (0...32).contains(prefix) }
        if inet_pton(AF_INET6, address, &v6) == 1 { return (0...128).contains(prefix) }
        return false
    }

    static func absolutePath(_ key: String, _ raw: RawValue) throws(Failure) -> String {
        let path = raw.value
        guard path.hasPrefix("/"), !path.hasSuffix("/"),
            path.unicodeScalars.allSatisfy({
                $0.isASCIILetter || $0.isASCIIDigit || $0 == "/" || $0 == "_" || $0 == "-" || $0 == "."
            }),
            !path.split(separator: "/").contains("..")
        else {
            throw fail(key, raw, "not an absolute path of letters, digits, '/', '_', '-' and '.'")
        }
        return path
    }

    /// PG_ANALYZE_FRACTION: `off` (nil) or a fraction of the rows from 0.001 to 1.
    static func analyzeFraction(_ raw: RawValue) throws(Failure) -> Double? {
        if raw.value.lowercased() == "off" { return nil }
        guard let value = Double(raw.value), value.isFinite, value >= 0.001, value <= 1 else {
            throw ConfigValues.fail("PG_ANALYZE_FRACTION", raw, "not off or a fraction of the rows from 0.001 to 1")
        }
        return value
    }
}
