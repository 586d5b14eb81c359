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

/// pgvector against real PostgreSQL 15: the extension `make setup` installed (by
/// `hm-pgvector --install-only`) in a throwaway cluster, and the step's checks pointed at it.
@Suite("pgvector (integration, real PostgreSQL 15)", .serialized)
struct PgvectorStepTests {
    func config(_ text: String = "") throws -> HearthConfig {
        try loadConfig("PG_VERSION=15\n" + text)
    }

    func runner(dryRun: Bool = false) -> StepRunner {
        StepRunner(console: Console(colour: false), log: nil, runID: "test", dryRun: dryRun)
    }

    func installedVersion() throws -> String {
        let installer = PgvectorInstaller(try config())
        guard let version = installer.installedVersion() else {
            Issue.record("pgvector is not installed for PostgreSQL 15 (\(installer.controlFile)): run `sudo make setup`")
            throw Failure("pgvector not installed")
        }
        return version
    }

    @Test("a throwaway cluster can CREATE EXTENSION vector and order vector(3) rows by <=>")
    func extensionWorks() async throws {
        let version = try installedVersion()
        let cluster = try await TestCluster.shared()
        let admin = try cluster.connect()
        let database = "hm_vec_\(Int.random(in: 100000..<999999))"
        try admin.execute("CREATE DATABASE \(try admin.identifier(database))")
        defer { try? admin.execute("DROP DATABASE IF EXISTS \(try admin.identifier(database)) WITH (FORCE)") }
        do {
            let db = try cluster.connect(database: database)
            try db.execute("""
                CREATE EXTENSION vector;
                CREATE TABLE items (name text PRIMARY KEY, embedding vector(3));
                INSERT INTO items VALUES ('x', '[1,0,0]'), ('y', '[0,1,0]'), ('xy', '[1,1,0]');
                """)
            #expect(try db.query("SELECT extversion FROM pg_extension WHERE extname = 'vector'").scalar == version)
            let nearest = try db.query("SELECT name FROM items ORDER BY embedding <=> $1::vector(3) LIMIT 3", ["[1,0.1,0]"])
            #expect(nearest.rows.map { $0[0] } == ["x", "xy", "y"])
            let distance = try db.query("SELECT round(('[1,0,0]'::vector(3) <=> '[0,1,0]'::vector(3))::numeric, 3)").scalar
            #expect(distance == "1.000")
            // The column's dimension is enforced.
            expectFailure(.database) { try db.execute("INSERT INTO items VALUES ('bad', '[1,2]')") }
        }
    }

    @Test("the step against a real cluster: true, nothing changed; a dry run too; no scratch database left")
    func stepConverged() async throws {
        _ = try installedVersion()
        let cluster = try await TestCluster.shared()
        let target = PGServer(socketDirectory: cluster.socketDirectory, port: cluster.port)
        let step = PgvectorStep.make(try config(), server: target)
        // the server installed, pgvector installed, the server still the installed one, offers, creates,
        #expect(step.actions.count == 6)  // ..., and vector at the installed version in our databases

        let started = Clock.nowMs()
        let run = await runner().run(step)
        let ms = Clock.nowMs() - started
        #expect(run.status == ExitStatus.ok && run.changed == 0 && run.failedAction == nil)
        #expect(ms < 5000, "a converged run must be cheap (took \(ms) ms)")

        let dry = await runner(dryRun: true).run(PgvectorStep.make(try config(), server: target))
        #expect(dry.status == ExitStatus.ok && dry.pending == 0 && dry.changed == 0)

        let left = try cluster.connect().query(
            "SELECT count(*) FROM pg_database WHERE datname = $1", [PgvectorStep.scratchDatabase]).scalar
        #expect(left == "0")
    }

    @Test("--install-only: the install actions only, converged here")
    func installOnly() async throws {
        _ = try installedVersion()
        let step = PgvectorStep.make(try config(), installOnly: true)
        #expect(step.actions.count == 2)
        let run = await runner().run(step)
        #expect(run.status == ExitStatus.ok && run.changed == 0)
    }

    @Test("a cluster that does not answer is a false result naming the check")
    func noCluster() async throws {
        _ = try installedVersion()
        let directory = TestFiles.temporaryDirectory("hm-pgv-nocluster")
        defer { TestFiles.removeTree(directory) }
        try FileSystem.setOwner(directory, uid: 0, gid: 0, mode: 0o755)
        let target = PGServer(socketDirectory: directory, port: TestCluster.freePort())
        let run = await runner().run(PgvectorStep.make(try config(), server: target))
        #expect(run.status == ExitStatus.failed)
        // (the first check that connects: the server runs the installed PostgreSQL)
        #expect(run.failedAction?.contains("runs the installed PostgreSQL") == true, "\(run.failedAction ?? "")")
    }

    @Test("the scratch check fails on a version other than the installed one, and drops its database")
    func scratchMismatch() async throws {
        _ = try installedVersion()
        let cluster = try await TestCluster.shared()
        let target = PGServer(socketDirectory: cluster.socketDirectory, port: cluster.port)
        expectFailure(.hostWrong) {
            try PgvectorStep.createExtensionInScratchDatabase(target, expecting: "0.0.1")
        }
        let left = try cluster.connect().query(
            "SELECT count(*) FROM pg_database WHERE datname = $1", [PgvectorStep.scratchDatabase]).scalar
        #expect(left == "0")
    }

    @Test("the CREATE EXTENSION check is rolled back: no vector left in postgres, no database made")
    func checkRolledBack() async throws {
        let version = try installedVersion()
        let cluster = try await TestCluster.start()
        defer { cluster.stop() }
        let target = PGServer(socketDirectory: cluster.socketDirectory, port: cluster.port)
        let before = try cluster.connect().query("SELECT count(*) FROM pg_database").scalar
        #expect(try PgvectorStep.createExtensionInScratchDatabase(target, expecting: version))
        expectFailure(.hostWrong) {
            try PgvectorStep.createExtensionInScratchDatabase(target, expecting: "0.0.1")
        }
        let admin = try cluster.connect()
        #expect(try admin.query("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").scalar == "0")
        #expect(try admin.query("SELECT count(*) FROM pg_database").scalar == before)
    }

    @Test("where postgres has vector already, the check uses a scratch database and drops it; a dry run makes and drops none (the proof is unknown); a database of that name that is not the suite's is never dropped; one a cut left before its comment is")
    func checkScratchDatabase() async throws {
        let version = try installedVersion()
        let cluster = try await TestCluster.start()
        defer { cluster.stop() }
        let target = PGServer(socketDirectory: cluster.socketDirectory, port: cluster.port)
        let admin = try cluster.connect()
        try admin.execute("CREATE EXTENSION vector")
        #expect(try PgvectorStep.createExtensionInScratchDatabase(target, expecting: version))
        expectFailure(.hostWrong) {
            try PgvectorStep.createExtensionInScratchDatabase(target, expecting: "0.0.1")
        }
        let left = try admin.query(
            "SELECT count(*) FROM pg_database WHERE datname = $1", [PgvectorStep.scratchDatabase]).scalar
        #expect(left == "0")
        #expect(try admin.query("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").scalar == "1")

        let databases = { try admin.query("SELECT string_agg(datname || ':' || oid, ',' ORDER BY datname) FROM pg_database").scalar }
        let before = try databases()

        // The dry run: the database list unchanged (no CREATE, no DROP; OIDs compared), unknown.
        let dry = await runner(dryRun: true).run(PgvectorStep.make(try config(), server: target))
        #expect(dry.status == ExitStatus.ok && dry.unknown == 1, "\(dry)")
        #expect(try databases() == before)

        // An operator's database of that name: the check is false, and the database stays.
        try admin.execute("CREATE DATABASE \(PgvectorStep.scratchDatabase)")
        try admin.execute("COMMENT ON DATABASE \(PgvectorStep.scratchDatabase) IS 'the operator''s'")
        #expect { try PgvectorStep.createExtensionInScratchDatabase(target, expecting: version) } throws: {
            "\($0)".contains("not the suite's scratch database")
        }
        #expect(try admin.query("SELECT count(*) FROM pg_database WHERE datname = $1", [PgvectorStep.scratchDatabase]).scalar == "1")
        try admin.execute("DROP DATABASE \(PgvectorStep.scratchDatabase)")

        // What a cut between the suite's CREATE and its COMMENT leaves: taken as the suite's.
        try admin.execute(
            "CREATE DATABASE \(PgvectorStep.scratchDatabase) TEMPLATE template0 CONNECTION LIMIT \(PgvectorStep.scratchConnectionLimit)")
        #expect(try PgvectorStep.createExtensionInScratchDatabase(target, expecting: version))
        #expect(try admin.query("SELECT count(*) FROM pg_database WHERE datname = $1", [PgvectorStep.scratchDatabase]).scalar == "0")
    }

    @Test("tarball: a PGVECTOR_SHA256 mismatch is refused before anything is extracted; a match is accepted")
    func tarballDigest() async throws {
        let directory = TestFiles.temporaryDirectory("hm-pgv-tarball")
        defer { TestFiles.removeTree(directory) }
        let archive = directory + "/pgvector.tar.gz"
        try FileSystem.writeAtomically(archive, "not really a tarball\n")
        let digest = try await sha256sum(archive)
        let wrong = String(repeating: "0", count: 64)

        let refused = PgvectorInstaller(
            try config("PGVECTOR_INSTALL_METHOD=tarball\nPGVECTOR_SOURCE=\(archive)\nPGVECTOR_SHA256=\(wrong)"))
        do {
            _ = try await refused.fetchVerifiedTarball(into: directory)
            Issue.record("a wrong digest was accepted")
        } catch let error as Failure where error.kind == .error {
            #expect(error.message.contains("PGVECTOR_SHA256") && error.message.contains(digest))
        }
        // The same error from the step's install, and nothing extracted into a work directory.
        await expectFailureAsync(.error) { _ = try await refused.install() }
        #expect(try FileSystem.list(directory) == ["pgvector.tar.gz"])

        let accepted = PgvectorInstaller(
            try config("PGVECTOR_INSTALL_METHOD=tarball\nPGVECTOR_SOURCE=\(archive)\nPGVECTOR_SHA256=\(digest)"))
        let copy = try await accepted.fetchVerifiedTarball(into: directory)
        // What is hashed and extracted is a copy in the work directory, not the original.
        #expect(copy == directory + "/pgvector.tar")
        #expect(try FileSystem.readText(copy) == "not really a tarball\n")

        let missing = PgvectorInstaller(
            try config("PGVECTOR_INSTALL_METHOD=tarball\nPGVECTOR_SOURCE=\(directory)/nothing.tar.gz\nPGVECTOR_SHA256=\(digest)"))
        await expectFailureAsync(.error) { _ = try await missing.fetchVerifiedTarball(into: directory) }
    }

    @Test("tarball: PGVECTOR_SOURCE is copied first, and the copy is hashed and extracted: the original swapped afterwards changes nothing")
    func tarballCopiedFirst() async throws {
        let directory = TestFiles.temporaryDirectory("hm-pgv-toctou")
        defer { TestFiles.removeTree(directory) }
        let work = directory + "/work"
        try FileSystem.makeDirectories(work, mode: 0o755)
        let archive = directory + "/pgvector.tar.gz"
        try FileSystem.writeAtomically(archive, "the tarball that was pinned\n")
        let digest = try await sha256sum(archive)
        let installer = PgvectorInstaller(
            try config("PGVECTOR_INSTALL_METHOD=tarball\nPGVECTOR_SOURCE=\(archive)\nPGVECTOR_SHA256=\(digest)"))
        let verified = try await installer.fetchVerifiedTarball(into: work)
        #expect(verified.hasPrefix(work + "/"))
        // The original swapped after the hash: what the
        // build extracts, the returned copy, is still what was hashed.
        try FileSystem.writeAtomically(archive, "a swapped tarball\n")
        #expect(try FileSystem.readText(verified) == "the tarball that was pinned\n")
        #expect(try await sha256sum(verified) == digest)
        let status = try #require(FileSystem.status(verified))
        #expect(status.uid == 0 && status.mode == 0o644)
        #expect(FileSystem.status(work)?.uid == 0)
    }

    @Test("debian-source: Debian's pgvector source package from the host's own mirror, built and staged (DESTDIR)")
    func debianSourceStaged() async throws {
        var installer = PgvectorInstaller(try config("PGVECTOR_INSTALL_METHOD=debian-source"))
        let stage = TestFiles.temporaryDirectory("hm-pgv-stage")
        defer { TestFiles.removeTree(stage) }
        installer.destDir = stage
        #expect(installer.installedVersion() == nil)
        let suiteLists = { try FileSystem.list("/var/lib/apt/lists").filter { $0.contains("_dists_trixie_") } }
        let listsBefore = try suiteLists()
        let sourcesBefore = try FileSystem.list("/etc/apt/sources.list.d")
        let workDirectories = { Set(try FileSystem.list("/tmp").filter { $0.hasPrefix("hm-pgvector-") }) }
        let workBefore = try workDirectories()

        let started = Clock.nowMs()
        let installed = try await installer.install()
        print("debian-source fetch + build + staged install: \(Int(Clock.nowMs() - started)) ms, pgvector \(installed.version)")
        #expect(installed.method == .debianSource)
        #expect(installer.installedVersion() == installed.version)
        #expect(FileSystem.exists(stage + "/usr/share/postgresql/15/extension/vector--\(installed.version).sql"))

        // The host's apt configuration and lists are as they were; the work directory is gone.
        #expect(try suiteLists() == listsBefore)
        #expect(try FileSystem.list("/etc/apt/sources.list.d") == sourcesBefore)
        // (compared with before: another process on the machine may have a work directory of its own)
        #expect(try workDirectories().subtracting(workBefore).isEmpty)
    }
    /// `hello` (Debian main, no dependencies beyond libc) stands for the build's packages.
    static let probePackage = "hello"

    func probeInstalled() async throws -> Bool {
        try await DpkgPackages.current().installed.contains(Self.probePackage)
    }

    func installProbe() async throws {
        try await Apt.install([Self.probePackage])
    }

    @Test("a build's packages are removed again, exactly: after it worked and after it failed; what was there stays")
    func buildPackagesRemoved() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let installer = PgvectorInstaller(try config())
        let before = try await DpkgPackages.current()
        if before.installed.contains(Self.probePackage) {
            // Present before: a build that "installs" it must leave it.
            let installed = try await installer.building(.tarball, why: "test") {
                try await installProbe()
                return "0.0.0"
            }
            #expect(installed.removedBuildPackages.isEmpty)
            #expect(try await probeInstalled())
            return
        }
        let installed = try await installer.building(.tarball, why: "test") {
            try await installProbe()
            #expect(try await probeInstalled())
            return "0.0.0"
        }
        #expect(installed.removedBuildPackages == [Self.probePackage])
        #expect(try await DpkgPackages.current().installed == before.installed)

        await expectFailureAsync(.error) {
            _ = try await installer.building(.tarball, why: "test") {
                try await installProbe()
                throw Failure("the build failed")
            }
        }
        #expect(try await DpkgPackages.current().installed == before.installed)
    }
}


/// coreutils' digest of a file: the tests check the suite's own hashing against it.
private func sha256sum(_ path: String) async throws -> String {
    String(try await Command.check(["sha256sum", "--", path]).prefix(64))
}
