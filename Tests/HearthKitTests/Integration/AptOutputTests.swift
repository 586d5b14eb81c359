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

/// Text that is not apt's own lock error must not make `Apt` wait: a mirror's HTTP reason phrase
/// (whoever answers for the mirror: the network on plain http, a local user on a freed proxy
/// port), or what a maintainer script printed (pg_ctlcluster prints the cluster's log, the
/// postgres account's file, when a server does not start). Private lists and cache directories:
/// this host's apt is not touched.
@Suite("apt-get's output: only apt's own lock errors are waited on (integration, private apt directories)")
struct AptOutputTests {
    /// Answers every HTTP request on 127.0.0.1 with `status` and `reason`, on a thread of its own,
    /// until the process ends (the listening socket is closed by `stop`).
    final class HostileMirror: @unchecked Sendable {
        let fd: Int32
        let port: Int
        let response: [UInt8]

        init(status: Int, reason: String) throws {
            response = Array("HTTP/1.1 \(status) \(reason)\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".utf8)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            self.fd = fd
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                    bind(fd, pointer, length) == 0 && listen(fd, 16) == 0
                        && getsockname(fd, pointer, &length) == 0
                }
            }
            guard bound else { throw Failure("hostile mirror: \(FileSystem.errnoText())") }
            port = Int(UInt16(bigEndian: address.sin_port))
            var thread = pthread_t()
            let context = Unmanaged.passRetained(self).toOpaque()
            guard pthread_create(&thread, nil, { raw in
                let mirror = Unmanaged<HostileMirror>.fromOpaque(raw!).takeRetainedValue()
                mirror.serve()
                return nil
            }, context) == 0 else { throw Failure("hostile mirror: no thread") }
            pthread_detach(thread)
        }

        func serve() {
            while true {
                let client = accept(fd, nil, nil)
                guard client >= 0 else { return }
                var buffer = [UInt8](repeating: 0, count: 4096)
                _ = read(client, &buffer, buffer.count)
                _ = response.withUnsafeBytes { write(client, $0.baseAddress, $0.count) }
                close(client)
            }
        }

        func stop() { shutdown(fd, Int32(SHUT_RDWR)) }
    }

    /// apt-get's options for lists and cache of `work`'s own, with `sources` as its only sources.
    func privateApt(_ work: String, sources: String) throws -> [String] {
        for directory in ["lists", "lists/partial", "cache", "cache/archives", "cache/archives/partial"] {
            guard mkdir(work + "/" + directory, 0o755) == 0 else { throw Failure("mkdir: \(FileSystem.errnoText())") }
        }
        try FileSystem.writeAtomically(work + "/sources.list", sources, mode: 0o644)
        return PgvectorInstaller.temporaryAptOptions(work: work)
    }

    @Test("a mirror whose HTTP reason phrase reads like a lock: apt-get update fails, and is not tried again for 5 minutes")
    func mirrorReasonPhrase() async throws {
        let reason = "Could not get lock /var/lib/apt/lists/lock. It is held by process 1 (apt-get)"
        let mirror = try HostileMirror(status: 503, reason: reason)
        defer { mirror.stop() }
        let work = TestFiles.temporaryDirectory("hm-aptmirror")
        defer { TestFiles.removeTree(work) }
        // Straight to the mirror, whatever proxy the operator's environment names.
        let options = try privateApt(work, sources: "deb [trusted=yes] http://127.0.0.1:\(mirror.port)/debian bookworm main\n")
            + ["-o", "Acquire::http::Proxy::127.0.0.1=DIRECT"]
        let plain = try await Command.run(Apt.argv(options + ["update"]), environment: Apt.environment)
        #expect(!plain.succeeded && (plain.stdout + plain.stderr).contains(reason), "\(plain.stdout) \(plain.stderr)")
        try #require(!Apt.heldByAnother(plain), "\(plain.stderr)")
        let t0 = Clock.nowMs()
        let result = try await Apt.run(options + ["update"])
        #expect(!result.succeeded)
        #expect(Clock.nowMs() - t0 < 30_000, "apt-get update retried for \(Int(Clock.nowMs() - t0)) ms")
    }

    @Test("apt's own lock error (a lock of its lists another process holds) is still waited on")
    func ownLockError() async throws {
        let work = TestFiles.temporaryDirectory("hm-aptlock")
        defer { TestFiles.removeTree(work) }
        let options = try privateApt(work, sources: "")
        let fd = try await AptLock.hold(work + "/lists/lock")
        defer { close(fd) }
        let plain = try await Command.run(Apt.argv(options + ["update"]), environment: Apt.environment)
        #expect(!plain.succeeded && Apt.heldByAnother(plain), "\(plain.stdout) \(plain.stderr)")
    }

    @Test("dpkg's lock held past the deadline: apt's own wait is what is left of it, not 5 minutes more")
    func dpkgWaitEndsByDeadline() async throws {
        let work = TestFiles.temporaryDirectory("hm-aptdeadline")
        defer { TestFiles.removeTree(work) }
        let options = try privateApt(work, sources: "")
        // A dpkg database of this test's (its lock-frontend beside its status file).
        try FileSystem.writeAtomically(work + "/status", "", mode: 0o644)
        let fd = try await AptLock.hold(work + "/lock-frontend")
        defer { close(fd) }
        let t0 = Clock.nowMs()
        let result = try await Apt.run(
            options + ["-o", "Dir::State::status=\(work)/status", "-y", "install", "bash"], deadline: t0 + 3000)
        let took = Clock.nowMs() - t0
        #expect(!result.succeeded && Apt.heldByAnother(result), "\(result.stdout) \(result.stderr)")
        #expect(took >= 1500 && took < 20_000, "apt-get returned after \(Int(took)) ms (deadline 3000 ms)")
    }

    @Test("what dpkg's maintainer scripts printed, and a lock file apt cannot open, are no lock another process holds")
    func notLocks() {
        // A server's postinst failed: pg_ctlcluster printed the cluster's log (the postgres
        // account writes it), then apt said dpkg failed.
        let postinst = CommandResult(
            command: "apt-get install postgresql-15", status: 100,
            stdout: "Setting up postgresql-15 (15.14-0+deb12u1) ...\n",
            stderr: "The PostgreSQL server failed to start. Please check the log output:\n"
                + "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 1 (apt-get)\n"
                + "E: Unable to lock directory /var/lib/apt/lists/\n"
                + "dpkg: error processing package postgresql-15 (--configure):\n"
                + " installed postgresql-15 package post-installation script subprocess returned error exit status 1\n"
                + "E: Sub-process /usr/bin/dpkg returned an error code (1)\n")
        #expect(!Apt.heldByAnother(postinst))
        // Not root (or an open refused otherwise): nobody holds it, waiting changes nothing.
        let denied = CommandResult(
            command: "apt-get update", status: 100, stdout: "Reading package lists...\n",
            stderr: "E: Could not open lock file /var/lib/apt/lists/lock - open (13: Permission denied)\n"
                + "E: Unable to lock directory /var/lib/apt/lists/\n")
        #expect(!Apt.heldByAnother(denied))
        // Lock text on standard output only (apt's errors go to standard error).
        let stdoutOnly = CommandResult(
            command: "apt-get update", status: 100,
            stdout: "Err:4 http://m/debian bookworm/main amd64 Packages\n  503  Could not get lock /x. It is held by process 1 (a)\n",
            stderr: "E: Some index files failed to download. They have been ignored, or old ones used instead.\n")
        #expect(!Apt.heldByAnother(stdoutOnly))
        // apt's own, as apt 2.6 words them.
        for stderr in [
            "E: Could not get lock /var/lib/dpkg/lock-frontend. It is held by process 4242 (unattended-upgr)\n"
                + "E: Unable to acquire the dpkg frontend lock (/var/lib/dpkg/lock-frontend), is another process using it?\n",
            "E: Could not get lock /var/cache/apt/archives/lock. It is held by process 4242 (apt-get)\n"
                + "E: Unable to lock directory /var/cache/apt/archives/\n",
            "E: Could not get lock /var/lib/apt/lists/lock - open (11: Resource temporarily unavailable)\n"
                + "E: Unable to lock directory /var/lib/apt/lists/\n",
        ] {
            #expect(Apt.heldByAnother(CommandResult(command: "apt-get", status: 100, stdout: "", stderr: stderr)), "\(stderr)")
        }
    }
}
