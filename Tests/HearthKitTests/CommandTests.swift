#if canImport(Glibc)
import Glibc
#endif
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

@Suite("commands")
struct CommandTests {
    @Test("argument arrays reach the program as they are, with no shell in between")
    func arguments() async throws {
        let out = try await Command.check(["printf", "%s|", "a b", "$(id)", "';x"])
        #expect(out == "a b|$(id)|';x|")
    }

    @Test("standard input carries data, so secrets stay out of the argument list")
    func input() async throws {
        #expect(try await Command.check(["cat"], input: "secret\n") == "secret\n")
    }

    @Test("a failing command's error names it, its status and its stderr")
    func failure() async throws {
        do {
            try await Command.check(["sh", "-c", "echo broken >&2; exit 3"])
            Issue.record("did not throw")
        } catch let error as Failure where error.kind == .error {
            #expect(error.message.contains("exited 3"))
            #expect(error.message.contains("broken"))
        }
    }

    @Test("a missing program is a clear error")
    func missing() async throws {
        await expectFailureAsync(.error) { try await Command.check(["no-such-program-hm"]) }
    }

    @Test("display quotes what a shell would need quoted")
    func display() {
        #expect(Command.display(["useradd", "--comment", "HearthMinds service", "it's"])
            == "useradd --comment 'HearthMinds service' 'it'\\''s'")
    }
}
