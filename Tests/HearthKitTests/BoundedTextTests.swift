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

/// Issue 21 (item 2): what reaches the log, the console or an error is bounded and escaped in
/// linear time.
@Suite("bounded text")
struct BoundedTextTests {
    @Test("a text over its bound is cut at a scalar boundary and says how many bytes are left out")
    func cut() {
        #expect(Bounded.text("short") == "short")
        #expect(Bounded.text(String(repeating: "a", count: 10), 4) == "aaaa… (6 bytes more)")
        // "é" is two bytes: a cut in its middle goes back to its start.
        #expect(Bounded.text("aéé", 2) == "a… (4 bytes more)")
        #expect(Bounded.text("éé", 4) == "éé")
    }

    @Test("a log record of a 4 MiB detail of control characters is a few KiB; errors are bounded")
    func record() {
        let huge = String(repeating: "\u{01}", count: 4 << 20)
        let record = LogRecord(
            time: "t", run: "r", step: "s", action: "a", result: false, changed: false, ms: 0, detail: huge, dryRun: false)
        #expect(record.json.utf8.count < 32 * 1024)
        #expect(record.json.contains("… (4190208 bytes more)"))
        #expect(Failure.database(message: huge, sqlState: nil).message.utf8.count < 5000)
        #expect(Failure.migration(huge).message.utf8.count < 9000)
        #expect(Failure(huge).message.utf8.count < 9000)
    }

    @Test("the console's and the log's escaping take linear time")
    func linear() {
        func seconds(_ n: Int) -> Double {
            let text = String(repeating: "\u{01}\u{1B}[", count: n)
            let started = Clock.nowMs()
            _ = Console.printable(text)
            _ = JSON.string(text)
            return (Clock.nowMs() - started) / 1000
        }
        // The best of three of each (a loaded machine's pauses are not the escaping's time).
        let small = (0..<3).map { _ in seconds(1 << 16) }.min()!, large = (0..<3).map { _ in seconds(1 << 20) }.min()!
        // Sixteen times the text: about sixteen times the time when linear, 256 when quadratic;
        // the bound is their geometric middle, 64 (four times the text against a bound of 8 failed
        // a loaded CI run at 8.3, a large text's cache misses, not a quadratic escaping).
        #expect(large < max(small, 0.02) * 64, "\(small) s, then \(large) s")
    }
}
