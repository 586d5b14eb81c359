import HearthSystem
/// A text[] literal for a query parameter: each element double-quoted, `"` and `\` escaped.
package enum PGArray {
    package static func literal(_ values: [String]) -> String {
        "{" + values.map { value in
            "\"" + value.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"") + "\""
        }.joined(separator: ",") + "}"
    }
}

extension PGArray {
    /// The elements of a one-dimensional text[] as PostgreSQL prints it: `{a,"b c",""}`.
    static func elements(_ text: String) -> [String] {
        var body = Substring(text)
        guard body.first == "{", body.last == "}" else { return [] }
        body = body.dropFirst().dropLast()
        var out: [String] = []
        var current = ""
        var quoted = false
        var escaped = false
        var any = false
        for c in body {
            any = true
            if escaped {
                current.append(c)
                escaped = false
            } else if quoted && c == "\\" {
                escaped = true
            } else if c == "\"" {
                quoted.toggle()
            } else if c == "," && !quoted {
                out.append(current)
                current = ""
            } else {
                current.append(c)
            }
        }
        if any { out.append(current) }
        return out
    }
}
