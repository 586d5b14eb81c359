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

@Suite("apt fetch problems in an install's error (issue 6: apt cannot reach its mirror)")
struct AptFetchProblemsTests {
    // apt-get update -q against a mirror that refuses connections: it warns and exits 0.
    static let unreachable = """
        Err:1 http://127.0.0.1:9/debian bookworm InRelease
          Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)
        Reading package lists...
        W: Failed to fetch http://127.0.0.1:9/debian/dists/bookworm/InRelease  Could not connect to 127.0.0.1:9 (127.0.0.1). - connect (111: Connection refused)
        W: Some index files failed to download. They have been ignored, or old ones used instead.
        """

    @Test("the Err: and fetch warnings of apt-get update are kept, nothing else")
    func lines() {
        let lines = AptFetchProblems.lines(Self.unreachable)
        #expect(lines.count == 3)
        #expect(lines.first == "Err:1 http://127.0.0.1:9/debian bookworm InRelease")
        #expect(lines.contains { $0.hasPrefix("W: Failed to fetch http://127.0.0.1:9/") })
        #expect(!lines.contains { $0.hasPrefix("Reading") })
        #expect(AptFetchProblems.lines("Hit:1 http://mirror.example.org/debian bookworm InRelease\nReading package lists...\n").isEmpty)
    }

    @Test("an install that fails after such an update names the unreachable mirror; a clean update adds nothing")
    func explain() {
        let failure = Failure("`apt-get install -y postgresql-15` exited 100:\nE: Unable to locate package postgresql-15")
        let update = CommandResult(command: "apt-get update -q", status: 0, stdout: Self.unreachable, stderr: "")
        let explained = AptFetchProblems.explain(failure, update: update).message
        #expect(explained.hasPrefix(failure.message))
        #expect(explained.contains("could not fetch the package lists"))
        #expect(explained.contains("Could not connect to 127.0.0.1:9"))
        let clean = CommandResult(command: "apt-get update -q", status: 0, stdout: "Reading package lists...\n", stderr: "")
        #expect(AptFetchProblems.explain(failure, update: clean).message == failure.message)
    }
}
