import HearthSystem
/// Rows decoded into Swift types, as postgres-nio's `rows.decode((Int, String).self)`: a query's
/// columns are read by type in order, not by position (`row[3] == "t"`), and a value of another
/// type, a NULL where the type has none, or a row of another width is an error naming the column,
/// never a default standing in for it.
///
///     for (name, superuser) in try db.query("SELECT rolname, rolsuper FROM ...").decode((String, Bool).self)
///     let count = try db.query("SELECT count(*) FROM ...").decodeScalar(Int.self)
public protocol PGDecodable {
    /// The value of a column in libpq's text format; nil is SQL NULL. `column` is for the error.
    static func decode(_ text: String?, column: Int) throws(Failure) -> Self
}

extension PGDecodable {
    static func mismatch(_ text: String?, column: Int, _ what: String) -> Failure {
        let shown = text.map { "'\(Bounded.text($0, 64))'" } ?? "NULL"
        return Failure.database(message: "column \(column + 1) of the result is \(shown), not \(what)", sqlState: nil)
    }
}

extension String: PGDecodable {
    public static func decode(_ text: String?, column: Int) throws(Failure) -> String {
        guard let text else { throw mismatch(nil, column: column, "text") }
        return text
    }
}

extension Bool: PGDecodable {
    /// PostgreSQL's boolean output: `t` or `f`.
    public static func decode(_ text: String?, column: Int) throws(Failure) -> Bool {
        switch text {
        case "t": return true
        case "f": return false
        default: throw mismatch(text, column: column, "a boolean")
        }
    }
}

extension Int: PGDecodable {
    public static func decode(_ text: String?, column: Int) throws(Failure) -> Int {
        guard let text, let value = Int(text) else { throw mismatch(text, column: column, "an integer") }
        return value
    }
}

extension Double: PGDecodable {
    public static func decode(_ text: String?, column: Int) throws(Failure) -> Double {
        guard let text, let value = Double(text) else { throw mismatch(text, column: column, "a number") }
        return value
    }
}

/// A one-dimensional text[] (or any array of text-like elements), as PGArray reads it.
extension Array: PGDecodable where Element == String {
    public static func decode(_ text: String?, column: Int) throws(Failure) -> [String] {
        guard let text, text.hasPrefix("{"), text.hasSuffix("}") else { throw mismatch(text, column: column, "an array") }
        return PGArray.elements(text)
    }
}

/// A column that may be NULL.
extension Optional: PGDecodable where Wrapped: PGDecodable {
    public static func decode(_ text: String?, column: Int) throws(Failure) -> Wrapped? {
        guard let text else { return nil }
        return try Wrapped.decode(text, column: column)
    }
}

extension PGRows {
    /// Every row as a tuple of these types, one per column, in order.
    public func decode<each T: PGDecodable>(_ types: (repeat each T).Type) throws(Failure) -> [(repeat each T)] {
        var out: [(repeat each T)] = []
        out.reserveCapacity(rows.count)
        for row in rows { out.append(try Self.decodeRow(row, types)) }
        return out
    }

    /// The first row as a tuple of these types; nil when there is no row.
    public func decodeFirst<each T: PGDecodable>(_ types: (repeat each T).Type) throws(Failure) -> (repeat each T)? {
        guard let row = rows.first else { return nil }
        let decoded: (repeat each T) = try Self.decodeRow(row, types)
        return decoded
    }

    /// The first column of the first row as this type; nil when there is no row.
    public func decodeScalar<T: PGDecodable>(_: T.Type) throws(Failure) -> T? {
        guard let row = rows.first else { return nil }
        guard row.count == 1 else {
            throw Failure.database(message: "the result has \(row.count) column(s), not the 1 read", sqlState: nil)
        }
        return try T.decode(row[0], column: 0)
    }

    static func decodeRow<each T: PGDecodable>(_ row: [String?], _: (repeat each T).Type) throws(Failure) -> (repeat each T) {
        var count = 0
        for _ in repeat (each T).self { count += 1 }
        guard row.count == count else {
            throw Failure.database(message: "the result has \(row.count) column(s), not the \(count) read", sqlState: nil)
        }
        var column = 0
        func next<U: PGDecodable>(_: U.Type) throws(Failure) -> U {
            defer { column += 1 }
            return try U.decode(row[column], column: column)
        }
        return (repeat try next((each T).self))
    }
}
