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

/// The attack review of issue 22 (backups): a tenant (an AI that owns its database), a local
/// unprivileged user and the postgres account try to break the backups and restores on a real
/// cluster with real pgBackRest. Each test asserts the safe behaviour: a failure is a finding.
/// Hosts as BackupTests makes them (BackupTests.Host).
@Suite("attacks on backups and restores (issue 22 review, integration)", .serialized)
struct BackupAttackTests {
    typealias Host = BackupTests.Host

    static let migrations = TestFiles.repositoryRoot + "/Migrations"

    static func setUp(_ host: Host, migrations: Bool) async {
        let config = host.config
        var steps = [ServiceUserStep.make(config), PostgresStep.make(config), try! PgHbaStep.make(config),
                     DatabasesStep.make(config, clientDirectory: host.clients)]
        if migrations {
            steps.append(MigrationsStep.make(
                config, directory: Self.migrations, socketDirectory: PGTarget.debianSocketDirectory, clientDirectory: host.clients))
        }
        for step in steps {
            let (outcome, _) = await timed(step)
            #expect(outcome.status == 0, "\(step.name): \(outcome.failedAction ?? "")")
        }
    }

    static func backUp(_ host: Host) async {
        let (outcome, _) = await timed(BackupStep.make(host.config))
        #expect(outcome.status == 0, "backup: \(outcome.failedAction ?? "")")
    }

    /// hm-restore --database logos_db, while every process's arguments and environment are read
    /// for logos's password (what is found is added to `leaks`).
    static func restore(_ host: Host, to target: String?, leaks: Box<[String]>) async throws -> (StepRunner.Outcome, String) {
        let password = try PasswordBook(host.config, directory: host.clients).password("logos").reveal
        let watching = Box<Bool>()
        watching.value = true
        let found = Box<[String]>()
        // (a loop that sleeps with usleep: on a thread of its own, not one of the cooperative
        // pool's, which has only as many threads as cores and which every other suite shares)
        let watcher = Task(executorPreference: OwnThreadExecutor()) {
            var seen: [String] = []
            while watching.value == true {
                seen += Self.processesHolding(password)
                usleep(2_000)
            }
            found.value = seen
        }
        let result = try await Hostile.run(
            try DatabaseRestore.make(host.config, database: "logos_db", to: target, clientDirectory: host.clients, migrations: migrations))
        watching.value = false
        _ = await watcher.value
        leaks.value = (leaks.value ?? []) + (found.value ?? [])
        return result
    }

    /// The databases named logos_db_before_restore_% (what restores kept aside).
    static func asides(_ host: Host) throws -> [String] {
        try PGServer.running(host.cluster.paths).admin().query(
            "SELECT datname FROM pg_catalog.pg_database WHERE datname LIKE 'logos\\_db\\_before\\_restore\\_%' ORDER BY 1"
        ).rows.compactMap { $0[0] }
    }

    /// Whether database `name` (closed to connections, as an aside is) holds table `table`:
    /// opened for the look, closed again.
    static func holds(_ host: Host, _ name: String, _ table: String) throws -> Bool {
        let server = try PGServer.running(host.cluster.paths)
        let admin = try server.admin()
        let quoted = try admin.identifier(name)
        try admin.execute("ALTER DATABASE \(quoted) ALLOW_CONNECTIONS true")
        defer { try? admin.execute("ALTER DATABASE \(quoted) ALLOW_CONNECTIONS false") }
        return try server.admin(name).query("SELECT pg_catalog.to_regclass($1) IS NOT NULL", [table]).scalar == "t"
    }

    /// Every process's arguments and environment that hold `secret` (pid: where).
    static func processesHolding(_ secret: String) -> [String] {
        guard let proc = opendir("/proc") else { return [] }
        defer { closedir(proc) }
        let needle = Array(secret.utf8)
        var found: [String] = []
        while let entry = readdir(proc) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            guard let pid = Int32(name), pid != getpid() else { continue }
            for file in ["cmdline", "environ"] {
                let fd = open("/proc/\(pid)/\(file)", O_RDONLY | O_CLOEXEC)
                guard fd >= 0 else { continue }
                var bytes: [UInt8] = []
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = read(fd, &buffer, buffer.count)
                    if n <= 0 { break }
                    bytes += buffer[0..<n]
                }
                close(fd)
                if bytes.count >= needle.count,
                    (0...(bytes.count - needle.count)).contains(where: { bytes[$0..<($0 + needle.count)].elementsEqual(needle) })
                {
                    found.append("\(pid) \(file): \(String(decoding: bytes.prefix(200).map { $0 == 0 ? 32 : $0 }, as: UTF8.self))")
                }
            }
        }
        return found
    }

    @Test("hm-restore --database attacked: a local user's directory at /var/tmp/hm-restore-<stanza>; the AI's password looked for in every process's arguments and environment during the restore; the tenant's forged 'restore in progress' comment on its live database; a table named with ' EXTENSION '; a trusted extension of the tenant's own (pg_trgm); a rerun after a cut between the two renames of the swap")
    func databaseRestoreAttacks() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let host = try Host()
        let stanza = host.config.backup!.stanza
        let dumpDirectory = "/var/tmp/hm-restore-\(stanza)"
        defer {
            host.remove()
            _ = try? Hostile.asRootSync("rm -rf \(dumpDirectory)")
        }
        await Self.setUp(host, migrations: true)
        await Self.backUp(host)
        try host.insert(100, tag: "before-t-")
        usleep(1_100_000)
        let t = try #require(try PGServer.running(host.cluster.paths).admin().query("SELECT now()::text").scalar)
        usleep(1_100_000)
        try host.insert(50, tag: "after-t-")
        try await host.tool.run(["check"], seconds: 120)

        // 1. A local user (nobody) takes the predictable name first. Safe: the restore goes on (a
        //    directory of its own, or another name); the local user's directory is never adopted.
        try await Hostile.asRoot("rm -rf \(dumpDirectory); setpriv --reuid=nobody --regid=nogroup --clear-groups mkdir -m 0777 \(dumpDirectory)")
        // (the watcher sees what it looks for: a process holding a marker in its arguments)
        // (its output away from the pipe the command's output is read from, which would otherwise
        // be held open until it ended: the check would then look after it)
        let probe = try await Hostile.asRoot(
            "(sh -c 'sleep 60; :' hm-probe-marker-7781 </dev/null >/dev/null 2>&1 &) ; sleep 0.5; echo started")
        #expect(probe.stdout.contains("started"))
        #expect(!Self.processesHolding("hm-probe-marker-7781").isEmpty, "the watcher does not see process arguments")
        _ = try? await Hostile.asRoot("pkill -f 'hm-probe-marker-[7]781'")
        // 2. Every restore of this test runs while every process's arguments and environment are
        //    read for the AI's password (checked at the end).
        let leaks = Box<[String]>()
        let (first, firstDetail) = try await Self.restore(host, to: t, leaks: leaks)
        #expect(first.status == 0, "ATTACK localUserDumpDirectory: a local user's /var/tmp/hm-restore-<stanza> stops hm-restore --database: \(firstDetail)")
        let adopted = try await Hostile.asRoot("stat -c '%U %a' \(dumpDirectory) 2>/dev/null || echo gone").stdout
        #expect(!adopted.hasPrefix("root"), "the local user's directory was adopted as root's: \(adopted)")
        if first.status != 0 {
            // (the setup of the next attacks: the directory removed, the restore run again)
            try await Hostile.asRoot("rm -rf \(dumpDirectory)")
            let (again, detail) = try await Self.restore(host, to: t, leaks: leaks)
            #expect(again.status == 0, "\(detail)")
        }
        #expect(try host.rows() == 100)
        let kept = try Self.asides(host)
        #expect(kept.count == 1, "\(kept)")

        // 3. The tenant writes on, names a table with ' EXTENSION ' in it, and forges the
        //    restore's progress mark on its live database (the owner may COMMENT ON its database).
        //    Safe: the live database is still kept aside (not dropped as an unfinished restore),
        //    and the table comes back with its rows.
        try host.owner("logos_db").execute(
            """
            CREATE TABLE public.canary (x int); INSERT INTO public.canary VALUES (42);
            CREATE TABLE public."notes EXTENSION x" (n int); INSERT INTO public."notes EXTENSION x" SELECT pg_catalog.generate_series(1, 7);
            COMMENT ON DATABASE logos_db IS 'HearthMinds bootstrap: restore of logos_db in progress';
            """)
        try await host.tool.run(["check"], seconds: 120)
        usleep(1_100_000)
        let (second, secondDetail) = try await Self.restore(host, to: nil, leaks: leaks)
        #expect(second.status == 0, "\(secondDetail)")
        let asidesNow = try Self.asides(host)
        #expect(asidesNow.count == 2, "ATTACK forgedProgressMark: the live database was not kept aside (dropped as an unfinished restore): \(asidesNow)")
        if asidesNow.count == 2, let newest = asidesNow.last {
            #expect(try Self.holds(host, newest, "public.canary"), "the database kept aside is not the live one")
        }
        // (the control: the canary, made in the same transaction, is in the restored database)
        let canary = try? host.owner("logos_db").query("SELECT count(*) FROM public.canary").scalar
        #expect(canary == "1", "the restore did not reach the tenant's last transaction: \(canary ?? "no table")")
        let notes = try? host.owner("logos_db").query("SELECT count(*) FROM public.\"notes EXTENSION x\"").scalar
        #expect(notes == "7", "ATTACK extensionNamedTable: a table named with ' EXTENSION ' was left out of the restore silently (rows: \(notes ?? "no table"))")

        // 4. The tenant uses a trusted extension (a database owner may create one) with an index.
        //    Safe: its database can still be restored.
        try host.owner("logos_db").execute(
            """
            CREATE EXTENSION pg_trgm SCHEMA public;
            CREATE INDEX shards_trgm ON public.memory_shards USING gin (content public.gin_trgm_ops);
            """)
        try await host.tool.run(["check"], seconds: 120)
        usleep(1_100_000)
        let (third, thirdDetail) = try await Self.restore(host, to: nil, leaks: leaks)
        #expect(third.status == 0, "ATTACK tenantTrustedExtension: an AI's own trusted extension (pg_trgm) makes its restore fail: \(thirdDetail)")
        if third.status == 0 {
            let index = try host.owner("logos_db").query("SELECT pg_catalog.to_regclass('public.shards_trgm') IS NOT NULL").scalar
            #expect(index == "t")
        }
        #expect(try host.rows() == 100, "logos_db is there with its rows")

        // (pg_trgm gone again, so that the next restore's time has nothing of attack 4's)
        try host.owner("logos_db").execute("DROP INDEX public.shards_trgm; DROP EXTENSION pg_trgm;")
        try await host.tool.run(["check"], seconds: 120)
        usleep(1_100_000)
        let t2 = try #require(try PGServer.running(host.cluster.paths).admin().query("SELECT now()::text").scalar)
        usleep(1_100_000)

        // 5. A cut (kill -9) between the swap's two renames: the live database renamed aside
        //    (closed), the staging database (our mark) not yet renamed: exactly what the code's
        //    statements leave there. Safe: one rerun converges (logos_db back, restored).
        let admin = try PGServer.running(host.cluster.paths).admin()
        try admin.execute("CREATE DATABASE logos_db_hm_restore OWNER logos ENCODING 'UTF8' TEMPLATE template0")
        try admin.execute("COMMENT ON DATABASE logos_db_hm_restore IS 'HearthMinds bootstrap: restore of logos_db in progress'")
        try admin.execute("ALTER DATABASE logos_db ALLOW_CONNECTIONS false")
        _ = try admin.query("SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = 'logos_db'")
        usleep(300_000)
        let cutAside = "logos_db_before_restore_" + Clock.timestamp().filter { $0.isNumber }.prefix(14)
        try admin.execute("ALTER DATABASE logos_db RENAME TO \(try admin.identifier(String(cutAside)))")
        // (and the marker the code writes before the first rename: root's, naming the staging
        // database by its oid and the database put aside)
        let stagingOID = try #require(try admin.query("SELECT oid::text FROM pg_database WHERE datname = 'logos_db_hm_restore'").scalar)
        try OpenDirectory.open(host.tool.configPath).write(
            "restore-logos_db", "staging-oid \(stagingOID)\naside \(cutAside)\n", mode: 0o600, uid: 0, gid: 0)
        usleep(1_100_000)
        try await host.tool.run(["check"], seconds: 120)
        let (rerun, rerunDetail) = try await Self.restore(host, to: t2, leaks: leaks)
        #expect(rerun.status == 0, "ATTACK cutBetweenRenames: the rerun after a cut between the swap's renames does not converge: \(rerunDetail)")
        let present = try admin.query("SELECT count(*) FROM pg_catalog.pg_database WHERE datname = 'logos_db'").scalar
        #expect(present == "1", "logos_db is missing after the rerun (the AI has no database; its data is in \(cutAside), closed)")
        if present == "1" { #expect(try host.rows() == 100) }

        #expect(leaks.value?.isEmpty == true, "ATTACK passwordInProcesses: \(leaks.value ?? [])")
    }

    @Test("hm-backup --test-restore attacked: the postgres account's links at the throwaway cluster's paths (root's files unchanged); a tenant's row-level security policy of its own (FORCE) that shows its rows on the live cluster only. Safe: the proof still passes (a tenant cannot make the whole host's proof fail)")
    func testRestoreTenantPolicy() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let host = try Host()
        defer { host.remove() }
        await Self.setUp(host, migrations: false)
        await Self.backUp(host)
        let port = host.config.port
        try host.owner("logos_db").execute(
            "CREATE TABLE public.memory_shards (id bigserial PRIMARY KEY, content text); "
                + "INSERT INTO public.memory_shards (content) SELECT 'row ' || g FROM pg_catalog.generate_series(1, 100) g;")

        // The postgres account plants links to root's files at the throwaway cluster's paths in
        // its home (the data directory, its socket directory, its log), before the timer's test
        // restore. Safe: the proof passes, root's files are as they were.
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let scratch = ScratchCluster(tool: host.tool, pgVersion: 15, port: 1)
        let before = victim.snapshot()
        try await Hostile.asPostgres(
            "ln -s \(victim.path)/dir \(scratch.dataDirectory) && ln -s \(victim.path) \(scratch.socketDirectory) && "
                + "ln -s \(victim.path)/secret \(scratch.logFile)")
        let (planted, plantedDetail) = try await Hostile.run(try BackupTestRestore.make(host.config, clientDirectory: host.clients))
        #expect(planted.status == 0, "the postgres account's links stop the test restore: \(plantedDetail)")
        #expect(victim.snapshot() == before, "ATTACK scratchLinks: root's files changed through the postgres account's links")

        // The tenant: a policy of its own that shows its rows on the live cluster only.
        try host.owner("logos_db").execute("TRUNCATE public.memory_shards")
        try host.owner("logos_db").execute(
            """
            INSERT INTO public.memory_shards (content) SELECT 'row ' || g FROM pg_catalog.generate_series(1, 100) g;
            ALTER TABLE public.memory_shards ENABLE ROW LEVEL SECURITY;
            ALTER TABLE public.memory_shards FORCE ROW LEVEL SECURITY;
            CREATE POLICY live_only ON public.memory_shards USING (pg_catalog.current_setting('port')::int = \(port));
            """)
        let (proof, detail) = try await Hostile.run(try BackupTestRestore.make(host.config, clientDirectory: host.clients))
        #expect(proof.status == 0, "ATTACK testRestoreRLS: a tenant's own policy makes the host's test restore fail (verify false for every AI): \(detail)")
        let result = (try? FileSystem.readText(host.tool.configPath + "/" + BackupTestRestore.resultFileName)) ?? ""
        #expect(result.contains(" true "), "\(result)")
    }

    @Test("the test restore's systemd unit (run as root each week) never names an executable another account may replace: hm-backup run by root from a directory of a local user's (an unpacked tarball in a home directory)")
    func unitExecutableOfAnotherAccount() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let host = try Host()
        let drop = TestFiles.temporaryDirectory("hm-alice")
        defer {
            host.remove()
            TestFiles.removeTree(drop)
        }
        await Self.setUp(host, migrations: false)
        // The local user's copy of the suite: its directory and binary are nobody's.
        try await Hostile.asRoot(
            "cp \(TestFiles.executable("hearthminds")) \(drop)/hm-backup && chown -R nobody:nogroup \(drop) && chmod 0755 \(drop) \(drop)/hm-backup")
        let env = drop + ".env"
        try FileSystem.writeAtomically(
            env,
            "PG_CLUSTER_NAME=\(host.cluster.name)\nPOSTGRES_PORT=\(host.cluster.port)\nBACKUP=on\nBACKUP_STANZA=\(host.cluster.name)\n"
                + "BACKUP_REPO_PATH=\(host.base)/repo\nBACKUP_LOSS_WINDOW=5\n", mode: 0o600)
        defer { FileSystem.remove(env) }
        // (a lock directory of its own: make test-swift holds the namespace's run lock throughout)
        let run = try await Command.run(
            [drop + "/hm-backup", "--config", env], environment: ["HEARTHMINDS_LOCK_DIR": drop + ".lock"], timeout: 900)
        defer { _ = try? Hostile.asRootSync("rm -rf \(drop).lock") }
        // Refused, naming the path: the step ran (not stopped by the lock or the configuration).
        #expect(run.status == 1, "hm-backup exited \(run.status): \(run.stdout) \(run.stderr)")
        #expect((run.stdout + run.stderr).contains("the test restore's unit would run \(drop)/hm-backup as root"), "\(run.stdout)")
        let unit = "/etc/systemd/system/hearthminds-backup-test-restore-\(host.cluster.name).service"
        let text = (try? FileSystem.readText(unit)) ?? ""
        let exec = text.split(separator: "\n").first { $0.hasPrefix("ExecStart=") }.map(String.init) ?? ""
        #expect(!exec.contains(drop),
                "ATTACK unitExecutable: root's weekly unit runs \(exec), which the local user nobody may replace (hm-backup exited \(run.status))")
    }

    @Test("the deadline of hm-backup and hm-restore (STEP_TIMEOUT=auto) covers their own work: a full backup, a cluster's restore and one AI's pg_restore each allow up to 86400 s, and a cluster an AI can grow past 5 minutes' work must still restore")
    func deadlineCoversRestore() {
        for step in [BackupStep.name, ClusterRestore.name] {
            let seconds = StepDeadline.seconds(step: step, configured: nil)
            #expect(seconds >= 3600, "ATTACK deadline: hm-\(step) is killed after \(seconds) s by default, in the middle of a backup or restore that takes longer")
        }
    }
}

extension BackupAttackTests {
    @Test("hm-restore (the cluster) cut with kill -9 (hm-restore and everything it started) while pgBackRest restores, then one rerun: every row is back, the data it replaced is kept aside once, no marker left")
    func clusterRestoreCut() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let host = try Host()
        let env = TestFiles.temporaryDirectory("hm-cut") + "/hm.env"
        defer {
            host.remove()
            TestFiles.removeTree(String(env.prefix(upTo: env.lastIndex(of: "/")!)))
        }
        await Self.setUp(host, migrations: false)
        await Self.backUp(host)
        _ = try host.owner("logos_db").query("CREATE TABLE public.memory_shards (id bigserial PRIMARY KEY, content text)")
        try host.insert(20_000, tag: "row-")
        try await host.tool.run(["check"], seconds: 120)
        try FileSystem.writeAtomically(
            env,
            "PG_CLUSTER_NAME=\(host.cluster.name)\nPOSTGRES_PORT=\(host.cluster.port)\nBACKUP=on\nBACKUP_STANZA=\(host.cluster.name)\n"
                + "BACKUP_REPO_PATH=\(host.base)/repo\nBACKUP_LOSS_WINDOW=5\n", mode: 0o600)
        // hm-restore in a session of its own; killed (the whole session) once pgBackRest restores.
        let cut = try await Hostile.asRoot(
            """
            HEARTHMINDS_LOCK_DIR=\(env).lock setsid \(TestFiles.executable("hm-restore")) --config \(env) >/dev/null 2>&1 &
            pid=$!
            for i in $(seq 1 3000); do
              hit=
              for p in $(pgrep -x pgbackrest); do
                case "$(tr '\\0' ' ' < /proc/$p/cmdline 2>/dev/null)" in *"--stanza=\(host.cluster.name) "*" restore "*) hit=1 ;; esac
              done
              if [ -n "$hit" ]; then
                sid=$(ps -o sid= -p $pid | tr -d ' ')
                pkill -9 -s "$sid"; echo "cut at $i"; exit 0
              fi
              sleep 0.01
            done
            echo "never restoring"; kill -9 $pid
            """)
        #expect(cut.stdout.contains("cut at"), "\(cut.stdout)")
        usleep(500_000)
        #expect(ClusterRestore.underWay(host.config.backup!) != nil, "the marker names the restore under way")
        let (rerun, detail) = try await Hostile.run(try ClusterRestore.make(host.config, to: nil, clientDirectory: host.clients))
        #expect(rerun.status == 0, "ATTACK clusterRestoreCut: the rerun after a cut does not converge: \(detail)")
        #expect(try host.rows() == 20_000)
        #expect(ClusterRestore.underWay(host.config.backup!) == nil)
        let data = try #require(try DebianClusters.find(host.cluster.paths)?.dataDirectory)
        let aside = try await Hostile.asRoot("ls -d \(data).before-restore-* | wc -l").stdout.trimmingCharacters(in: " \n")
        #expect(aside == "1", "the data replaced is kept aside, once")
    }
}
