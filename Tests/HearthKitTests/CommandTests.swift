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
        // Our own environment, as an operator may give it (the configuration's environment layer).
        let ours = ["HEARTHMINDS_PASSWORD": "env-secret-1", "LOGOS_PASSWORD": "env-secret-2",
                    "POSTGRES_ADMIN_PASSWORD": "env-secret-3", "AI_NAMES": "logos", "http_proxy": "http://proxy.invalid:3128"]
        for (key, value) in ours { setenv(key, value, 1) }
        defer { for key in ours.keys { unsetenv(key) } }
        #expect(currentEnvironment()["LOGOS_PASSWORD"] == "env-secret-2")

        let printed = try await Command.check(["env"], environment: ["DEBIAN_FRONTEND": "noninteractive"])
        var child: [String: String] = [:]
        for line in printed.split(separator: "\n") {
            guard let eq = line.firstIndex(of: "=") else { continue }
            child[String(line[..<eq])] = String(line[line.index(after: eq)...])
        }
        #expect(!printed.contains("env-secret"))
        #expect(!child.keys.contains { $0.uppercased().hasSuffix("_PASSWORD") })
        #expect(child["AI_NAMES"] == nil)
        #expect(Set(child.keys) == ["PATH", "LC_ALL", "HOME", "http_proxy", "DEBIAN_FRONTEND"])
        #expect(child["LC_ALL"] == "C.UTF-8" && child["http_proxy"] == "http://proxy.invalid:3128")
        #expect(child["PATH"]?.contains("/usr/sbin") == true)

        // As another account: its HOME, USER and LOGNAME, and no proxy (a proxy URL may hold
        // credentials, and that account reads its own processes' /proc/<pid>/environ).
        let nobody = try #require(SystemAccount.lookup("nobody"))
        let asNobody = try await Command.check(["env"], asUser: nobody)
        #expect(!asNobody.contains("env-secret"))
        #expect(asNobody.contains("USER=nobody\n") && asNobody.contains("HOME=\(nobody.home)\n"))
        #expect(!asNobody.contains("proxy"))

        // A caller cannot hand a password to a child through the environment.
        await #expect(throws: HearthError.self) { try await Command.check(["env"], environment: ["X_PASSWORD": "no"]) }
    }

    @Test("display quotes what a shell would need quoted")
    func display() {
        #expect(Command.display(["useradd", "--comment", "HearthMinds service", "it's"])
            == "useradd --comment 'HearthMinds service' 'it'\\''s'")
    }
}
