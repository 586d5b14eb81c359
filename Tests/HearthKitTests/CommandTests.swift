#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HearthKit

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
        } catch let error as HearthError {
            #expect(error.message.contains("exited 3"))
            #expect(error.message.contains("broken"))
        }
    }

    @Test("a missing program is a clear error")
    func missing() async throws {
        await #expect(throws: HearthError.self) { try await Command.check(["no-such-program-hm"]) }
    }

    @Test("a command can run as another system account")
    func asUser() async throws {
        let nobody = try #require(SystemAccount.lookup("nobody"))
        #expect(try await Command.check(["id", "-u"], asUser: nobody) == "\(nobody.uid)\n")
    }

    @Test("a child's environment is minimal: no *_PASSWORD or configuration key of ours even when our environment has them; PATH, LC_ALL, HOME and proxies pass (proxies only to root's children)")
    func minimalEnvironment() async throws {
        // Our own environment, as an operator may give it (the configuration's environment
        // layer). Given as the parent's environment, not set in this process: the suites run side
        // by side, and a proxy or AI_NAMES set here reached the children and configurations of
        // the tests beside this one (an apt-get of another suite went to proxy.invalid).
        var ours = currentEnvironment()
        ours.merge(
            ["HEARTHMINDS_PASSWORD": "env-secret-1", "LOGOS_PASSWORD": "env-secret-2",
             "POSTGRES_ADMIN_PASSWORD": "env-secret-3", "AI_NAMES": "logos", "http_proxy": "http://proxy.invalid:3128",
             "PATH": "/opt/hm-test/bin:/usr/bin"]) { _, new in new }
        let child = try Command.childEnvironment(adding: ["DEBIAN_FRONTEND": "noninteractive"], parent: ours)
        #expect(!child.values.contains { $0.contains("env-secret") })
        #expect(!child.keys.contains { $0.uppercased().hasSuffix("_PASSWORD") })
        #expect(child["AI_NAMES"] == nil)
        #expect(Set(child.keys).subtracting(Command.passedThrough) == ["PATH", "LC_ALL", "HOME", "DEBIAN_FRONTEND"])
        #expect(child["LC_ALL"] == "C.UTF-8" && child["http_proxy"] == "http://proxy.invalid:3128")
        #expect(child["PATH"]?.hasPrefix("/opt/hm-test/bin:/usr/bin:") == true && child["PATH"]?.contains("/usr/sbin") == true)

        // As another account: its HOME, USER and LOGNAME, and no proxy (a proxy URL may hold
        // credentials, and that account reads its own processes' /proc/<pid>/environ).
        let nobody = try #require(SystemAccount.lookup("nobody"))
        let asNobody = try Command.childEnvironment(asUser: nobody, parent: ours)
        #expect(!asNobody.values.contains { $0.contains("env-secret") })
        #expect(asNobody["USER"] == "nobody" && asNobody["HOME"] == nobody.home)
        #expect(!asNobody.keys.contains { $0.lowercased().contains("proxy") })

        // And a real child gets exactly that environment, computed from this process's own.
        func printedEnvironment(_ text: String) -> [String: String] {
            var printed: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                printed[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
            return printed
        }
        let printed = try await Command.check(["env"], environment: ["DEBIAN_FRONTEND": "noninteractive"])
        #expect(printedEnvironment(printed) == (try Command.childEnvironment(adding: ["DEBIAN_FRONTEND": "noninteractive"])))
        let printedAsNobody = try await Command.check(["env"], asUser: nobody)
        #expect(printedEnvironment(printedAsNobody) == (try Command.childEnvironment(asUser: nobody)))

        // A caller cannot hand a password to a child through the environment.
        await #expect(throws: HearthError.self) { try await Command.check(["env"], environment: ["X_PASSWORD": "no"]) }
    }

    @Test("display quotes what a shell would need quoted")
    func display() {
        #expect(Command.display(["useradd", "--comment", "HearthMinds service", "it's"])
            == "useradd --comment 'HearthMinds service' 'it'\\''s'")
    }
}
