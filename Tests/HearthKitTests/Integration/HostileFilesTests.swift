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

/// The postgres account attacks the postgres and pg-hba steps and the cluster reset through
/// the directories it owns (/etc/postgresql and below; its cluster superuser reaches it with
/// COPY ... TO PROGRAM): links at the old predictable temporary names and at guessable ones,
/// our files, conf.d and the cluster's directories replaced by links to root's files and
/// directories, before and while the steps run. Each attack must leave root's files as they
/// were (content, owner, mode), the step converging safely or reporting false naming the link,
/// and the host converging once the plant is gone. Real Debian clusters, in the serialized
/// suite of the other tests that make them.
extension HostStepsTests {
    func templates() throws -> HbaRenderer.Templates { try HbaRenderer.Templates.load(root: TestFiles.repositoryRoot) }

    @Test("hostile postgres account, before the run: links at old and guessable temporary names and in place of our files; the steps converge, root's files unchanged")
    func hostileLinksBeforeRun() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let config = try cluster.config()
        let paths = cluster.paths
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        let before = victim.snapshot()

        // The names the old code wrote through (<path>.hm-tmp-<pid>, this process runs the
        // steps) and some guessable ones, each a link to root's secret; our files replaced by
        // links to root's files.
        let c = paths.configDirectory
        let v = victim.path
        let pid = getpid()
        var plant = ""
        for file in ["pg_hba.conf", "pg_ident.conf", "start.conf", "conf.d/hearthminds.conf"] {
            for temp in ["\(file).hm-tmp-\(pid)", "\(file).hm-tmp", "\(file).tmp", "\(file).new"] {
                plant += "ln -s \(v)/secret \(c)/\(temp)\n"
            }
        }
        plant += """
            ln -sfn \(v)/settings.conf \(c)/conf.d/hearthminds.conf
            ln -sfn \(v)/start.conf \(c)/start.conf
            ln -sfn \(v)/hba.conf \(c)/pg_hba.conf
            ln -sfn \(v)/hba.conf \(c)/pg_ident.conf
            """
        let planted = try await Hostile.asPostgres("set -e\n" + plant)
        #expect(planted.succeeded, "\(planted.stderr)")

        let (postgres, postgresDetail) = try await Hostile.run(PostgresStep.make(config))
        #expect(postgres.status == 0, "\(postgresDetail)")
        let (hba, hbaDetail) = try await Hostile.run(try PgHbaStep.make(config, templates: try templates()))
        #expect(hba.status == 0, "\(hbaDetail)")
        #expect(victim.snapshot() == before)

        // Our files are real files again, the postgres account's, with our content.
        let directory = try paths.openConfigDirectory()
        let rendered = try HbaRenderer.render(try templates(), config)
        for (name, text) in [("pg_hba.conf", rendered.hba), ("pg_ident.conf", rendered.ident)] {
            let entry = try #require(try directory.entry(name))
            #expect(entry.kind == .file && entry.uid == Hostile.postgres.uid && entry.mode == 0o640)
            #expect(try directory.readText(name) == text)
        }
        #expect(try PostgresStep.startMode(paths) == "auto")
        #expect(try directory.entry("start.conf")?.kind == .file)
        let conf = try #require(try directory.directory("conf.d"))
        #expect(try conf.readText("hearthminds.conf") == ServerSettings(config).render(clusterID: paths.id))
        // The planted links are as they were: nothing wrote through them.
        #expect(try directory.entry("pg_hba.conf.hm-tmp-\(pid)")?.kind == .symlink)

        // Once the plant is gone, reruns change nothing.
        try await Hostile.asPostgres("rm -f \(c)/*.hm-tmp* \(c)/*.tmp \(c)/*.new \(c)/conf.d/*.hm-tmp* \(c)/conf.d/*.tmp \(c)/conf.d/*.new")
        #expect(await testRunner().run(PostgresStep.make(config)) == .init(status: 0, changed: 0, pending: 0, failedAction: nil))
        #expect(await testRunner().run(try PgHbaStep.make(config, templates: try templates())).changed == 0)
    }

    @Test("hostile postgres account: conf.d replaced by a link to root's directory is refused, named, and root's directory untouched; removed, the step converges")
    func hostileConfDirectoryLink() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let config = try cluster.config()
        let paths = cluster.paths
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        let before = victim.snapshot()
        let c = paths.configDirectory

        try await Hostile.asPostgres("set -e; mv \(c)/conf.d \(c)/conf.d.away; ln -s \(victim.path)/dir \(c)/conf.d")
        for dryRun in [true, false] {
            let (outcome, detail) = try await Hostile.run(PostgresStep.make(config), dryRun: dryRun)
            #expect(outcome.status == ExitStatus.failed, "dry run \(dryRun)")
            #expect(outcome.failedAction == "\(paths.settingsFile): listen_addresses '127.0.0.1', port \(cluster.port), scram-sha-256")
            #expect(detail.contains("\(c)/conf.d is a symbolic link"), "\(detail)")
        }
        #expect(victim.snapshot() == before)

        try await Hostile.asPostgres("set -e; rm \(c)/conf.d; mv \(c)/conf.d.away \(c)/conf.d")
        let healed = await testRunner().run(PostgresStep.make(config))
        #expect(healed.status == 0 && healed.changed == 0)
    }

    @Test("hostile postgres account while the steps run: links planted and our files and conf.d swapped in a loop; root's files unchanged; the host converges after")
    func hostileLinksWhileRunning() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let config = try cluster.config()
        let paths = cluster.paths
        let templates = try templates()
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        #expect(await testRunner().run(try PgHbaStep.make(config, templates: templates)).status == 0)
        let before = victim.snapshot()
        let c = paths.configDirectory
        let v = victim.path
        // The postgres account's own copy of pg_hba.conf, to put back when the plant is gone (a
        // link in its place to a file it cannot read keeps its own server from starting).
        try await Hostile.asPostgres("cp \(c)/pg_hba.conf \(c)/.hba-before")

        let planter = try Hostile.Background(asPostgres: """
            while :; do
              for f in pg_hba.conf pg_ident.conf start.conf conf.d/hearthminds.conf; do
                ln -sfn \(v)/secret "\(c)/$f.hm-tmp-\(getpid())" 2>/dev/null
              done
              ln -sfn \(v)/hba.conf \(c)/.plant && mv -fT \(c)/.plant \(c)/pg_hba.conf 2>/dev/null
              ln -sfn \(v)/start.conf \(c)/.plant && mv -fT \(c)/.plant \(c)/start.conf 2>/dev/null
              ln -sfn \(v)/settings.conf \(c)/conf.d/.plant && mv -fT \(c)/conf.d/.plant \(c)/conf.d/hearthminds.conf 2>/dev/null
              if mv -T \(c)/conf.d \(c)/conf.d.away 2>/dev/null; then
                ln -sfn \(v)/dir \(c)/conf.d
                rm -f \(c)/conf.d 2>/dev/null
                mv -T \(c)/conf.d.away \(c)/conf.d 2>/dev/null
              fi
            done
            """)
        var outcomes: [String] = []
        for step in [PostgresStep.make(config), try PgHbaStep.make(config, templates: templates), PostgresStep.make(config)] {
            let (outcome, detail) = try await Hostile.run(step)
            outcomes.append("\(step.name) \(outcome.status) \(detail.prefix(300))")
        }
        planter.stop()
        print("hostile planter outcomes:\n" + outcomes.joined(separator: "\n"))
        #expect(victim.snapshot() == before)

        // The plant gone (conf.d back in place when the loop left it aside), the host converges.
        try await Hostile.asPostgres("""
            rm -f \(c)/*.hm-tmp-* \(c)/conf.d/*.hm-tmp-* \(c)/.plant \(c)/conf.d/.plant
            if [ -d \(c)/conf.d.away ]; then rm -rf \(c)/conf.d; mv -T \(c)/conf.d.away \(c)/conf.d; fi
            for f in pg_hba.conf start.conf conf.d/hearthminds.conf; do if [ -L \(c)/$f ]; then rm -f \(c)/$f; fi; done
            [ -e \(c)/pg_hba.conf ] || cp \(c)/.hba-before \(c)/pg_hba.conf
            rm -f \(c)/.hba-before
            """)
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        #expect(await testRunner().run(try PgHbaStep.make(config, templates: templates)).status == 0)
        #expect(await testRunner().run(PostgresStep.make(config)).changed == 0)
        #expect(await testRunner().run(try PgHbaStep.make(config, templates: templates)).changed == 0)
        #expect(victim.snapshot() == before)
    }

    @Test("hostile postgres account: /etc/postgresql/15/<cluster> or /etc/postgresql/15 swapped for a link (a private mount namespace): hm-postgres and hm-pg-hba refuse it, named; root's copy unchanged")
    func hostileClusterDirectorySwapped() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let config = try cluster.config()
        let paths = cluster.paths
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        #expect(await testRunner().run(try PgHbaStep.make(config, templates: try templates())).status == 0)
        let postgres = Hostile.postgres
        let v = victim.path
        let name = cluster.name
        // Root's copy of the cluster's configuration: where the links point (pg_lsclusters
        // still finds the running cluster through it).
        let copied = try await Hostile.asRoot("""
            set -e
            mkdir -p \(v)/pg15 \(victim.base)/etc-pg15 \(victim.base)/etc-pg
            cp -a \(paths.configDirectory) \(v)/pg15/\(name)
            chown -R root:root \(v)/pg15
            chown \(postgres.uid):\(postgres.gid) \(victim.base)/etc-pg15 \(victim.base)/etc-pg
            """)
        #expect(copied.succeeded, "\(copied.stderr)")
        try await Hostile.asPostgres("set -e; ln -s \(v)/pg15/\(name) \(victim.base)/etc-pg15/\(name); ln -s \(v)/pg15 \(victim.base)/etc-pg/15")
        let before = victim.snapshot()

        // In a private mount namespace, so that the other clusters of the machine do not see it:
        // the test's directory of the postgres account over /etc/postgresql/15 (holding the
        // link <cluster> -> root's copy), or over /etc/postgresql (holding the link 15).
        let log = victim.base + "/log.jsonl"
        // The run lock in a directory of this test's (other suites run steps beside this one).
        let lock = TestFiles.temporaryDirectory("hm-lock")
        defer { TestFiles.removeTree(lock) }
        for (mountedAt, source, refused) in [
            ("/etc/postgresql/15", victim.base + "/etc-pg15", "/etc/postgresql/15/\(name) is a symbolic link"),
            ("/etc/postgresql", victim.base + "/etc-pg", "/etc/postgresql/15 is a symbolic link"),
        ] {
            for step in ["postgres", "pg-hba"] {
                let result = try await Command.run(
                    [
                        "unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                        "mount --bind \"$1\" \"$2\" && exec \"$3\" --set PG_CLUSTER_NAME=\(name) --set POSTGRES_PORT=\(cluster.port)",
                        "sh", source, mountedAt, Hostile.executable(step),
                    ], environment: ["HEARTHMINDS_LOG": log, "HEARTHMINDS_LOCK_DIR": lock + "/run"])
                #expect(result.status == 1, "hm-\(step) with \(mountedAt) swapped: \(result.stdout) \(result.stderr)")
                #expect(result.stdout.contains(refused), "hm-\(step): \(result.stdout)")
                #expect(victim.snapshot() == before, "hm-\(step) with \(mountedAt) swapped")
            }
        }
        // Outside the namespace nothing changed: the steps converge with nothing to do.
        #expect(await testRunner().run(PostgresStep.make(config)).changed == 0)
        #expect(await testRunner().run(try PgHbaStep.make(config, templates: try templates())).changed == 0)
    }

    @Test("reset --cluster: the leftover configuration directory is removed by descriptors: a link inside is removed, not followed; the directory swapped for a link is refused")
    func hostileResetClusterDirectory() async throws {
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let before = victim.snapshot()
        let paths = ClusterPaths(version: 15, name: "hmtest\(Int.random(in: 100_000..<1_000_000))")
        let c = paths.configDirectory
        defer { DebianTestClusters.spawnAndWait(["/bin/rm", "-rf", "--one-file-system", c]) }
        // What pg_dropcluster leaves, the postgres account's; then its links to root's files.
        let planted = try await Hostile.asPostgres("""
            set -e
            mkdir -p \(c)/conf.d.real
            echo "port = 1" > \(c)/conf.d.real/hearthminds.conf
            ln -s \(victim.path)/dir \(c)/conf.d
            ln -s \(victim.path)/secret \(c)/conf.d.real/secret
            ln -s \(victim.path) \(c)/conf.d.real/victim
            """)
        #expect(planted.succeeded, "\(planted.stderr)")
        let step = Step(ResetStep.name, [ResetStep.clusterDirectoryItem(paths).action])
        let (removed, detail) = try await Hostile.run(step)
        #expect(removed.status == 0 && removed.changed == 1, "\(detail)")
        #expect(!FileSystem.exists(c))
        #expect(victim.snapshot() == before)

        // The directory itself swapped for a link: refused, named; neither followed nor removed.
        try await Hostile.asPostgres("ln -s \(victim.path)/dir \(c)")
        let (refused, why) = try await Hostile.run(step)
        #expect(refused.status == ExitStatus.failed)
        #expect(why.contains("\(c) is a symbolic link"), "\(why)")
        #expect(victim.snapshot() == before)
        var st = stat()
        #expect(lstat(c, &st) == 0 && st.st_mode & S_IFMT == S_IFLNK)
        unlink(c)
    }
}

/// postgresql-common's tools as root, against the postgres account's files: pg_dropcluster
/// unlinks what the cluster directory's `log` link names; pg_createcluster writes and chmods
/// through links in a configuration directory the account prepared; a FIFO in place of a file
/// they read holds pg_lsclusters and pg_ctlcluster forever. The suite runs the first two as the
/// postgres account, and every tool with a deadline.
extension HostStepsTests {
    @Test("hostile postgres account: a `log` link in the cluster's directory to root's file; reset --cluster drops the cluster, root's file stays")
    func hostileResetClusterLogLink() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let config = try cluster.config()
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        let c = cluster.paths.configDirectory
        // pg_lsclusters now names root's file as the cluster's log; pg_dropcluster as root unlinks it.
        let planted = try await Hostile.asPostgres("ln -s \(victim.path)/secret \(c)/log && ln -s \(victim.path)/dir \(c)/conf.d/dir")
        #expect(planted.succeeded, "\(planted.stderr)")
        #expect(try await DebianClusters.find(cluster.paths)?.online == true)
        let before = victim.snapshot()

        let clients = TestFiles.temporaryDirectory("hm-hostile-clients")
        defer { TestFiles.removeTree(clients) }
        let plan = ResetStep.plan(config, scope: ResetScope(cluster: true), cluster: cluster.paths, clientDirectory: clients)
        let (done, detail) = try await Hostile.run(plan.step)
        #expect(done.status == 0, "\(detail)")
        #expect(try await DebianClusters.find(cluster.paths) == nil)
        #expect(!FileSystem.exists(c))
        #expect(victim.snapshot() == before)
    }

    @Test("hostile postgres account: a configuration directory prepared for the cluster, with links at start.conf, pg_ctl.conf, environment and the log file; creating the cluster writes none of root's files, and converges once the plant is gone")
    func hostileCreateClusterPlantedDirectory() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let config = try cluster.config()
        let c = cluster.paths.configDirectory
        let log = "/var/log/postgresql/postgresql-15-\(cluster.name).log"
        let v = victim.path
        let planted = try await Hostile.asPostgres("""
            set -e
            mkdir -p \(c)
            ln -s \(v)/start.conf \(c)/start.conf
            ln -s \(v)/secret \(c)/pg_ctl.conf
            ln -s \(v)/settings.conf \(c)/environment
            ln -s \(v)/hba.conf \(log)
            """)
        #expect(planted.succeeded, "\(planted.stderr)")
        defer { FileSystem.remove(log) }
        let before = victim.snapshot()
        let (outcome, detail) = try await Hostile.run(PostgresStep.make(config))
        print("hostile create outcome: \(outcome.status) \(detail.prefix(400))")
        #expect(victim.snapshot() == before)

        // The plant gone, the step makes the cluster, the postgres account's, with its socket in
        // /var/run/postgresql, and converges.
        try await Hostile.asPostgres("rm -f \(log); rm -rf \(c)")
        let made = await testRunner().run(PostgresStep.make(config))
        #expect(made.status == 0)
        let info = try #require(try await DebianClusters.find(cluster.paths))
        #expect(info.owner == "postgres" && info.online)
        let directory = try cluster.paths.openConfigDirectory()
        for name in ["postgresql.conf", "start.conf", "pg_ctl.conf", "environment"] {
            #expect(try directory.entry(name)?.uid == Hostile.postgres.uid, "\(name)")
        }
        #expect(try directory.readText("postgresql.conf").contains("unix_socket_directories = '/var/run/postgresql'"))
        var st = stat()
        #expect(lstat(log, &st) == 0 && st.st_mode & S_IFMT == S_IFREG && st.st_uid == Hostile.postgres.uid)
        #expect(await testRunner().run(PostgresStep.make(config)).changed == 0)
        #expect(victim.snapshot() == before)
    }

    @Test("hostile postgres account: a FIFO in place of start.conf or postgresql.conf holds no probe of ours (read without blocking) and postgresql-common's tools only up to their deadline; hm-postgres ends false in bounded time, hm-reset --cluster --dry-run ends (a private mount namespace)")
    func hostileFifoHoldsClusterTools() async throws {
        let base = TestFiles.temporaryDirectory("hm-hostile-fifo")
        defer { TestFiles.removeTree(base) }
        let lock = TestFiles.temporaryDirectory("hm-hostile-lock")
        defer { TestFiles.removeTree(lock) }
        let name = "hmfifo\(Int.random(in: 100_000..<1_000_000))"
        // In the namespace: an empty /etc/postgresql with one cluster of the postgres account's,
        // whose start.conf (then postgresql.conf) is a FIFO nobody writes.
        for fifo in ["start.conf", "postgresql.conf"] {
            let script = """
                set -e
                mount -t tmpfs -o mode=0755 hm-hostile /etc/postgresql
                # No client files, whatever this machine's past left in /etc/hearthminds.
                if [ -d /etc/hearthminds ]; then mount -t tmpfs -o mode=0700 hm-hostile-clients /etc/hearthminds; fi
                mkdir -p /etc/postgresql/15/\(name)
                printf "port = 1\\ndata_directory = '\(base)'\\n" > /etc/postgresql/15/\(name)/postgresql.conf
                echo auto > /etc/postgresql/15/\(name)/start.conf
                rm /etc/postgresql/15/\(name)/\(fifo)
                mkfifo /etc/postgresql/15/\(name)/\(fifo)
                chown -R postgres:postgres /etc/postgresql
                "$1" --set PG_CLUSTER_NAME=\(name) --set POSTGRES_PORT=\(TestCluster.freePort()) --set BACKUP=off && exit 10
                "$2" --cluster --dry-run --set PG_CLUSTER_NAME=\(name) --set POSTGRES_PORT=\(TestCluster.freePort()) --set BACKUP=off
                echo "reset dry run exited $?"
                exit 0
                """
            let t0 = Clock.nowMs()
            let result = try await Command.run(
                [
                    "timeout", "120", "unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
                    Hostile.executable("postgres"), Hostile.executable("reset"),
                ],
                environment: [
                    "HEARTHMINDS_LOG": base + "/log.jsonl", "HEARTHMINDS_LOCK_DIR": lock + "/run",
                    ClusterTools.timeoutVariable: "3",
                ])
            let ms = Clock.nowMs() - t0
            #expect(result.status == 0, "\(fifo): \(result.stdout) \(result.stderr)")
            #expect(ms < 40_000, "\(fifo): \(Int(ms)) ms")
            // The cluster probe reads postgresql-common's files itself: it neither blocks on the FIFO
            // nor reads through it; pg_ctlcluster, which does, is killed at its deadline.
            #expect(result.stdout.contains("postgres: FAILED at 'cluster 15/\(name) is running'"), "\(fifo): \(result.stdout)")
            if fifo == "start.conf" {
                // start.conf is ours: the FIFO is replaced, not read.
                #expect(
                    result.stdout.contains("[changed]      cluster 15/\(name) starts with the host (start.conf: auto)"),
                    "\(fifo): \(result.stdout)")
            } else {
                #expect(
                    result.stdout.contains("`pg_ctlcluster 15 \(name) start` did not finish within 3 s"), "\(fifo): \(result.stdout)")
            }
            // The cluster and the lock would go; the client files are not there (hidden above).
            #expect(result.stdout.contains("reset: dry run, 2 of 3 actions would change"), "\(fifo): \(result.stdout)")
            #expect(result.stdout.contains("reset dry run exited 0"), "\(fifo): \(result.stdout)")
            print("hostile timing: hm-postgres and hm-reset --cluster --dry-run with a FIFO at \(fifo): \(Int(ms)) ms")
        }
    }
}
