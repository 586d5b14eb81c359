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

/// The reset step against real PostgreSQL 15 clusters: a throwaway cluster (databases and
/// roles), a real pg_createcluster cluster (--cluster) and a throwaway system account
/// (--service-user).
@Suite("reset step (integration, real PostgreSQL 15)", .serialized)
struct ResetStepTests {
    func reset(_ s: DatabasesScenario, _ config: HearthConfig, scope: ResetScope = ResetScope(), dryRun: Bool = false)
        async throws -> (StepRunner.Outcome, Double)
    {
        let runner = StepRunner(console: Console(colour: false), log: try JSONLog(path: s.logPath), runID: "r", dryRun: dryRun)
        let t0 = Clock.nowMs()
        let outcome = await runner.run(
            ResetStep.make(config, scope: scope, server: s.server, clientDirectory: s.clientDirectory))
        return (outcome, Clock.nowMs() - t0)
    }

    func names(_ db: PGConnection, _ sql: String) throws -> [String] {
        try db.query(sql).rows.compactMap { $0[0] }
    }

    @Test("destroys exactly ours (databases, roles, client files), keeps a foreign database and role; a rerun applies nothing; the databases step rebuilds")
    func destroysOursOnly() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos,aletheia")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let db = try s.admin()
        try s.admin("logos_db").execute("CREATE TABLE reset_marker (x int); INSERT INTO reset_marker VALUES (1)")
        // Not ours: a role, its database, a database of postgres's with a table in it.
        try db.execute("CREATE ROLE stranger LOGIN")
        try db.execute("CREATE DATABASE stranger_db OWNER stranger")
        try db.execute("CREATE DATABASE keep_me")
        try s.admin("keep_me").execute("CREATE TABLE kept (x int)")
        // A file beside the client files that is not the reset's (the host configuration).
        try FileSystem.writeAtomically(s.clientDirectory + "/hearthminds.env", "AI_NAMES=logos\n", mode: 0o600)

        let plan = ResetStep.plan(config, server: s.server, clientDirectory: s.clientDirectory)
        let listed = await plan.inventory()
        #expect(listed.contains { $0.hasPrefix("database logos_db (owner logos") })
        #expect(listed.contains("role \(s.serviceUser)"))
        #expect(listed.contains { $0.hasPrefix("client files ") })
        #expect(!listed.contains { $0.contains("stranger") || $0.contains("keep_me") || $0.contains("postgres") })
        #expect(listed.count == 3 + 4 + 1)

        let ourDatabases = "SELECT datname FROM pg_database WHERE datname IN ('hearthminds_db', 'logos_db', 'aletheia_db') ORDER BY 1"
        let ourRoles = "SELECT rolname FROM pg_roles WHERE rolname IN ('hearthminds', 'logos', 'aletheia', '\(s.serviceUser)')"
        let (dry, _) = try await reset(s, config, dryRun: true)
        #expect(dry.status == 0 && dry.changed == 0 && dry.pending == 8)
        #expect(try names(db, ourDatabases).count == 3)

        // A session in an AI database does not stop the reset (WITH (FORCE)).
        let session = try s.admin("aletheia_db")
        _ = session
        let (done, resetMs) = try await reset(s, config)
        #expect(done.status == 0, "failed at \(done.failedAction ?? "")")
        #expect(done.changed == 8)
        #expect(try names(db, ourDatabases).isEmpty)
        #expect(try names(db, ourRoles).isEmpty)
        #expect(try names(db, "SELECT datname FROM pg_database WHERE datname IN ('stranger_db', 'keep_me', 'postgres') ORDER BY 1")
            == ["keep_me", "postgres", "stranger_db"])
        #expect(try names(db, "SELECT rolname FROM pg_roles WHERE rolname IN ('stranger', 'postgres') ORDER BY 1") == ["postgres", "stranger"])
        #expect(try s.admin("keep_me").query("SELECT to_regclass('kept')::text").scalar == "kept")
        #expect(!FileSystem.exists(s.clientDirectory + "/pg_service.conf"))
        #expect(!FileSystem.exists(s.clientDirectory + "/pgpass"))
        #expect(FileSystem.exists(s.clientDirectory + "/hearthminds.env"))
        #expect(await plan.inventory().isEmpty)

        let (again, _) = try await reset(s, config)
        #expect(again.status == 0 && again.changed == 0)

        // Rebuild: the databases step, then migrations and verify.
        let t0 = Clock.nowMs()
        let rebuilt = try await s.run(config)
        let verified = try await s.verify(config)
        let rebuildMs = Clock.nowMs() - t0
        #expect(rebuilt.status == 0 && verified.status == 0)
        #expect(try s.admin("logos_db").query("SELECT to_regclass('reset_marker')::text").scalar == nil)
        print("reset timing: reset \(Int(resetMs)) ms (3 databases, 4 roles, client files); rebuild (databases + migrations + verify) \(Int(rebuildMs)) ms")

        let log = try FileSystem.readText(s.logPath)
        #expect(log.contains("\"step\":\"reset\",\"action\":\"database logos_db is gone"))
        #expect(!log.contains("SCRAM-SHA-256$"))
    }

    @Test("a role of ours that owns or may use something in a database the reset keeps: a false result before any change")
    func foreignHoldingsRefused() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos,aletheia")
        #expect(try await s.run(config).status == 0)
        let db = try s.admin()
        try db.execute("CREATE DATABASE other_db")
        try db.execute("GRANT CONNECT ON DATABASE other_db TO aletheia")
        try s.admin("other_db").execute("CREATE TABLE owned_by_logos (x int); ALTER TABLE owned_by_logos OWNER TO logos")

        let listed = await ResetStep.plan(config, server: s.server, clientDirectory: s.clientDirectory).inventory()
        #expect(listed.first?.hasPrefix("blocked: ") == true)
        #expect(listed.first?.contains("role logos owns 1 object(s) in database other_db") == true)
        #expect(listed.first?.contains("role aletheia has privileges on database other_db") == true)

        let (dry, _) = try await reset(s, config, dryRun: true)
        #expect(dry.status == ExitStatus.failed)
        let (refused, _) = try await reset(s, config)
        #expect(refused.status == ExitStatus.failed)
        #expect(refused.failedAction?.hasPrefix("roles ") == true)
        #expect(refused.changed == 0)
        #expect(try names(db, "SELECT datname FROM pg_database WHERE datname LIKE '%\\_db' ORDER BY 1")
            == ["aletheia_db", "hearthminds_db", "logos_db", "other_db"])
        #expect(FileSystem.exists(s.clientDirectory + "/pg_service.conf"))

        // The way out the message names; then the reset goes through. (Not REASSIGN OWNED BY
        // logos: that hands logos_db itself to postgres too, and the reset then refuses to drop a
        // database that is not logos's.)
        try s.admin("other_db").execute("ALTER TABLE owned_by_logos OWNER TO postgres; DROP OWNED BY aletheia")
        try db.execute("REVOKE ALL ON DATABASE other_db FROM aletheia")
        let (done, _) = try await reset(s, config)
        #expect(done.status == 0, "failed at \(done.failedAction ?? "")")
        #expect(try names(db, "SELECT datname FROM pg_database WHERE datname LIKE '%\\_db' ORDER BY 1") == ["other_db"])
    }

    @Test("--service-user: the system account, its group and its home go too; the service-user step brings them back")
    func serviceUser() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        // The reset removes a home only under /var/lib.
        let home = "/var/lib/hmtest-home-\(Int.random(in: 10000..<99999))"
        defer { DebianTestClusters.spawnAndWait(["/bin/rm", "-rf", "--one-file-system", home]) }
        let config = try s.config("AI_NAMES=logos\nHEARTHMINDS_SERVICE_HOME=\(home)")
        // The scenario's account has no group of its own or home: the step converges it. It is
        // a system account the scenario made: marked as the step marks its own (an account
        // without the mark is neither adopted nor removed).
        _ = try? await Command.run(["groupadd", "--system", s.serviceUser])
        try await Command.check(["usermod", "--comment", ServiceAccount.mark, s.serviceUser])
        #expect(await testRunner().run(ServiceUserStep.make(config)).status == 0)
        #expect(try await s.run(config).status == 0)
        #expect(FileSystem.isDirectory(home))

        let (done, ms) = try await reset(s, config, scope: ResetScope(serviceUser: true))
        #expect(done.status == 0, "failed at \(done.failedAction ?? "")")
        #expect(SystemAccount.lookup(s.serviceUser) == nil)
        #expect(SystemAccount.groupID(s.serviceUser) == nil)
        #expect(!FileSystem.exists(home))
        let (again, _) = try await reset(s, config, scope: ResetScope(serviceUser: true))
        #expect(again.status == 0 && again.changed == 0)
        print("reset timing: --service-user reset \(Int(ms)) ms")

        #expect(await testRunner().run(ServiceUserStep.make(config)).status == 0)
        #expect(try await s.run(config).status == 0)
        #expect(SystemAccount.lookup(s.serviceUser) != nil && FileSystem.isDirectory(home))
    }
}

/// The whole-cluster reset makes and drops a Debian cluster: it runs in the serialized suite of
/// the other Debian-cluster tests, so that no two pg_createcluster/pg_dropcluster overlap (while
/// one is half made, pg_lsclusters fails).
extension HostStepsTests {
    @Test("a pg_createcluster cut in its initdb (a data directory begun, never started; a configuration directory begun): the postgres step removes both and makes the cluster; a started cluster's directory is never touched")
    func halfMadeCluster() async throws {
        let c = DebianTestCluster()
        defer { c.drop() }
        let data = "/var/lib/postgresql/15/\(c.name)"
        let planted = try await Hostile.asPostgres(
            "set -e; mkdir -p \(data)/global \(data)/base/1 \(c.paths.configDirectory); echo 15 > \(data)/PG_VERSION; chmod 0700 \(data)")
        #expect(planted.succeeded, "\(planted.stderr)")
        let run = await testRunner().run(PostgresStep.make(try c.config()))
        #expect(run.status == 0, "failed at \(run.failedAction ?? "")")
        let db = try PGServer.running(c.paths).admin()
        #expect(try db.query("SELECT count(*) FROM pg_database WHERE datname IN ('postgres', 'template0', 'template1')").scalar == "3")
        // A cluster that has run: nothing to remove, whatever its directory lacks.
        #expect(try await ClusterTools.removeHalfMade(c.paths) == [])
    }

    @Test("a power cut's postmaster.pid, naming a live process that is no server but whose command line names postgres (pids reused after a reboot): the postgres step removes it and starts the cluster")
    func stalePidFile() async throws {
        let c = DebianTestCluster()
        defer { c.drop() }
        let config = try c.config()
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        let data = try #require(try DebianClusters.find(c.paths)?.dataDirectory)
        let pidFile = data + "/postmaster.pid"
        let status = try #require(PostmasterStatus.read(dataDirectory: data))
        // The power cut: the postmaster killed, its children gone after it, the file left.
        kill(status.pid, SIGKILL)
        for _ in 0..<100 where try await Command.run(["pgrep", "-u", "postgres", "-f", "\(c.name)"]).succeeded {
            usleep(100_000)
        }
        // The reboot: /run is empty again (the socket's lock file, which names the killed
        // postmaster, goes with it: a zombie not yet reaped would hold it here).
        _ = try await Command.run(["rm", "-f", "/var/run/postgresql/.s.PGSQL.\(c.port).lock"])
        // After the reboot, the file's pid is another process's, one whose command line names
        // postgres (as our own hm-postgres's does, or su - postgres): pg_ctlcluster and the server
        // take that for a running server.
        var other: pid_t = 0
        let argv = ["/bin/bash", "-c", "exec -a postgres sleep 600"]
        let arguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        #expect(posix_spawn(&other, argv[0], nil, nil, arguments, environ) == 0)
        defer { kill(other, SIGKILL); var status: Int32 = 0; waitpid(other, &status, 0) }
        for _ in 0..<100 {
            if (try? FileSystem.readText("/proc/\(other)/cmdline"))?.hasPrefix("postgres") == true { break }
            usleep(20_000)
        }
        let rewritten = try await Hostile.asPostgres("sed -i '1s/.*/\(other)/' \(pidFile)")
        #expect(rewritten.succeeded, "\(rewritten.stderr)")
        #expect(PostmasterStatus.read(dataDirectory: data) == nil, "a live process that is no server taken for one")

        let run = await testRunner().run(PostgresStep.make(config))
        let serverLog = (try? await Command.run(["tail", "-n", "8", "/var/log/postgresql/postgresql-15-\(c.name).log"]))?.stdout ?? ""
        #expect(run.status == 0 && run.changed > 0, "failed at \(run.failedAction ?? ""): \(serverLog)")
        let restarted = try #require(PostmasterStatus.read(dataDirectory: data))
        #expect(restarted.pid != other)
        #expect(try PGServer.running(c.paths).admin().query("SELECT 1").scalar == "1")
    }

    @Test("a failed install.sh --reset: the rerun it advises is a command install.sh takes (issue 21 G: it advised --from reset, which it refused)")
    func failedResetAdvice() async throws {
        let c = DebianTestCluster()
        defer { c.drop() }
        #expect(await testRunner().run(PostgresStep.make(try c.config())).status == 0)
        // A database of the suite's name that is not the suite's: the reset refuses, dropping nothing.
        try PGServer.running(c.paths).admin().execute("CREATE DATABASE hearthminds_db")
        let tree = try TestFiles.installTree(for: c)
        defer { TestFiles.removeTree(tree) }
        func install(_ args: [String]) async throws -> CommandResult {
            try await Command.run(
                ["timeout", "300", tree + "/install.sh"] + args + ["--config", tree + "/hm.env"], input: "",
                environment: ["HEARTHMINDS_LOCK_DIR": tree + "/lock"])
        }
        // (--reset-cluster would drop the whole cluster, the stranger's database with it: no refusal)
        // (with the same --config: without it the advice would reset the default configuration's cluster)
        for (flags, advised) in [(["--reset", "--yes"], "--reset --yes --config \(tree)/hm.env")] {
            let failed = try await install(flags)
            #expect(failed.status == 1, "\(failed.stdout)\n\(failed.stderr)")
            let advice = failed.stderr.split(separator: "\n").first { $0.contains("sudo ./install.sh --reset") }
            #expect(advice?.hasSuffix("then rerun (with the same environment): sudo ./install.sh \(advised)") == true, "\(failed.stderr)")
            // The advised command is taken: the same refusal again (the cause is not fixed), not a usage error.
            let again = try await Command.run(
                ["timeout", "300", tree + "/install.sh"] + advised.split(separator: " ").map(String.init), input: "",
                environment: ["HEARTHMINDS_LOCK_DIR": tree + "/lock"])
            #expect(again.status == 1 && !again.stderr.contains("no step named"), "\(again.stdout)\n\(again.stderr)")
            #expect(try PGServer.running(c.paths).admin().query(
                "SELECT count(*) FROM pg_database WHERE datname = 'hearthminds_db'").scalar == "1")
        }
    }

    @Test("--cluster: pg_dropcluster --stop and the leftover config directory; other clusters untouched; the postgres step rebuilds")
    func resetWholeCluster() async throws {
        let c = DebianTestCluster()
        defer { c.drop() }
        let config = try c.config()
        // Other tests' hmtest clusters come and go, and so do the hm* clusters of other runs on a
        // shared machine (benches, other worktrees' tests); every other cluster must stay.
        let before = try DebianClusters.list().filter { !$0.name.hasPrefix("hm") }
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        let db = try PGServer.running(c.paths).admin()
        try db.execute("CREATE DATABASE some_data")
        let clients = TestFiles.temporaryDirectory()
        defer { TestFiles.removeTree(clients) }

        // hm-reset on the command line: it lists, and without --yes (stdin no terminal) refuses
        // with 64, changing nothing; --dry-run lists and changes nothing. Its run lock in a
        // directory of this test's: the suites run side by side, and another suite's install.sh
        // holding /run/hearthminds' lock would make this one exit 75.
        try db.execute("CREATE DATABASE hearthminds_db")
        let work = TestFiles.temporaryDirectory("hm-resetcli")
        defer { TestFiles.removeTree(work) }
        func cli(_ args: [String]) async throws -> CommandResult {
            try await Command.run(
                [TestFiles.executable("hm-reset"), "--set", "PG_CLUSTER_NAME=\(c.name)",
                 "--set", "POSTGRES_PORT=\(c.port)"] + args,
                input: "", environment: ["HEARTHMINDS_LOG": work + "/log.jsonl", "HEARTHMINDS_LOCK_DIR": work + "/lock"])
        }
        let refused = try await cli([])
        #expect(refused.status == 64)
        #expect(refused.stdout.contains("- database hearthminds_db (owner postgres"))
        #expect(refused.stderr.contains("without --yes"))
        let refusedWhole = try await cli(["--cluster"])
        #expect(refusedWhole.status == 64 && refusedWhole.stdout.contains("- cluster 15/\(c.name) "))
        let dryCLI = try await cli(["--cluster", "--dry-run"])
        #expect(dryCLI.status == 0 && dryCLI.stdout.contains("would change"))
        #expect(try await cli(["--set", "AI_NAMES=Bad;Name", "--yes"]).status == 64)
        #expect(try await Command.run([TestFiles.executable("hm-reset"), "--help"]).stdout.contains("--service-user"))
        #expect(try DebianClusters.find(c.paths)?.online == true)
        #expect(try db.query("SELECT count(*) FROM pg_database WHERE datname IN ('hearthminds_db', 'some_data')").scalar == "2")

        let plan = ResetStep.plan(config, scope: ResetScope(cluster: true), cluster: c.paths, clientDirectory: clients)
        let listed = await plan.inventory()
        #expect(listed.first?.hasPrefix("cluster 15/\(c.name) ") == true)
        #expect(listed.first?.contains("some_data") == true)
        #expect(listed.contains { $0.hasPrefix("directory /etc/postgresql/15/\(c.name)") })

        let t0 = Clock.nowMs()
        let done = await testRunner().run(plan.step)
        let resetMs = Clock.nowMs() - t0
        #expect(done.status == 0, "failed at \(done.failedAction ?? "")")
        #expect(try DebianClusters.find(c.paths) == nil)
        #expect(!FileSystem.exists(c.paths.configDirectory))
        // Every other cluster is still there (others may appear meanwhile: the machine is shared).
        #expect(Set(before.map(\.id)).isSubset(of: Set(try DebianClusters.list().map(\.id))))
        #expect(await testRunner().run(plan.step).changed == 0)

        // Databases-and-roles reset of a cluster that is gone: nothing left, all true.
        let gone = await testRunner().run(ResetStep.make(config, cluster: c.paths, clientDirectory: clients))
        #expect(gone.status == 0 && gone.changed == 0)

        let t1 = Clock.nowMs()
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        let rebuildMs = Clock.nowMs() - t1
        #expect(try DebianClusters.find(c.paths)?.online == true)
        print("reset timing: --cluster reset \(Int(resetMs)) ms; postgres step rebuild \(Int(rebuildMs)) ms")
    }
}
