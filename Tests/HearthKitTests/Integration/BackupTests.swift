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

/// The backup step, hm-backup --test-restore and hm-restore against a real Debian cluster and
/// real pgBackRest (issue 22). Serialized: each makes and starts a cluster.
@Suite("backups with pgBackRest: the backup step, a test restore, a restore to a point in time (integration)", .serialized)
struct BackupTests {
    /// A host of two AIs on a Debian test cluster, with a repository of its own under /tmp.
    struct Host {
        let cluster = DebianTestCluster()
        let base: String
        let clients: String
        let service: String
        let config: HearthConfig

        init() throws {
            base = TestFiles.temporaryDirectory("hm-backup")
            chmod(base, 0o755)
            clients = base + "/clients"
            // (a service account of the test's own, its home removed after: the default's home in
            // /var/lib would outlive the namespace)
            service = "hmbk" + cluster.name.dropFirst(6)
            config = try cluster.config(
                "BACKUP=on\nBACKUP_STANZA=\(cluster.name)\nBACKUP_REPO_PATH=\(base)/repo\nBACKUP_LOSS_WINDOW=5\n"
                    + "HEARTHMINDS_SERVICE_USER=\(service)\nHEARTHMINDS_SERVICE_HOME=/var/lib/\(service)-home")
        }

        var tool: PgBackRest { PgBackRest(config.backup!) }
        var server: PGServer { PGServer(config: config) }

        func owner(_ database: String) throws -> PGConnection {
            try server.ownerConnection(database, Credentials(config, book: PasswordBook(config, directory: clients))).0
        }

        func remove() {
            let scratch = ScratchCluster(tool: tool, pgVersion: 15, port: 1)
            if FileSystem.exists(scratch.dataDirectory + "/postmaster.pid") {
                DebianTestClusters.spawnAndWait(
                    ["/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--", scratch.pgCtl, "stop",
                     "-D", scratch.dataDirectory, "-m", "immediate"])
            }
            DebianTestClusters.spawnAndWait(["/bin/rm", "-rf", scratch.dataDirectory, scratch.socketDirectory, scratch.logFile])
            cluster.drop()
            DebianTestClusters.spawnAndWait(["/usr/sbin/userdel", service])
            DebianTestClusters.spawnAndWait(["/bin/rm", "-rf", "/var/lib/\(service)-home"])
            if let data = try? Hostile.asRootSync("ls -d /var/lib/postgresql/15/\(cluster.name).before-restore-*") {
                for path in data.split(separator: "\n") { DebianTestClusters.spawnAndWait(["/bin/rm", "-rf", String(path)]) }
            }
            TestFiles.removeTree(base)
            _ = try? OpenDirectory.open(PgBackRest.configRoot).removeTree(cluster.name)
            for job in BackupFiles.Job.allCases {
                for suffix in [".service", ".timer"] {
                    FileSystem.remove("/etc/systemd/system/hearthminds-backup-\(job.rawValue)-\(cluster.name)\(suffix)")
                    FileSystem.remove("/etc/systemd/system/timers.target.wants/hearthminds-backup-\(job.rawValue)-\(cluster.name)\(suffix)")
                }
            }
        }

        func rows(_ database: String = "logos_db") throws -> Int {
            Int(try owner(database).query("SELECT count(*) FROM public.memory_shards").scalar ?? "") ?? -1
        }

        func insert(_ count: Int, tag: String) throws {
            _ = try owner("logos_db").query(
                "INSERT INTO public.memory_shards (content) SELECT $1 || g FROM generate_series(1, $2::int) g", [tag, String(count)])
        }
    }

    @Test("a host's backups: the step converges (a rerun changes nothing), a test restore proves the newest backup, a damaged repository fails it naming the backup, hm-restore brings the cluster back to a point in time and to the newest state, the nuclear reset retires the stanza and --retired brings it back; verify reports the proof")
    func backupRestoreCycle() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let host = try Host()
        defer { host.remove() }
        let config = host.config

        for step in [ServiceUserStep.make(config), PostgresStep.make(config), try PgHbaStep.make(config),
                     DatabasesStep.make(config, clientDirectory: host.clients)] {
            let (outcome, _) = await timed(step)
            #expect(outcome.status == 0, "\(step.name)")
        }
        let settings = try PGServer.running(host.cluster.paths).admin().query(
            "SELECT name, setting FROM pg_settings WHERE name IN ('archive_mode', 'archive_timeout', 'archive_command') ORDER BY 1").rows
        #expect(settings.map { $0[1] ?? "" } == [host.tool.archiveCommand, "on", "5"])
        _ = try host.owner("logos_db").query("CREATE TABLE public.memory_shards (id bigserial PRIMARY KEY, content text)")
        try host.insert(1000, tag: "before-backup-")

        // A dry run changes nothing: no configuration, no stanza.
        let (dry, _) = await timed(BackupStep.make(config), dryRun: true)
        #expect(dry.status == 0 && dry.changed == 0)
        #expect(!FileSystem.exists(host.tool.configFile))

        let (first, firstMs) = await timed(BackupStep.make(config))
        #expect(first.status == 0, "\(first.failedAction ?? "")")
        #expect(first.changed >= 6)
        let info = try await host.tool.info(PGServer.running(host.cluster.paths).admin())
        #expect(info.backups.count == 1 && info.newest?.type == "full")
        let repo = try #require(try OpenDirectory.open(host.base).entry("repo"))
        #expect(repo.uid == Hostile.postgres.uid && repo.mode == 0o750)
        let conf = try #require(try OpenDirectory.open(host.tool.configPath).entry(PgBackRest.configFileName))
        #expect(conf.uid == 0 && conf.gid == Hostile.postgres.gid && conf.mode == 0o640)
        let (second, secondMs) = await timed(BackupStep.make(config))
        #expect(second.status == 0 && second.changed == 0, "\(second.failedAction ?? "")")
        print("timing hm-backup: first run (full backup) \(Int(firstMs)) ms, rerun \(Int(secondMs)) ms")

        // The proof: rows written after the backup are in the restore (the WAL replayed).
        try host.insert(500, tag: "after-backup-")
        let (proof, proofMs) = await timed(try BackupTestRestore.make(config, clientDirectory: host.clients))
        #expect(proof.status == 0, "\(proof.failedAction ?? "")")
        let result = try FileSystem.readText(host.tool.configPath + "/" + BackupTestRestore.resultFileName)
        #expect(result.contains(" true \(info.newest!.label) "), "\(result)")
        #expect(!FileSystem.exists(ScratchCluster(tool: host.tool, pgVersion: 15, port: 1).dataDirectory))
        print("timing hm-backup --test-restore: \(Int(proofMs)) ms (\(result))")
        let (verified, _) = await timed(Step("verify", BackupVerify.actions(config, server: host.server)))
        #expect(verified.status == 0, "\(verified.failedAction ?? "")")

        // Point in time: T between two batches.
        let admin = try PGServer.running(host.cluster.paths).admin()
        usleep(1_100_000)
        let t = try #require(try admin.query("SELECT now()::text").scalar)
        usleep(1_100_000)
        try host.insert(300, tag: "after-t-")
        try await host.tool.run(["check"], seconds: 120)
        #expect(try host.rows() == 1800)
        let (pitr, pitrMs) = await timed(try ClusterRestore.make(config, to: t, clientDirectory: host.clients))
        #expect(pitr.status == 0, "\(pitr.failedAction ?? "")")
        #expect(try host.rows() == 1500)
        let paths = host.cluster.paths
        let data = try #require(try DebianClusters.find(paths)?.dataDirectory)
        let aside = try await Hostile.asRoot("ls -d \(data).before-restore-* | wc -l").stdout.trimmingCharacters(in: " \n")
        #expect(aside == "1", "the data replaced is kept aside")
        print("timing hm-restore --to: \(Int(pitrMs)) ms")
        // The restored cluster is the stanza's: the backup step converges on it.
        let (after, _) = await timed(BackupStep.make(config))
        #expect(after.status == 0, "\(after.failedAction ?? "")")

        // The newest state: everything archived comes back (on the new timeline).
        try host.insert(200, tag: "after-pitr-")
        try await host.tool.run(["check"], seconds: 120)
        let (latest, _) = await timed(try ClusterRestore.make(config, to: nil, clientDirectory: host.clients))
        #expect(latest.status == 0, "\(latest.failedAction ?? "")")
        #expect(try host.rows() == 1700)

        // The nuclear reset keeps the backups (the stanza retired); the rebuilt cluster gets a
        // stanza of its own; --retired brings the old cluster's memories back.
        let reset = await testRunner().run(ResetStep.make(config, scope: ResetScope(cluster: true), clientDirectory: host.base + "/none"))
        #expect(reset.status == 0, "\(reset.failedAction ?? "")")
        let retired = try RetiredStanza.list(config.backup!.repoPath, host.cluster.name)
        #expect(retired.count == 1, "\(retired)")
        for step in [PostgresStep.make(config), try PgHbaStep.make(config), BackupStep.make(config)] {
            let (outcome, _) = await timed(step)
            #expect(outcome.status == 0, "\(step.name): \(outcome.failedAction ?? "")")
        }
        let (back, _) = await timed(try ClusterRestore.make(config, to: nil, retired: retired.first, clientDirectory: host.clients))
        #expect(back.status == 0, "\(back.failedAction ?? "")")
        #expect(try host.rows() == 1700)
        #expect(try RetiredStanza.list(config.backup!.repoPath, host.cluster.name).count == 1, "the new cluster's stanza retired in its place")
        let (again, _) = await timed(BackupStep.make(config))
        #expect(again.status == 0, "\(again.failedAction ?? "")")

        // A byte flipped in the newest backup's repository files: the test restore fails, naming it.
        let newest = try await host.tool.info(PGServer.running(paths).admin()).newest!
        let damaged = try await Hostile.asRoot(
            "f=$(find \(host.base)/repo/backup/\(host.cluster.name)/\(newest.label)/pg_data/base -type f -size +20k | head -1); "
                + "printf '\\377\\377\\377\\377' | dd of=\"$f\" bs=1 seek=200 conv=notrunc 2>/dev/null && echo \"$f\"")
        #expect(!damaged.stdout.isEmpty)
        let (broken, detail) = try await Hostile.run(try BackupTestRestore.make(config, clientDirectory: host.clients))
        #expect(broken.status == ExitStatus.failed)
        #expect(detail.contains(newest.label), "\(detail)")
        // verify says so: the last proof failed.
        let (unproven, why) = try await Hostile.run(Step("verify", BackupVerify.actions(config, server: host.server)))
        #expect(unproven.status == ExitStatus.failed && why.contains("the last test restore failed, for backup \(newest.label)"), "\(why)")
    }

    @Test("a repository that is not ours is refused, never adopted: a link, another account's, one others may write, one under the postgres account's directory")
    func foreignRepositories() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let base = TestFiles.temporaryDirectory("hm-backup-repo")
        defer { TestFiles.removeTree(base) }
        chmod(base, 0o755)
        try await Hostile.asRoot(
            "mkdir -m 0750 \(base)/target && chown postgres: \(base)/target && ln -s \(base)/target \(base)/link && "
                + "mkdir -m 0750 \(base)/nobody && chown nobody: \(base)/nobody && "
                + "mkdir -m 0777 \(base)/open && chown postgres: \(base)/open && "
                + "mkdir -m 0755 \(base)/rootfull && touch \(base)/rootfull/x && "
                + "mkdir -m 0755 \(base)/pg && chown postgres: \(base)/pg")
        for (name, expected) in [
            ("link", "symbolic link"), ("nobody", "owned by nobody"), ("open", "writable by group or others"),
            ("rootfull", "root's and not empty"), ("pg/repo", "owned by postgres"),
        ] {
            let before = Hostile.Tree.snapshot(base)
            let (outcome, detail) = try await Hostile.run(Step("backup", [BackupRepository.action(base + "/" + name)]))
            #expect(outcome.status == ExitStatus.failed, "\(name)")
            #expect(detail.contains(expected), "\(name): \(detail)")
            #expect(Hostile.Tree.snapshot(base) == before, "\(name): nothing changed")
        }
        // An empty directory of root's (a new disk's mount point) is handed to postgres.
        try await Hostile.asRoot("mkdir -m 0755 \(base)/mount")
        let (outcome, _) = try await Hostile.run(Step("backup", [BackupRepository.action(base + "/mount")]))
        #expect(outcome.status == 0)
        let entry = try #require(try OpenDirectory.open(base).entry("mount"))
        #expect(entry.uid == Hostile.postgres.uid && entry.mode == 0o750)
    }

    @Test("one AI rolled back to T while another AI keeps writing: the first has exactly its rows at T, the second lost nothing; the tenant's code in its restore ran as the tenant, never as a superuser; the database it replaced is kept aside")
    func oneAIRestore() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let host = try Host()
        defer { host.remove() }
        let config = host.config
        let migrations = TestFiles.repositoryRoot + "/Migrations"
        for step in [ServiceUserStep.make(config), PostgresStep.make(config), try PgHbaStep.make(config),
                     DatabasesStep.make(config, clientDirectory: host.clients),
                     MigrationsStep.make(config, directory: migrations, socketDirectory: PGTarget.debianSocketDirectory,
                                         clientDirectory: host.clients),
                     BackupStep.make(config)] {
            let (outcome, _) = await timed(step)
            #expect(outcome.status == 0, "\(step.name): \(outcome.failedAction ?? "")")
        }
        // The tenant plants code that runs whenever a row is written (a CHECK constraint calling its
        // function): in its restore, it runs for every row restored, and records who it ran as.
        try host.owner("logos_db").execute(
            """
            CREATE TABLE public.seen (session_role text, current_role_name text);
            CREATE FUNCTION public.spy(bigint) RETURNS boolean LANGUAGE plpgsql AS $$
            BEGIN INSERT INTO public.seen VALUES (session_user, current_user); RETURN true; END $$;
            ALTER TABLE public.memory_shards ADD CONSTRAINT spy CHECK (public.spy(id));
            """)
        try host.insert(100, tag: "logos-before-t-")
        _ = try host.owner("aletheia_db").query(
            "INSERT INTO public.memory_shards (content) SELECT 'aletheia-' || g FROM generate_series(1, 100) g")
        usleep(1_100_000)
        let t = try #require(try PGServer.running(host.cluster.paths).admin().query("SELECT now()::text").scalar)
        usleep(1_100_000)
        try host.insert(50, tag: "logos-after-t-")
        try await host.tool.run(["check"], seconds: 120)

        // aletheia writes on, every 10 ms, through the whole restore of logos.
        let writing = Box<Bool>()
        writing.value = true
        let written = Box<Int>()
        // (a loop that blocks in libpq and usleep: on a thread of its own, not one of the
        // cooperative pool's, which has only as many threads as cores and every suite shares)
        let writer = Task(executorPreference: OwnThreadExecutor()) {
            var n = 0
            let db = try host.owner("aletheia_db")
            while writing.value == true {
                _ = try db.query("INSERT INTO public.memory_shards (content) VALUES ('aletheia-writing')")
                n += 1
                usleep(10_000)
            }
            written.value = n
        }
        let (restore, restoreMs) = await timed(
            try DatabaseRestore.make(config, database: "logos_db", to: t, clientDirectory: host.clients, migrations: migrations))
        writing.value = false
        _ = try await writer.value
        #expect(restore.status == 0, "\(restore.failedAction ?? "")")
        print("timing hm-restore --database logos_db --to: \(Int(restoreMs)) ms, aletheia wrote \(written.value ?? 0) rows meanwhile")
        #expect(try host.rows("logos_db") == 100)
        let logosRows = try host.owner("logos_db").query("SELECT count(*) FROM public.memory_shards WHERE content LIKE 'logos-after-t-%'").scalar
        #expect(logosRows == "0")
        #expect(try host.rows("aletheia_db") == 100 + (written.value ?? -1))
        #expect((written.value ?? 0) > 10, "aletheia wrote during the restore")
        // The tenant's code ran in the restore, and only as the tenant.
        let seen = try host.owner("logos_db").query(
            "SELECT count(*) FILTER (WHERE session_role = 'logos' AND current_role_name = 'logos'), count(*) FILTER (WHERE session_role <> 'logos' OR current_role_name <> 'logos') FROM public.seen"
        ).rows.first
        #expect(seen?[1] == "0", "the tenant's code ran as someone else: \(String(describing: seen))")
        #expect(Int(seen?[0] ?? "") ?? 0 >= 200, "the tenant's code ran in the restore (as logos)")
        let admin = try PGServer.running(host.cluster.paths).admin()
        let databases = try admin.query(
            "SELECT datname, pg_catalog.pg_get_userbyid(datdba), coalesce(pg_catalog.shobj_description(oid, 'pg_database'), '') FROM pg_catalog.pg_database WHERE datname LIKE 'logos_db%' ORDER BY 1").rows
        #expect(databases.count == 2 && databases[0] == ["logos_db", "logos", Marks.database], "\(databases)")
        #expect(databases.last?[0]?.hasPrefix("logos_db_before_restore_") == true)
    }

}
