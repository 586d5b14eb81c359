import Testing
@testable import HearthCommands
@testable import HearthKit
@testable import HearthPgvector
@testable import HearthPostgres
@testable import HearthClient
@testable import HearthMigrations
@testable import HearthMonitoring
@testable import HearthBackup
@testable import HearthPG
@testable import HearthRunner
@testable import HearthConfiguration
@testable import HearthSystem

/// Rows decoded into types (PGDecoding): each column by its type, in order; a NULL, a value of
/// another type or a row of another width is an error naming the column, never a default.
@Suite("rows decoded into types (unit)")
struct PGDecodingTests {
    let rows = PGRows(
        columns: ["name", "super", "count", "comment", "members", "cost"],
        rows: [
            ["logos", "t", "42", nil, "{a,\"b c\"}", "1.5"],
            ["aletheia", "f", "-1", "memory", "{}", "4"],
        ])

    @Test("each column by its type; NULL into an optional")
    func decodes() throws {
        let decoded = try rows.decode((String, Bool, Int, String?, [String], Double).self)
        #expect(decoded.count == 2)
        let (name, isSuper, count, comment, members, cost) = decoded[0]
        #expect(name == "logos" && isSuper && count == 42 && comment == nil && members == ["a", "b c"] && cost == 1.5)
        #expect(decoded[1].0 == "aletheia" && !decoded[1].1 && decoded[1].2 == -1 && decoded[1].3 == "memory")
        #expect(decoded[1].4.isEmpty)
        #expect(try PGRows(columns: ["n"], rows: [["7"]]).decodeScalar(Int.self) == 7)
        #expect(try PGRows(columns: ["n"], rows: []).decodeScalar(Int.self) == nil)
    }

    @Test("a NULL, another type or another width is an error naming the column")
    func refuses() {
        func message(_ body: () throws -> Void) -> String {
            do { try body(); return "" } catch { return "\(error)" }
        }
        #expect(message { _ = try rows.decode((String, Bool, Int, String, [String], Double).self) }
            == "column 4 of the result is NULL, not text")
        #expect(message { _ = try rows.decode((String, Int, Int, String?, [String], Double).self) }
            == "column 2 of the result is 't', not an integer")
        #expect(message { _ = try rows.decode((String, Bool).self) } == "the result has 6 column(s), not the 2 read")
        #expect(message { _ = try PGRows(columns: ["b"], rows: [["yes"]]).decodeScalar(Bool.self) }
            == "column 1 of the result is 'yes', not a boolean")
        #expect(message { _ = try PGRows(columns: ["a"], rows: [["x"]]).decodeScalar([String].self) }
            == "column 1 of the result is 'x', not an array")
    }
}
