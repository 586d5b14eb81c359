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

/// RunLock in a test directory (the rules; descriptors inherited and not).
@Suite("run lock: a root-only directory, install.sh's descriptor, no inheritance")
struct RunLockTests {
    /// Whether a child started by posix_spawn (which closes nothing by itself) has `fd` open.
    func childSees(_ fd: Int32) -> Bool {
        let status = TestFiles.spawn(["/bin/sh", "-c", "test -e /proc/self/fd/\(fd)"])
        return status == 0
    }

    @Test("a run takes the lock in a directory it makes (0700, root's); a second is busy at once")
    func takesAndRefuses() throws {
        let parent = TestFiles.temporaryDirectory("hm-lock")
        defer { TestFiles.removeTree(parent) }
        let directory = parent + "/hearthminds"
        guard case .held(let fd, let inherited) = try RunLock.acquire(environment: [:], directory: directory) else {
            Issue.record("not held")
            return
        }
        defer { close(fd) }
        #expect(!inherited)
        #expect(FileSystem.status(directory) == FileSystem.Status(uid: 0, gid: 0, mode: 0o700, isDirectory: true))
        #expect(FileSystem.status(directory + "/bootstrap.lock")?.mode == 0o600)
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        let t0 = Clock.nowMs()
        #expect(try RunLock.acquire(environment: [:], directory: directory) == .busy)
        #expect(Clock.nowMs() - t0 < 1000)
    }

    @Test("install.sh's descriptor: checked to be the lock file and held through it (no wait for itself), then close-on-exec: a child does not inherit it")
    func inheritedDescriptor() throws {
        let parent = TestFiles.temporaryDirectory("hm-lock")
        defer { TestFiles.removeTree(parent) }
        let directory = parent + "/hearthminds"
        mkdir(directory, 0o700)
        // As install.sh does: open, flock, and the descriptor stays open across exec.
        let fd = open(directory + "/bootstrap.lock", O_RDWR | O_CREAT, 0o600)
        defer { close(fd) }
        #expect(flock(fd, LOCK_EX | LOCK_NB) == 0)
        #expect(childSees(fd), "before: an ordinary descriptor is inherited")

        let variable = [RunLock.descriptorVariable: String(fd)]
        #expect(try RunLock.acquire(environment: variable, directory: directory) == .held(descriptor: fd, inherited: true))
        #expect(fcntl(fd, F_GETFD) & FD_CLOEXEC != 0)
        #expect(!childSees(fd), "after: no child (no daemon) inherits the lock")
        // Another run, without the descriptor, is busy.
        #expect(try RunLock.acquire(environment: [:], directory: directory) == .busy)

        // A descriptor of another file, or of the lock file but another open (not the holder's).
        let other = open(parent + "/other", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        defer { close(other) }
        expectFailure(.error) {
            try RunLock.acquire(environment: [RunLock.descriptorVariable: String(other)], directory: directory)
        }
        let second = open(directory + "/bootstrap.lock", O_RDWR | O_CLOEXEC)
        defer { close(second) }
        #expect(try RunLock.acquire(environment: [RunLock.descriptorVariable: String(second)], directory: directory) == .busy)
        expectFailure(.error) {
            try RunLock.acquire(environment: [RunLock.descriptorVariable: "not-a-number"], directory: directory)
        }
        expectFailure(.error) {
            try RunLock.acquire(environment: [RunLock.descriptorVariable: "987"], directory: directory)
        }
    }

    @Test("a lock directory that is a link, another account's or writable by others, or a link as the lock file, is refused; root's files unchanged")
    func refusedDirectories() async throws {
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let before = victim.snapshot()
        let parent = TestFiles.temporaryDirectory("hm-lock")
        defer { TestFiles.removeTree(parent) }
        let postgres = Hostile.postgres

        let linked = parent + "/linked"
        symlink(victim.path + "/dir", linked)
        lchown(linked, postgres.uid, postgres.gid)
        expectFailure(.hostWrong) { try RunLock.acquire(environment: [:], directory: linked) }

        let foreign = parent + "/foreign"
        mkdir(foreign, 0o700)
        chown(foreign, postgres.uid, postgres.gid)
        expectFailure(.hostWrong) { try RunLock.acquire(environment: [:], directory: foreign) }
        #expect(!FileSystem.exists(foreign + "/bootstrap.lock"))

        let open = parent + "/open"
        mkdir(open, 0o700)
        chmod(open, 0o777)
        expectFailure(.hostWrong) { try RunLock.acquire(environment: [:], directory: open) }

        let fileLink = parent + "/file-link"
        mkdir(fileLink, 0o700)
        symlink(victim.path + "/secret", fileLink + "/bootstrap.lock")
        expectFailure(.hostWrong) { try RunLock.acquire(environment: [:], directory: fileLink) }
        #expect(victim.snapshot() == before)
    }
}

/// The lock of the real executables and install.sh at /run/hearthminds: in the serialized
/// suite of the Debian-cluster tests (hm-reset there takes it too); the attacks on the lock
/// directory in a private mount namespace with its own /run.
extension HostStepsTests {

    @Test("install.sh: its step holds the lock through install.sh's descriptor (no deadlock, no 75), and the postmaster it starts does not keep it")
    func installLockInherited() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let tree = try TestFiles.installTree(for: cluster)
        defer { TestFiles.removeTree(tree) }
        // The lock in a directory of this test's (the suites run side by side: another suite's
        // hm-reset on /run/hearthminds' lock would make this install.sh exit 75, or this one
        // that hm-reset); the default directory's rules are tried in a private /run below.
        let lockDirectory = tree + "/lock"
        let t0 = Clock.nowMs()
        let run = try await Command.run(
            ["timeout", "600", tree + "/install.sh", "--only", "postgres", "--config", tree + "/hm.env"],
            environment: [RunLock.directoryVariable: lockDirectory])
        print("install.sh --only postgres (fresh cluster): \(Int(Clock.nowMs() - t0)) ms")
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("all steps true"))

        let (_, status) = try DebianClusters.running(cluster.paths)
        let descriptors = try FileSystem.list("/proc/\(status.pid)/fd")
        var targets: [String] = []
        for fd in descriptors {
            var buffer = [CChar](repeating: 0, count: 4096)
            let n = readlink("/proc/\(status.pid)/fd/\(fd)", &buffer, 4095)
            if n > 0 { targets.append(String(cString: Array(buffer[0..<n]) + [0])) }
        }
        #expect(!targets.isEmpty)
        #expect(!targets.contains { $0.hasPrefix(lockDirectory) }, "\(targets)")
        // Nobody holds the lock once install.sh is gone.
        let lockFile = lockDirectory + "/" + RunLock.fileName
        #expect(FileSystem.exists(lockFile))
        #expect(try await Command.run(["flock", "-n", lockFile, "true"]).status == 0)
    }

    /// Runs `command` in a private mount namespace whose /run is a new tmpfs, after `setup`.
    func inPrivateRun(_ setup: String, _ command: [String]) async throws -> (CommandResult, Double) {
        let t0 = Clock.nowMs()
        let result = try await Command.run(
            ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
             "mount -t tmpfs -o mode=0755,size=1m tmpfs /run && \(setup) && exec \"$@\"", "sh"] + command)
        return (result, Clock.nowMs() - t0)
    }

    @Test("the lock: a second executable or install.sh exits 75 at once while it is held; a lock directory planted as a link or owned by another account is refused (a private /run)")
    func lockRefusals() async throws {
        let tree = try TestFiles.installTree()
        defer { TestFiles.removeTree(tree) }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let before = victim.snapshot()
        let postgres = Hostile.postgres
        let config = ["--config", tree + "/test.env"]
        let step = [Hostile.executable("service-user"), "--dry-run"] + config
        let install = [tree + "/install.sh", "--only", "service-user", "--dry-run"] + config
        let lock = "/run/hearthminds/bootstrap.lock"

        for (command, says) in [(step, "another run holds the lock"), (install, "another install.sh is running")] {
            let (busy, ms) = try await inPrivateRun(
                "mkdir -m 0700 /run/hearthminds", ["flock", lock] + command)
            #expect(busy.status == 75, "\(command[0]): \(busy.stdout) \(busy.stderr)")
            #expect(busy.stderr.contains(says), "\(busy.stderr)")
            #expect(ms < 5000, "not at once: \(ms) ms")
            print("lock held: \(command[0].split(separator: "/").last!) exits 75 after \(Int(ms)) ms")
        }
        for command in [step, install] {
            let (linked, _) = try await inPrivateRun(
                "ln -s \(victim.path)/dir /run/hearthminds && chown -h \(postgres.uid):\(postgres.gid) /run/hearthminds",
                command)
            #expect(linked.status == 1, "\(command[0]): \(linked.stdout) \(linked.stderr)")
            #expect(linked.stderr.contains("/run/hearthminds is a symbolic link"), "\(linked.stderr)")

            let (foreign, _) = try await inPrivateRun(
                "mkdir -m 0700 /run/hearthminds && chown \(postgres.uid):\(postgres.gid) /run/hearthminds", command)
            #expect(foreign.status == 1, "\(command[0]): \(foreign.stdout) \(foreign.stderr)")
            #expect(foreign.stderr.contains("/run/hearthminds"), "\(foreign.stderr)")
        }
        #expect(victim.snapshot() == before)

        // With the lock free (a private /run), both run the dry run.
        for command in [step, install] {
            let (free, _) = try await inPrivateRun("true", command)
            #expect(free.status == 0, "\(command[0]): \(free.stdout) \(free.stderr)")
        }
    }
}
