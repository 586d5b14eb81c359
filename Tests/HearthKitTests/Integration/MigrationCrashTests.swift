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

/// Issue 6: the postmaster killed (SIGKILL) while `hm-migrate up` is inside a revision's
/// transaction. On a cluster of its own (the shared one must not crash under other tests).
@Suite("migrations: the server killed in the middle of a revision (integration, real PostgreSQL 15)")
struct MigrationCrashTests {
    /// A revision that creates a table, then waits for a lock the test holds on `gate`.
    static let blockingRevision = """
        -- test-only: waits for the lock the test holds on gate
        CREATE TABLE killed_half (n bigint);
        LOCK TABLE public.gate IN ACCESS SHARE MODE;
        INSERT INTO killed_half VALUES (1);
        """

    @Test("kill -9 of the postmaster mid-revision: after a restart the database is at the previous revision with nothing of it; up converges, applying it once")
    func killedMidRevision() async throws {
        let cluster = try await TestCluster.start()
        defer { cluster.stop() }
        #expect(FileSystem.exists(MigrationFixtures.hmMigrate), "build first: swift build --build-tests")
        let db = try ScratchDatabase.make(cluster, owner: ScratchDatabase.aiOwner())
        let dir = try MigrationFixtures.copy([
            "0009_killed.up.sql": Self.blockingRevision,
            "0009_killed.down.sql": "DROP TABLE killed_half;\n",
        ])
        defer { TestFiles.removeTree(dir) }
        let work = TestFiles.temporaryDirectory("hm-migcrash")
        defer { TestFiles.removeTree(work) }
        try db.writeConfig(work + "/hm.env")
        let argv = [MigrationFixtures.hmMigrate, "up", "--config", work + "/hm.env", "--database", db.name,
                    "--migrations", dir, "--socket-dir", cluster.socketDirectory]
        let env: [String: String?] = ["HEARTHMINDS_LOG": work + "/log.jsonl", "HEARTHMINDS_LOCK_DIR": work + "/lock"]

        let set = try MigrationFixtures.set(dir)
        try db.migrator(set).upgrade(to: "0008")
        try db.connect().execute("CREATE TABLE public.gate (); GRANT SELECT ON public.gate TO PUBLIC")

        // The holder keeps the revision waiting on its lock; the runner is a separate process.
        let holder = try db.connect()
        try holder.execute("BEGIN")
        try holder.execute("LOCK TABLE public.gate IN ACCESS EXCLUSIVE MODE")
        async let killed = Command.run(argv, environment: env)
        var waiting = "0"
        for _ in 0..<300 where waiting == "0" {  // up to 30 s for the process to start and block
            try await Task.sleep(for: .milliseconds(100))
            waiting = try db.scalar(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
                    + "AND wait_event_type = 'Lock' AND query LIKE '%LOCK TABLE public.gate IN ACCESS SHARE%'") ?? "?"
        }
        #expect(waiting == "1", "the runner never waited inside revision 0009")
        // Inside the revision's transaction: its table exists there, uncommitted.
        #expect(try !db.exists("killed_half"))

        let pidText = try FileSystem.readText(cluster.dataDirectory + "/postmaster.pid")
        let pid = try #require(pid_t(pidText.split(separator: "\n").first.map(String.init) ?? ""))
        #expect(Glibc.kill(pid, SIGKILL) == 0)
        let result = try await killed
        #expect(result.status != 0, "hm-migrate survived the kill: \(result.stdout)")
        #expect((result.stdout + result.stderr).contains("0009_killed.up.sql"), "\(result.stdout)\(result.stderr)")
        for _ in 0..<100 where Glibc.kill(pid, 0) == 0 { usleep(50_000) }

        // Every backend exits with the postmaster; the cluster starts again (crash recovery).
        let startArgv = [cluster.binDirectory + "/pg_ctl", "-D", cluster.dataDirectory, "-l",
                         cluster.directory + "/server.log", "-w", "start"]
        var started = try await Command.run(startArgv, asUser: cluster.postgres)
        for _ in 0..<50 where !started.succeeded {
            try await Task.sleep(for: .milliseconds(200))
            started = try await Command.run(startArgv, asUser: cluster.postgres)
        }
        #expect(started.succeeded, "\(started.stdout)\(started.stderr)")

        #expect(try db.migrator(set).currentRevision() == "0008")
        #expect(try !db.exists("killed_half"))
        #expect(try db.migrator(set).history().filter { $0.revision == "0009" }.isEmpty)

        let rerun = try await Command.run(argv, environment: env)
        #expect(rerun.status == 0, "\(rerun.stdout)\(rerun.stderr)")
        #expect(try db.migrator(set).currentRevision() == "0009")
        #expect(try db.scalar("SELECT count(*) FROM killed_half") == "1")
        #expect(try db.migrator(set).history().filter { $0.revision == "0009" && $0.direction == "up" }.count == 1)
        #expect(try db.scalar("SELECT count(*) FROM alembic_version") == "1")
    }
}
