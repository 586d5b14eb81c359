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

/// What the hostile-tenant tests need: root's files to aim at (and compare before and after),
/// commands run as the postgres account, a planter left running in the background, a log to
/// read an action's detail from, and the step executables.
enum Hostile {
    static var postgres: SystemAccount {
        guard let account = SystemAccount.lookup("postgres") else { fatalError("no postgres account") }
        return account
    }

    /// Runs a shell script as the postgres account (setpriv); its result.
    @discardableResult
    static func asPostgres(_ script: String) async throws -> CommandResult {
        try await Command.run(["/bin/sh", "-c", script], asUser: postgres)
    }

    /// Runs a shell script as root, synchronously (for clean-up in `defer`); its output.
    static func asRootSync(_ script: String) throws -> String {
        let base = TestFiles.temporaryDirectory("hm-sync")
        defer { TestFiles.removeTree(base) }
        DebianTestClusters.spawnAndWait(["/bin/sh", "-c", "(" + script + ") >" + base + "/out 2>/dev/null"])
        return try FileSystem.readText(base + "/out")
    }

    /// Runs a shell script as root.
    @discardableResult
    static func asRoot(_ script: String) async throws -> CommandResult {
        try await Command.run(["/bin/sh", "-c", script])
    }

    /// A directory of root's (0755, under a 0755 test directory so that the postgres account
    /// can name it in a link) holding root's files: `secret` (0600), `settings.conf` (0600),
    /// `hba.conf` (0600), `start.conf` (0644, "auto") and `dir/inside` (0644).
    struct Victim {
        let base: String
        var path: String { base + "/victim" }

        init() throws {
            base = TestFiles.temporaryDirectory("hm-hostile")
            chmod(base, 0o755)
            try FileSystem.makeDirectories(path + "/dir", mode: 0o755)
            for (name, text, mode) in [
                ("secret", "root's secret\n", 0o600), ("settings.conf", "# root's settings file\n", 0o600),
                ("hba.conf", "# root's hba file\n", 0o600), ("start.conf", "auto\n", 0o644),
                ("dir/inside", "root's file inside\n", 0o644),
            ] as [(String, String, UInt32)] {
                try FileSystem.writeAtomically(path + "/" + name, text, mode: mode, uid: 0, gid: 0)
            }
        }

        func snapshot() -> [String] { Tree.snapshot(path) }

        func remove() { TestFiles.removeTree(base) }
    }

    /// Every entry below `path` (the top included) as a line: kind, owner, mode, and the
    /// content of a file or the target of a link. Nothing is followed.
    enum Tree {
        static func snapshot(_ path: String) -> [String] {
            var lines: [String] = []
            walk(path, "", &lines)
            return lines
        }

        private static func walk(_ path: String, _ relative: String, _ lines: inout [String]) {
            var st = stat()
            guard lstat(path, &st) == 0 else {
                lines.append("\(relative): missing")
                return
            }
            let head = "\(relative.isEmpty ? "." : relative): uid \(st.st_uid) gid \(st.st_gid) mode \(String(st.st_mode & 0o7777, radix: 8))"
            switch st.st_mode & S_IFMT {
            case S_IFDIR:
                lines.append(head + " dir")
                for name in (try? FileSystem.list(path)) ?? [] {
                    walk(path + "/" + name, relative.isEmpty ? name : relative + "/" + name, &lines)
                }
            case S_IFLNK:
                var buffer = [CChar](repeating: 0, count: 4096)
                let n = readlink(path, &buffer, 4095)
                lines.append(head + " link -> " + String(cString: Array(buffer[0..<max(0, n)]) + [0]))
            case S_IFREG:
                let text = (try? FileSystem.readText(path)) ?? "<unreadable>"
                lines.append(head + " file " + JSON.string(text))
            default:
                lines.append(head + " other")
            }
        }
    }

    /// A program left running in the background (a planter); `stop()` kills it by its pid.
    final class Background: @unchecked Sendable {
        let pid: pid_t

        /// Starts `script` with /bin/sh as the postgres account.
        init(asPostgres script: String) throws {
            let account = Hostile.postgres
            let argv = [
                "/usr/bin/setpriv", "--reuid=\(account.uid)", "--regid=\(account.gid)", "--clear-groups", "--",
                "/bin/sh", "-c", script,
            ]
            var child: pid_t = 0
            let arguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
            defer { arguments.forEach { free($0) } }
            let environment: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
            defer { environment.forEach { free($0) } }
            guard posix_spawn(&child, argv[0], nil, nil, arguments, environment) == 0 else {
                throw Failure("cannot start the planter")
            }
            pid = child
        }

        func stop() {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    /// Runs a step with a log, and returns the outcome and the detail of the action that failed.
    static func run(_ step: Step, dryRun: Bool = false) async throws -> (StepRunner.Outcome, String) {
        let directory = TestFiles.temporaryDirectory("hm-hostile-log")
        defer { TestFiles.removeTree(directory) }
        let log = try JSONLog(path: directory + "/log.jsonl")
        let outcome = await StepRunner(console: Console(colour: false), log: log, runID: "hostile", dryRun: dryRun).run(step)
        let lines = try FileSystem.readText(directory + "/log.jsonl").split(separator: "\n").map(String.init)
        // (In a dry run an action that would change is false too: not the one that failed. The
        // postgres step's dpkg action would change whenever another suite's dpkg has a package
        // unpacked, as AptLockTests does on purpose, side by side with this one.)
        let failed = lines.first {
            $0.contains("\"result\":false") && !$0.contains("\"action\":\"(step)\"")
                && !$0.contains("\"status\":\"would_change\"")
        } ?? ""
        return (outcome, failed)
    }

    /// A step executable of this build.
    static func executable(_ name: String) -> String { TestFiles.executable("hm-" + name) }
}
