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

/// Issue 21, A, D and G's first half: what a tenant's database holds is read by root's
/// processes only within bounds the server enforces, and what reaches the log is bounded; a
/// run that cannot write its log is not true.
extension HostileTenantTests {
    /// The migrations step and verify, run with a log of their own; the outcome, the seconds it
    /// took, the bytes the log grew by, and its text.
    static func loggedRun(_ host: Host, _ step: Step) async throws -> (StepRunner.Outcome, Double, Int, String) {
        let directory = TestFiles.temporaryDirectory("hm-hostile-reads")
        defer { TestFiles.removeTree(directory) }
        let log = try JSONLog(path: directory + "/log.jsonl")
        let started = Clock.nowMs()
        let outcome = await StepRunner(console: Console(colour: false), log: log, runID: "reads", dryRun: false).run(step)
        let seconds = (Clock.nowMs() - started) / 1000
        let text = try FileSystem.readText(directory + "/log.jsonl")
        return (outcome, seconds, text.utf8.count, text)
    }

    static func migrationsStep(_ host: Host) -> Step {
        MigrationsStep.make(
            host.config, directory: host.migrations, socketDirectory: host.s.cluster.socketDirectory,
            clientDirectory: host.s.clientDirectory)
    }

    static func verifyStep(_ host: Host) -> Step {
        VerifyStep.make(host.config, server: host.s.server, migrations: host.migrations, clientDirectory: host.s.clientDirectory)
    }

    /// Both steps end in seconds, false, naming logos_db and `cause`, the log growing by less
    /// than 64 KiB; hm-migrate current and history alike.
    func expectBoundedFalse(_ host: Host, _ cause: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        for (name, step) in [("migrations", Self.migrationsStep(host)), ("verify", Self.verifyStep(host))] {
            let (outcome, seconds, grown, text) = try await Self.loggedRun(host, step)
            #expect(outcome.status == ExitStatus.failed, "\(name)", sourceLocation: sourceLocation)
            #expect(seconds < 20, "\(name) took \(seconds) s", sourceLocation: sourceLocation)
            #expect(grown < 64 * 1024, "\(name): the log grew by \(grown) bytes", sourceLocation: sourceLocation)
            #expect(text.contains("logos_db") && text.contains(cause), "\(name): \(text.prefix(2000))", sourceLocation: sourceLocation)
        }
        let started = Clock.nowMs()
        do {
            _ = try host.migrator("logos_db").status()
            Issue.record("hm-migrate current read the plant", sourceLocation: sourceLocation)
        } catch {
            #expect("\(error)".contains("logos_db") && "\(error)".contains(cause), "\(error)", sourceLocation: sourceLocation)
            #expect("\(error)".utf8.count < 8192, sourceLocation: sourceLocation)
        }
        #expect(Clock.nowMs() - started < 20_000, "hm-migrate current", sourceLocation: sourceLocation)
        try host.expectNoEscalation("bounded reads")
    }

    @Test("an AI widens alembic_version and writes a revision id of 1 MiB: the steps and hm-migrate current are false in seconds naming it, the log grows by little; without it the host converges")
    func longRevisionId() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        let head = try #require(try host.migrator("logos_db").status().current)
        try host.tenant("logos_db").execute(
            """
            ALTER TABLE alembic_version DROP CONSTRAINT alembic_version_pkc;
            ALTER TABLE alembic_version ALTER version_num TYPE text;
            UPDATE alembic_version SET version_num = repeat(E'\\x01', 1024*1024);
            """)
        try await expectBoundedFalse(host, "version_num is 1048576 bytes, longer than a revision id")
        // The plant removed: the host converges.
        try host.tenant("logos_db").execute("UPDATE alembic_version SET version_num = '\(head)'")
        #expect(try await Self.loggedRun(host, Self.migrationsStep(host)).0.status == 0)
        #expect(try await Self.loggedRun(host, Self.verifyStep(host)).0.status == 0)
    }

    @Test("an AI fills its migration history (more rows than the bound, long revisions): the steps and hm-migrate current are false in seconds naming it; without it the host converges")
    func hugeHistory() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        try host.tenant("logos_db").execute(
            """
            ALTER TABLE hearthminds_migration_history ALTER revision TYPE text;
            INSERT INTO hearthminds_migration_history (revision, direction)
                SELECT repeat('x', 300) || g, 'up' FROM generate_series(1, \(MigrationState.historyRows + 50_000)) g;
            """)
        try await expectBoundedFalse(host, "hearthminds_migration_history holds more than \(MigrationState.historyRows) rows")
        do {
            _ = try host.migrator("logos_db").history()
            Issue.record("hm-migrate history --applied read the plant")
        } catch {
            #expect("\(error)".contains("logos_db"), "\(error)")
        }
        try host.tenant("logos_db").execute("DELETE FROM hearthminds_migration_history WHERE revision LIKE 'xxx%'")
        #expect(try await Self.loggedRun(host, Self.migrationsStep(host)).0.status == 0)
        #expect(try await Self.loggedRun(host, Self.verifyStep(host)).0.status == 0)
    }

    @Test("the log's file system is full: the step and hm-migrate say so on standard error and exit 1, not 0")
    func logCannotBeWritten() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        let work = TestFiles.temporaryDirectory("hm-hostile-fulllog")
        defer { TestFiles.removeTree(work) }
        let full = work + "/log"
        try await Hostile.asRoot("mkdir -m 750 \(full)")
        // The tests run in a private mount namespace (Tests/private-host.sh).
        try await Command.check(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", full])
        defer { DebianTestClusters.spawnAndWait(["/usr/bin/umount", full]) }
        try await Hostile.asRoot("touch \(full)/log.jsonl; dd if=/dev/zero of=\(full)/filler bs=4k 2>/dev/null; true")
        let log = try JSONLog(path: full + "/log.jsonl")
        let outcome = await StepRunner(console: Console(colour: false), log: log, runID: "full", dryRun: false)
            .run(Self.migrationsStep(host))
        #expect(outcome.status == ExitStatus.failed)
        #expect(log.failure?.contains("No space left on device") == true, "\(log.failure ?? "no failure")")

        try FileSystem.writeAtomically(
            work + "/hearthminds.env",
            "HEARTHMINDS_SERVICE_USER=\(host.s.serviceUser)\nPOSTGRES_PORT=\(host.s.cluster.port)\nAI_NAMES=logos,aletheia\n"
                + "LOGOS_PASSWORD=\(HostileTenantTests.logosPassword)\n", mode: 0o600, uid: 0, gid: 0)
        let result = try await Command.run(
            [
                Hostile.executable("migrate"), "up", "--database", "logos_db", "--config", work + "/hearthminds.env",
                "--socket-dir", host.s.cluster.socketDirectory, "--migrations", host.migrations,
            ],
            environment: ["HEARTHMINDS_LOCK_DIR": work + "/run", "HEARTHMINDS_LOG": full + "/log.jsonl"])
        #expect(result.status == ExitStatus.failed, "\(result.stdout)\(result.stderr)")
        #expect(result.stderr.contains("cannot write the log"), "\(result.stderr)")
    }
}
