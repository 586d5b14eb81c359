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

@Suite("dpkg's status file, read in process")
struct DpkgStatusTests {
    @Test("a package is installed when its stanza's Status is 'install ok installed'")
    func parse() {
        let text = """
            Package: libpq5
            Status: install ok installed
            Architecture: amd64

            Package: postgresql-15
            Status: deinstall ok config-files
            Architecture: amd64

            Package: postgresql-client-15
            Architecture: amd64
            Status: install ok installed
            Description: the client
             Package: not-a-stanza
            """
        #expect(
            DpkgStatus.parse(text, wanted: ["libpq5", "postgresql-15", "postgresql-client-15", "not-a-stanza", "nothing"])
                == ["libpq5", "postgresql-client-15"])
    }

    @Test("an interrupted dpkg's work: the journal, and every package not finished (what dpkg --audit reports)")
    func unfinished() throws {
        let directory = TestFiles.temporaryDirectory("hm-dpkg-audit")
        defer { TestFiles.removeTree(directory) }
        let status = """
            Package: done
            Status: install ok installed

            Package: held
            Status: hold ok installed

            Package: removed
            Status: deinstall ok config-files

            Package: unpacked
            Architecture: amd64
            Status: install ok unpacked

            Package: configuring
            Status: install ok half-configured

            Package: cut
            Status: install reinstreq half-installed

            Package: waiting
            Status: install ok triggers-pending
            Description: its trigger
             Status: install ok unpacked

            Package: gone
            Status: purge ok not-installed

            """
        try FileSystem.writeAtomically(directory + "/status", status)
        try FileSystem.makeDirectories(directory + "/updates")
        let clean = try #require(DpkgStatus.unfinished(directory: directory))
        #expect(!clean.journal)
        #expect(clean.packages == ["unpacked", "configuring", "cut", "waiting"])
        try FileSystem.writeAtomically(directory + "/updates/0003", "Package: done\nStatus: install ok installed\n\n")
        #expect(DpkgStatus.unfinished(directory: directory)?.journal == true)
        #expect(DpkgStatus.unfinished(directory: directory + "/none") == nil)
        try FileSystem.writeAtomically(directory + "/status", "Package: a\nStatus: install ok installed\n")
        #expect(DpkgStatus.unfinished(directory: directory)?.packages == [])
    }

    @Test("/proc/locks is read by the file's device and inode; a waiter is no holder")
    func procLocks() {
        let text = """
            1: POSIX  ADVISORY  WRITE 4242 fe:00:388779 0 EOF
            1: -> POSIX  ADVISORY  WRITE 77 fe:00:388780 0 EOF
            2: FLOCK  ADVISORY  WRITE 99 08:01:12 0 EOF
            3: POSIX  ADVISORY  WRITE 13 fe:00:388780 0 EOF
            """
        #expect(DpkgStatus.holder(locks: text, device: 0xfe00, inode: 388779) == 4242)
        #expect(DpkgStatus.holder(locks: text, device: 0xfe00, inode: 388780) == 13)
        #expect(DpkgStatus.holder(locks: text, device: 0x0801, inode: 12) == 99)
        #expect(DpkgStatus.holder(locks: text, device: 0x0801, inode: 388779) == nil)
    }

    @Test("a dpkg at work (another process holds dpkg's lock) is not an interrupted one: its half-installed packages are waited for, up to a deadline naming it")
    func dpkgAtWork() async throws {
        let directory = TestFiles.temporaryDirectory("hm-dpkg-busy")
        defer { TestFiles.removeTree(directory) }
        try FileSystem.writeAtomically(directory + "/status", "Package: a\nStatus: install ok unpacked\n\n")
        try FileSystem.writeAtomically(directory + "/lock-frontend", "")
        #expect(DpkgStatus.lockHolder(directory: directory) == nil)
        // Another process takes the lock as dpkg does (fcntl), for a few seconds.
        let task = Task {
            try await Command.run(
                ["python3", "-c",
                 "import fcntl,os,sys,time; fd=os.open(sys.argv[1], os.O_RDWR); fcntl.lockf(fd, fcntl.LOCK_EX); "
                    + "open(sys.argv[2], 'w').close(); t=time.time()\n"
                    + "while not os.path.exists(sys.argv[3]) and time.time() - t < 120: time.sleep(0.05)",
                 directory + "/lock-frontend", directory + "/held2", directory + "/release"])
        }
        // (up to 60 s for python3 to start and take it: a loaded CI machine took more than 5)
        for _ in 0..<1200 where !FileSystem.exists(directory + "/held2") { try await Task.sleep(nanoseconds: 50_000_000) }
        try #require(FileSystem.exists(directory + "/held2"), "the helper never took the lock")
        #expect(DpkgStatus.lockHolder(directory: directory) != nil)
        let refused = Clock.nowMs()
        await expectFailureAsync(.error) {
            _ = try await Apt.unfinished(directory: directory, deadline: Clock.nowMs() + 1500)
        }
        // (the holder keeps it until told: still held after the refusal)
        #expect(DpkgStatus.lockHolder(directory: directory) != nil, "refused after \(Int(Clock.nowMs() - refused)) ms")
        // Released a second from now, by a process of its own (the test's tasks may wait for the
        // cooperative pool on a loaded machine; the release must not).
        let argv = ["/bin/sh", "-c", "sleep 1; : > \"$0\"", directory + "/release"]
        let arguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        var releaser: pid_t = 0
        try #require(posix_spawn(&releaser, argv[0], nil, nil, arguments, environ) == 0)
        defer { waitpid(releaser, nil, 0) }
        let t0 = Clock.nowMs()
        let found = try await Apt.unfinished(directory: directory, deadline: Clock.nowMs() + 30_000)
        #expect(found?.packages == ["a"])
        #expect(Clock.nowMs() - t0 > 500, "it waited for the holder")
        _ = try await task.value
        #expect(DpkgStatus.lockHolder(directory: directory) == nil)
    }

    @Test("dpkg's lock held by another process is dpkg's own one-line error, never a maintainer script's output that mentions a lock")
    func dpkgLock() {
        func result(_ stderr: String, _ status: Int32 = 2) -> CommandResult {
            CommandResult(command: "dpkg", status: status, stdout: "", stderr: stderr)
        }
        // (as dpkg 1.21 says it, both locks)
        let note = "Note: removing the lock file is always wrong, can damage the locked area\nand the entire system. See <https://wiki.debian.org/Teams/Dpkg/FAQ#db-lock>.\n"
        #expect(Apt.dpkgLockedByAnother(result("dpkg: error: dpkg frontend lock was locked by another process with pid 4242\n" + note)))
        #expect(Apt.dpkgLockedByAnother(result("dpkg: error: dpkg database lock was locked by another process with pid 4242\n" + note)))
        // a maintainer script's output around it, or in its place: no
        #expect(!Apt.dpkgLockedByAnother(result("dpkg: error: dpkg frontend lock was locked by another process with pid 4242\n" + note + "more\n")))
        #expect(!Apt.dpkgLockedByAnother(result("dpkg: error: dpkg frontend lock was locked by another process with pid 42 (cluster x)\n" + note)))
        #expect(!Apt.dpkgLockedByAnother(result(
            "Setting up postgresql-15 ...\nError: cluster 15/lock held by another process\ndpkg: error processing package postgresql-15 (--configure):\n")))
        #expect(!Apt.dpkgLockedByAnother(result("dpkg: error: dpkg frontend lock was locked by another process with pid 1\n" + note, 0)))
    }

    @Test("the running server against the installed package: Debian's version in server_version, else upstream")
    func installedServer() {
        #expect(InstalledServer.difference(serverVersion: "15.18 (Debian 15.18-0+deb12u1)", installed: "15.18-0+deb12u1") == nil)
        #expect(
            InstalledServer.difference(serverVersion: "15.18 (Debian 15.18-0+deb12u1)", installed: "15.20-0+deb12u1")
                == "the server runs 15.18-0+deb12u1, but 15.20-0+deb12u1 is installed")
        #expect(
            InstalledServer.difference(serverVersion: "15.5 (Debian 15.5-1.pgdg120+1)", installed: "15.5-1.pgdg120+2") != nil)
        #expect(InstalledServer.difference(serverVersion: "15.18", installed: "15.18-0+deb12u1") == nil)
        #expect(InstalledServer.difference(serverVersion: "15.17", installed: "1:15.18-0+deb12u1") != nil)
    }

    @Test("pending journal entries: no answer (dpkg-query decides); a missing database: no answer")
    func pending() throws {
        let directory = TestFiles.temporaryDirectory("hm-dpkg")
        defer { TestFiles.removeTree(directory) }
        try FileSystem.writeAtomically(directory + "/status", "Package: a\nStatus: install ok installed\n\n")
        try FileSystem.makeDirectories(directory + "/updates")
        #expect(DpkgStatus.installed(["a", "b"], directory: directory) == ["a"])
        try FileSystem.writeAtomically(directory + "/updates/tmp.i", "")
        #expect(DpkgStatus.installed(["a"], directory: directory) == ["a"])
        try FileSystem.writeAtomically(directory + "/updates/0001", "Package: b\nStatus: install ok installed\n\n")
        #expect(DpkgStatus.installed(["a"], directory: directory) == nil)
        #expect(DpkgStatus.installed(["a"], directory: directory + "/none") == nil)
    }

    @Test("this host's status file says what dpkg-query says")
    func agreesWithDpkgQuery() async throws {
        let packages = ["libpq5", "postgresql-15", "postgresql-client-15", "bash", "hm-no-such-package", "postgresql-14"]
        let installed = try #require(DpkgStatus.installed(Set(packages)))
        for package in packages {
            let result = try await Command.run(["dpkg-query", "--show", "--showformat=${Status}", package])
            #expect(installed.contains(package) == (result.succeeded && result.stdout == "install ok installed"), "\(package)")
        }
    }
}
