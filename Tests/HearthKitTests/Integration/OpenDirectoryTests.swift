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

/// The one way the suite writes and removes as root (OpenDirectory), attacked for real by the
/// postgres account in test directories: directories it owns on the way, links at the names we
/// write and at guessable temporary names, links in place of directories, links inside a tree
/// being removed, a mount point inside it; the log; postmaster.pid.
@Suite("open directories: no write as root follows another account's path (real attacks by postgres)", .serialized)
struct OpenDirectoryTests {
    /// A 0755 test directory of root's with `zone` (the postgres account's) in it.
    func setUp() async throws -> (base: String, zone: String, victim: Hostile.Victim) {
        let base = TestFiles.temporaryDirectory("hm-opendir")
        chmod(base, 0o755)
        let zone = base + "/zone"
        let postgres = Hostile.postgres
        try FileSystem.makeDirectories(zone, mode: 0o755)
        try FileSystem.setOwner(zone, uid: postgres.uid, gid: postgres.gid, mode: 0o755)
        return (base, zone, try Hostile.Victim())
    }

    @Test("a directory another account owns on the way is refused, named; in the zone expected to be that account's, the write goes through the handle")
    func ownership() async throws {
        let (base, zone, victim) = try await setUp()
        defer { TestFiles.removeTree(base); victim.remove() }
        let postgres = Hostile.postgres
        try await Hostile.asPostgres("mkdir \(zone)/sub")

        do {
            _ = try OpenDirectory.open(zone + "/sub")
            Issue.record("a directory of postgres's was trusted")
        } catch let error as Failure where error.kind == .hostWrong {
            #expect(error.message.contains("\(zone) is owned by postgres"))
        }
        expectFailure(.error) { try FileSystem.writeAtomically(zone + "/sub/f", "x\n") }
        #expect(!FileSystem.exists(zone + "/sub/f"))

        let trust = DirectoryTrust.account(postgres.uid, from: zone)
        let sub = try OpenDirectory.open(zone + "/sub", trust: trust)
        try sub.write("f", "ours\n", mode: 0o640, uid: postgres.uid, gid: postgres.gid)
        let written = try #require(try sub.entry("f"))
        #expect(written.kind == .file && written.uid == postgres.uid && written.mode == 0o640)
        // The zone is the account's only from where it starts: its parent must still be root's.
        expectFailure(.hostWrong) {
            try OpenDirectory.open(zone + "/sub", trust: .account(postgres.uid, from: zone + "/sub"))
        }

        // Group- or world-writable without the sticky bit: refused too; /tmp (sticky) passes.
        chmod(base, 0o777)
        expectFailure(.hostWrong) { try OpenDirectory.open(base) }
        chmod(base, 0o755)
        #expect(try OpenDirectory.open(base).resolvedPath == base)
    }

    @Test("links on the way: root's link in a directory only root writes is followed (/var/run); the postgres account's is refused, named")
    func links() async throws {
        let (base, zone, victim) = try await setUp()
        defer { TestFiles.removeTree(base); victim.remove() }
        let before = victim.snapshot()
        let postgres = Hostile.postgres
        #expect(try OpenDirectory.open("/var/run").resolvedPath == "/run")
        symlink(victim.path, base + "/roots-link")
        #expect(try OpenDirectory.open(base + "/roots-link/dir").resolvedPath == victim.path + "/dir")

        try await Hostile.asPostgres("ln -s \(victim.path) \(zone)/link")
        do {
            _ = try OpenDirectory.open(zone + "/link/dir", trust: .account(postgres.uid, from: zone))
            Issue.record("the postgres account's link was followed")
        } catch let error as Failure where error.kind == .hostWrong {
            #expect(error.message.contains("\(zone)/link is a symbolic link (owned by postgres"))
        }
        expectFailure(.error) {
            try FileSystem.writeAtomically(zone + "/link/secret", "owned\n", trust: .account(postgres.uid, from: zone))
        }
        expectFailure(.error) {
            try FileSystem.setOwner(zone + "/link", uid: postgres.uid, gid: postgres.gid, mode: 0o777,
                                    trust: .account(postgres.uid, from: zone))
        }
        // A link in place of a directory we make is refused, not followed.
        let handle = try OpenDirectory.open(zone, trust: .account(postgres.uid, from: zone))
        expectFailure(.hostWrong) { _ = try handle.makeDirectory("link", mode: 0o755, uid: postgres.uid) }
        #expect(try handle.directory("missing") == nil)
        #expect(victim.snapshot() == before)
    }

    @Test("a write follows no link: at the name itself (replaced) or at the old and guessable temporary names (never opened); root's files unchanged")
    func writes() async throws {
        let (base, zone, victim) = try await setUp()
        defer { TestFiles.removeTree(base); victim.remove() }
        let before = victim.snapshot()
        let postgres = Hostile.postgres
        let pid = getpid()
        let planted = try await Hostile.asPostgres("""
            set -e
            ln -s \(victim.path)/secret \(zone)/target.conf
            ln -s \(victim.path)/secret \(zone)/target.conf.hm-tmp-\(pid)
            ln -s \(victim.path)/secret \(zone)/.target.conf.hm-tmp
            ln -s \(victim.path)/secret \(zone)/target.conf.tmp
            """)
        #expect(planted.succeeded, "\(planted.stderr)")
        let handle = try OpenDirectory.open(zone, trust: .account(postgres.uid, from: zone))
        try handle.write("target.conf", "ours\n", mode: 0o640, uid: postgres.uid, gid: postgres.gid)
        #expect(victim.snapshot() == before)
        let entry = try #require(try handle.entry("target.conf"))
        #expect(entry.kind == .file && entry.uid == postgres.uid && entry.gid == postgres.gid && entry.mode == 0o640)
        #expect(try handle.readText("target.conf") == "ours\n")
        // The temporary file is gone (renamed); the planted names are untouched links.
        #expect(try handle.list() == [".target.conf.hm-tmp", "target.conf", "target.conf.hm-tmp-\(pid)", "target.conf.tmp"])
        #expect(try handle.entry("target.conf.hm-tmp-\(pid)")?.kind == .symlink)

        // Reads follow no link either.
        try await Hostile.asPostgres("ln -sfn \(victim.path)/secret \(zone)/read.conf")
        #expect(try handle.textIfFile("read.conf") == nil)
        expectFailure(.error) { try handle.readText("read.conf") }
    }

    @Test("stale temporaries in the postgres account's directory: its links, FIFO, hard link and directory of that shape are unlinked or left, never followed or read; root's files unchanged")
    func staleTemporariesPlantedByPostgres() async throws {
        let (base, zone, victim) = try await setUp()
        defer { TestFiles.removeTree(base); victim.remove() }
        let before = victim.snapshot()
        let postgres = Hostile.postgres
        let planted = try await Hostile.asPostgres("""
            set -e
            echo theirs > \(zone)/own.conf
            ln -s \(victim.path)/secret \(zone)/.target.conf.hm-1234abcd
            mkfifo \(zone)/.target.conf.hm-dead
            ln \(zone)/own.conf \(zone)/.target.conf.hm-cafe
            mkdir \(zone)/.target.conf.hm-beef
            """)
        #expect(planted.succeeded, "\(planted.stderr)")
        let handle = try OpenDirectory.open(zone, trust: .account(postgres.uid, from: zone))
        try handle.write("target.conf", "ours\n", mode: 0o640, uid: postgres.uid, gid: postgres.gid)
        #expect(victim.snapshot() == before)
        // the link, the FIFO and the hard link's name are gone (the FIFO not opened: no hang);
        // the directory stays; the hard link's other name keeps its content
        #expect(try handle.list() == [".target.conf.hm-beef", "own.conf", "target.conf"])
        #expect(try handle.readText("own.conf") == "theirs\n")
        #expect(try handle.entry("own.conf")?.kind == .file)
    }

    @Test("a write cut before its rename (kill -9) leaves a temporary file; the next write of that name removes it (a link there as a link), and no other name")
    func staleTemporariesRemoved() throws {
        let base = TestFiles.temporaryDirectory("hm-stale-temp")
        defer { TestFiles.removeTree(base) }
        let handle = try OpenDirectory.open(base)
        try handle.write("secret.conf", "old\n", mode: 0o600)
        // what a cut write leaves: its temporary file, half written; and a link of that shape
        try handle.write(".secret.conf.hm-1f2e3d4c5b6a7980", "half a secr", mode: 0o600)
        #expect(symlink(base + "/secret.conf", base + "/.secret.conf.hm-abc") == 0)
        for kept in [".secret.conf.hm-tmp", ".other.conf.hm-abc", ".secret.conf.hm-", "secret.conf.hm-abc"] {
            try handle.write(kept, "not ours\n", mode: 0o600)
        }
        try handle.write("secret.conf", "new\n", mode: 0o600)
        #expect(try handle.readText("secret.conf") == "new\n")
        #expect(
            try handle.list().sorted()
                == [".other.conf.hm-abc", ".secret.conf.hm-", ".secret.conf.hm-tmp", "secret.conf", "secret.conf.hm-abc"])
    }

    @Test("a removal by descriptors removes links themselves, never what they point to, and stops at another file system, named")
    func removals() async throws {
        let (base, zone, victim) = try await setUp()
        defer { TestFiles.removeTree(base); victim.remove() }
        let before = victim.snapshot()
        let postgres = Hostile.postgres
        let planted = try await Hostile.asPostgres("""
            set -e
            mkdir -p \(zone)/tree/a/b
            echo x > \(zone)/tree/a/b/file
            ln -s \(victim.path) \(zone)/tree/dir-link
            ln -s \(victim.path)/secret \(zone)/tree/a/file-link
            ln -s \(victim.path)/dir \(zone)/tree/a/b/dir-link
            """)
        #expect(planted.succeeded, "\(planted.stderr)")
        let handle = try OpenDirectory.open(zone, trust: .account(postgres.uid, from: zone))
        try handle.removeTree("tree")
        #expect(try handle.entry("tree") == nil)
        #expect(victim.snapshot() == before)

        // A mount point inside: the removal stops there, names it, and leaves the mount's files.
        try await Hostile.asPostgres("mkdir -p \(zone)/tree2/mnt && echo y > \(zone)/tree2/other")
        try await Command.check(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", zone + "/tree2/mnt"])
        defer { DebianTestClusters.spawnAndWait(["/usr/bin/umount", zone + "/tree2/mnt"]) }
        try FileSystem.writeAtomically(zone + "/tree2/mnt/keep", "kept\n", trust: .account(postgres.uid, from: zone))
        do {
            try handle.removeTree("tree2")
            Issue.record("the removal crossed into another file system")
        } catch let error as Failure where error.kind == .error {
            #expect(error.message.contains("\(zone)/tree2/mnt is on another file system"))
        }
        #expect(try FileSystem.readText(zone + "/tree2/mnt/keep") == "kept\n")

        // directoryOnly: a link in place of the directory is refused, not removed, not followed.
        try await Hostile.asPostgres("ln -s \(victim.path) \(zone)/tree3")
        expectFailure(.hostWrong) { try handle.removeTree("tree3", directoryOnly: true) }
        #expect(try handle.entry("tree3")?.kind == .symlink)
        #expect(victim.snapshot() == before)
    }

    @Test("the log: HEARTHMINDS_LOG in a directory another account owns, or a link as the log file, is refused; a line is written whole")
    func log() async throws {
        let (base, zone, victim) = try await setUp()
        defer { TestFiles.removeTree(base); victim.remove() }
        let before = victim.snapshot()
        expectFailure(.error) { try JSONLog(path: zone + "/bootstrap.jsonl") }
        expectFailure(.error) { try JSONLog(path: zone + "/logs/bootstrap.jsonl") }
        #expect(!FileSystem.exists(zone + "/bootstrap.jsonl") && !FileSystem.exists(zone + "/logs"))

        try FileSystem.makeDirectories(base + "/logs", mode: 0o750)
        symlink(victim.path + "/secret", base + "/logs/bootstrap.jsonl")
        expectFailure(.error) { try JSONLog(path: base + "/logs/bootstrap.jsonl") }
        #expect(victim.snapshot() == before)

        let log = try JSONLog(path: base + "/new/bootstrap.jsonl")
        // A long line (a preview, bounded at 64 KiB; a detail is bounded at 4 KiB) is written whole.
        let long = String(repeating: "é", count: 30_000)
        var record = LogRecord(time: "t", run: "r", step: "s", action: "a", result: true, changed: false, ms: 1, detail: "d", dryRun: false)
        record.preview = long
        log.write(record)
        let text = try FileSystem.readText(base + "/new/bootstrap.jsonl")
        #expect(text.hasSuffix("\"preview\":\"\(long)\"}\n"))
        #expect(FileSystem.status(base + "/new")?.mode == 0o750)
        #expect(FileSystem.status(base + "/new/bootstrap.jsonl")?.mode == 0o640)
    }

    @Test("postmaster.pid is read without following a link")
    func postmasterPid() async throws {
        let (base, zone, victim) = try await setUp()
        defer { TestFiles.removeTree(base); victim.remove() }
        // A live server (the shared test cluster's): a file of these lines would read as a running postmaster.
        let server = try await TestCluster.livePostmasterPid()
        let lines = "\(server)\n/data\n1700000000\n5432\n/var/run/postgresql\n127.0.0.1\n  5432001         0\nready   \n"
        try FileSystem.writeAtomically(victim.path + "/pid", lines, mode: 0o600, uid: 0, gid: 0)
        try await Hostile.asPostgres("ln -s \(victim.path)/pid \(zone)/postmaster.pid")
        #expect(PostmasterStatus.read(dataDirectory: zone) == nil)
        try await Hostile.asPostgres("rm \(zone)/postmaster.pid && printf '\(lines.replacing("\n", with: "\\n"))' > \(zone)/postmaster.pid")
        #expect(PostmasterStatus.read(dataDirectory: zone)?.port == 5432)
    }
}
