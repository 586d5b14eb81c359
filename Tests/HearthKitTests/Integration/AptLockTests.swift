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

/// A lock of apt's or dpkg's taken as they take it, by the test process.
enum AptLock {
    /// Takes `path`'s write lock as apt and dpkg do (fcntl F_SETLK); the descriptor holds it
    /// until it is closed. While another process has it (the pgvector suite's apt-get, running
    /// beside this one, or apt-daily), waits for it: up to 10 minutes.
    static func hold(_ path: String) async throws -> Int32 {
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o640)
        guard fd >= 0 else { throw Failure("open \(path): \(FileSystem.errnoText())") }
        var lock = flock()
        lock.l_type = Int16(F_WRLCK)
        lock.l_whence = Int16(SEEK_SET)
        let deadline = Clock.nowMs() + 600_000
        while fcntl(fd, F_SETLK, &lock) != 0 {
            guard (errno == EAGAIN || errno == EACCES) && Clock.nowMs() < deadline else {
                let reason = FileSystem.errnoText()
                close(fd)
                throw Failure("cannot lock \(path): \(reason)")
            }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        return fd
    }
}

/// apt-get while another apt or dpkg works (apt-daily and unattended-upgrades after a boot): the
/// locks are this host's own, taken here as apt and dpkg take them (fcntl) by the test process.
@Suite("apt-get beside another apt or dpkg (integration, this host's locks)", .serialized)
struct AptLockTests {
    /// Closes `fd` (the lock ends with it) after `ms`, on a thread of its own: a task of the
    /// cooperative pool may wait behind other suites' blocking calls, and in a loaded CI run the
    /// host's dpkg lock stayed held for 45 s more, which other suites' steps then waited on.
    func release(_ fd: Int32, after ms: UInt64) -> Task<Void, any Error> {
        Task(executorPreference: OwnThreadExecutor()) {
            usleep(UInt32(ms * 1000))
            close(fd)
        }
    }

    @Test("dpkg's lock held by another process: a plain apt-get fails at once; the suite's waits, then installs")
    func dpkgLockWaited() async throws {
        let fd = try await AptLock.hold("/var/lib/dpkg/lock-frontend")
        let plain = try await Command.run(["apt-get", "-q", "-y", "install", "bash"], environment: Apt.environment)
        #expect(!plain.succeeded && Apt.heldByAnother(plain), "\(plain.stdout) \(plain.stderr)")
        let released = release(fd, after: 3000)
        let t0 = Clock.nowMs()
        // bash is installed: once the lock is free there is nothing to do.
        try await Apt.install(["bash"])
        let waited = Clock.nowMs() - t0
        try await released.value
        #expect(waited >= 2500, "apt-get returned after \(Int(waited)) ms, before the lock was free")
        print("apt-get install beside dpkg's lock held for 3 s: done after \(Int(waited)) ms")
    }

    @Test("apt's lists locked by another apt-get update: a plain apt-get update fails at once; the suite's tries again until it is free")
    func listsLockWaited() async throws {
        // No sources: the update only takes the lock and fetches nothing.
        let update = ["-o", "Dir::Etc::SourceList=/dev/null", "-o", "Dir::Etc::SourceParts=/nonexistent", "update"]
        let fd = try await AptLock.hold("/var/lib/apt/lists/lock")
        let plain = try await Command.run(["apt-get", "-q"] + update, environment: Apt.environment)
        #expect(!plain.succeeded && Apt.heldByAnother(plain), "\(plain.stdout) \(plain.stderr)")
        let released = release(fd, after: 3000)
        let t0 = Clock.nowMs()
        let result = try await Apt.run(update, retryMs: 500)
        let waited = Clock.nowMs() - t0
        try await released.value
        #expect(result.succeeded, "\(result.stdout) \(result.stderr)")
        #expect(waited >= 2500, "apt-get update returned after \(Int(waited)) ms, before the lock was free")
    }

    @Test("a failure that is not a lock is not tried again")
    func otherFailuresAtOnce() async throws {
        let t0 = Clock.nowMs()
        let result = try await Apt.run(["-y", "install", "hm-no-such-package"])
        #expect(!result.succeeded && !Apt.heldByAnother(result))
        #expect(Clock.nowMs() - t0 < Double(Apt.lockWait) * 1000 / 2)
    }
}
