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

/// Monitoring (issue 23), for real: Debian's prometheus-postgres-exporter 0.11.1 (its binary,
/// from the package apt downloads, not installed: no unit of it starts on the test machine) runs
/// with the configuration the monitoring step renders, as a system account of its own that logs
/// in by peer to the role the databases step made, against a converged host where a hostile AI
/// plants what it may. promtool (Debian's prometheus package, likewise) checks what it serves.
@Suite("monitoring: the postgres exporter against hostile tenants (integration, real PostgreSQL 15)", .serialized)
struct MonitoringTests {
    /// The binaries of Debian's packages, unpacked once per test process into a directory of
    /// root's: `apt-get download` (the host's apt sources), `dpkg-deb -x`.
    static func binary(_ package: String, _ path: String) async throws -> String {
        let directory = TestFiles.temporaryDirectory("hm-monitoring-debs")
        chmod(directory, 0o755)
        // (the host's package lists may be being rewritten by another suite's apt-get update: once
        // more after an update of our own, which waits for apt's locks)
        if try await !Command.run(["apt-get", "download", package], workingDirectory: directory).succeeded {
            try await Apt.check(["update"])
            try await Command.check(["apt-get", "download", package], workingDirectory: directory)
        }
        let deb = try #require(try FileSystem.list(directory).first { $0.hasPrefix(package + "_") && $0.hasSuffix(".deb") })
        try await Command.check(["dpkg-deb", "-x", directory + "/" + deb, directory + "/root"])
        let found = directory + "/root" + path
        #expect(FileSystem.exists(found), "\(package) has no \(path)")
        return found
    }

    /// The exporter as the monitoring step runs it (its drop-in's ExecStart and DATA_SOURCE_NAME),
    /// aimed at the test cluster's socket and port and a free local port, as `account`.
    final class Exporter {
        let pid: pid_t
        let port: Int

        init(binary: String, config: HearthConfig, cluster: TestCluster, account: SystemAccount, queries: String) throws {
            let port = TestCluster.freePort()
            self.port = port
            let exporter = ExporterConfig(config)
            let dsn = exporter.dataSourceName.split(separator: " ").map { part -> String in
                if part.hasPrefix("host=") { return "host=\(cluster.socketDirectory)" }
                if part.hasPrefix("port=") { return "port=\(cluster.port)" }
                return String(part)
            }.joined(separator: " ")
            let arguments = exporter.arguments.map { argument -> String in
                if argument.hasPrefix("--web.listen-address=") { return "--web.listen-address=127.0.0.1:\(port)" }
                if argument.hasPrefix("--extend.query-path=") { return "--extend.query-path=\(queries)" }
                return argument
            }
            let argv = [
                "/usr/bin/setpriv", "--reuid=\(account.uid)", "--regid=\(account.gid)", "--clear-groups", "--", binary,
            ] + arguments
            var child: pid_t = 0
            let cArguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
            defer { cArguments.forEach { free($0) } }
            let environment: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), strdup("DATA_SOURCE_NAME=\(dsn)"), nil]
            defer { environment.forEach { free($0) } }
            guard posix_spawn(&child, argv[0], nil, nil, cArguments, environment) == 0 else {
                throw Failure("cannot start the exporter")
            }
            pid = child
        }

        /// A scrape; nil while it does not answer.
        func scrape() -> String? { try? ScrapeClient.get(host: "127.0.0.1", port: port) }

        /// Scrapes until `done` holds (at most `seconds`); the last body.
        func scrape(until done: (String) -> Bool, seconds: Double = 20) -> String {
            let end = Clock.nowMs() + seconds * 1000
            var last = ""
            while Clock.nowMs() < end {
                if let body = scrape() {
                    last = body
                    if done(body) { return body }
                }
                usleep(300_000)
            }
            return last
        }

        func stop() {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    /// The lines of `body` of one metric whose labels include all of `labels` (`name="value"`).
    static func lines(_ body: String, _ metric: String, _ labels: [String]) -> [String] {
        body.split(separator: "\n").map(String.init).filter { line in
            line.hasPrefix(metric + "{") && labels.allSatisfy { line.contains($0) }
        }
    }

    static func value(_ line: String?) -> Double? {
        guard let line, let space = line.lastIndex(of: " ") else { return nil }
        return Double(line[line.index(after: space)...])
    }

    @Test("the exporter, for real: peer as a pg_monitor-only role; 1000 rows inserted → 1000; a tenant's search_path, functions, settings, lock and hostile index name neither run code as it, nor stall it, nor break the format; no query text")
    func exporterAgainstHostileTenant() async throws {
        let monitor = "hmmon-\(Int.random(in: 10000..<99999))"
        try await Command.check([
            "useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", monitor,
        ])
        let account = try #require(SystemAccount.lookup(monitor))
        let s = try await DatabasesScenario()
        defer { s.cluster.stop() }
        // pg_stat_statements preloaded, as the postgres step's settings do.
        try await s.cluster.appendConf(MonitoringSettings.rendered)
        try await Command.check(
            [s.cluster.binDirectory + "/pg_ctl", "-D", s.cluster.dataDirectory, "-w", "restart"], asUser: s.cluster.postgres)
        let config = try s.config("AI_NAMES=logos,aletheia\nLOGOS_PASSWORD=logos-secret\nMONITORING_USER=\(monitor)")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        _ = try s.admin().query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public")

        // The role as the databases step made it: pg_monitor only, no password, CONNECT on ours.
        let admin = try s.admin()
        #expect(
            try RoleSpec(name: monitor, superuser: false, password: .none, memberOf: ["pg_monitor"]).isConverged(admin))
        for database in config.databases {
            #expect(try admin.query("SELECT has_database_privilege($1, $2, 'CONNECT')", [monitor, database]).scalar == "t")
        }

        // The hostile AI: its own schema and functions named like the catalog's, its database's
        // settings, a hostile index name; a log of who ran its functions.
        do {
        let tenant = try s.server.login("logos_db", user: "logos", password: Secret("logos-secret"))
        try tenant.execute(
            """
            CREATE TABLE public.ran (who text);
            GRANT INSERT ON public.ran TO PUBLIC;
            CREATE SCHEMA evil;
            GRANT USAGE ON SCHEMA evil TO PUBLIC;
            CREATE FUNCTION evil.mark() RETURNS bigint LANGUAGE plpgsql AS $f$
                BEGIN INSERT INTO public.ran VALUES (current_user); PERFORM pg_catalog.pg_sleep(30); RETURN 42; END $f$;
            CREATE FUNCTION evil.pg_total_relation_size(regclass) RETURNS bigint LANGUAGE sql AS 'SELECT evil.mark()';
            CREATE FUNCTION evil.pg_relation_size(regclass) RETURNS bigint LANGUAGE sql AS 'SELECT evil.mark()';
            CREATE FUNCTION evil.current_database() RETURNS name LANGUAGE sql AS 'SELECT evil.mark()::text::name';
            CREATE FUNCTION public.obj_description(oid, name) RETURNS text LANGUAGE sql AS 'SELECT evil.mark()::text';
            CREATE FUNCTION evil.note() RETURNS int LANGUAGE plpgsql AS $f$
                BEGIN INSERT INTO public.ran VALUES (current_user); RETURN 1; END $f$;
            CREATE FUNCTION evil.version() RETURNS text LANGUAGE sql AS 'SELECT evil.note()::text';
            -- pg_catalog named after evil: evil's functions come first for whoever keeps this path.
            ALTER DATABASE logos_db SET search_path = evil, pg_catalog, public;
            ALTER DATABASE logos_db SET statement_timeout = 0;
            ALTER DATABASE logos_db SET lock_timeout = 0;
            ALTER DATABASE logos_db SET default_transaction_read_only = off;
            ALTER DATABASE logos_db SET row_security = on;
            CREATE INDEX "x""y\\z
            w" ON public.memory_shards USING ivfflat (embedding vector_cosine_ops) WITH (lists = 3);
            INSERT INTO public.memory_shards (content) SELECT 'memory ' || g FROM pg_catalog.generate_series(1, 1000) g;
            """)
        }  // (the tenant's session ends here: its statistics are flushed when its backend ends)

        let exporterBinary = try await Self.binary("prometheus-postgres-exporter", "/usr/bin/prometheus-postgres-exporter")
        let queries = TestFiles.temporaryDirectory("hm-monitoring-queries")
        chmod(queries, 0o755)
        try FileSystem.writeAtomically(queries + "/queries.yaml", ExporterConfig(config).queriesFile, mode: 0o644)
        let exporter = try Exporter(
            binary: exporterBinary, config: config, cluster: s.cluster, account: account, queries: queries + "/queries.yaml")
        defer { exporter.stop() }

        let logosRows = ["datname=\"logos_db\"", "table=\"memory_shards\""]
        let body = exporter.scrape(until: { Self.value(Self.lines($0, "hearthminds_memory_rows", logosRows).first) == 1000 })
        #expect(Self.value(Self.lines(body, "hearthminds_memory_rows", logosRows).first) == 1000, "\(body.prefix(4000))")
        #expect(Self.lines(body, "hearthminds_memory_rows", logosRows).first?.contains("ai=\"logos\"") == true)
        #expect(Self.value(Self.lines(body, "pg_exporter_last_scrape_error", []).first ?? body.split(separator: "\n").map(String.init).first { $0.hasPrefix("pg_exporter_last_scrape_error ") }) == 0)
        #expect(body.contains("\npg_up 1\n"))
        // Every table of both AIs, and the shared database's.
        for database in config.databases {
            for table in ExporterConfig.tables {
                #expect(Self.lines(body, "hearthminds_memory_bytes", ["datname=\"\(database)\"", "table=\"\(table)\""]).count == 1, "\(database) \(table)")
            }
        }
        // The attack is real: a session of the same role without the pinned settings (the
        // database's search_path) runs the tenant's version() — as the monitoring role.
        do {
            let plain = try PGConnection(
                PGTarget(host: s.cluster.socketDirectory, port: s.cluster.port, database: "logos_db", user: monitor, asSystemUser: account))
            #expect(try plain.query("SELECT current_setting('search_path')").scalar == "evil, pg_catalog, public")
            _ = try plain.query("SELECT version()")
            #expect(try s.server.admin("logos_db").query("SELECT who FROM public.ran").rows.map { $0[0] ?? "" } == [monitor])
            _ = try s.server.admin("logos_db").query("DELETE FROM public.ran")
        }
        // The planted functions never ran under the exporter (sizes are the catalog's, not 42).
        let bytes = Self.value(Self.lines(body, "hearthminds_memory_bytes", logosRows).first) ?? 0
        #expect(bytes > 8192 && bytes != 42)
        #expect(try s.server.admin("logos_db").query("SELECT count(*) FROM public.ran").scalar == "0")
        // The hostile index name, escaped as the text format wants it; the index's facts.
        let hostile = Self.lines(body, "hearthminds_vector_index_lists", ["index=\"x\\\"y\\\\z\\nw\""])
        #expect(Self.value(hostile.first) == 3, "\(Self.lines(body, "hearthminds_vector_index_lists", []))")
        // The connections per role, and the top statements: labelled by query id, no text.
        #expect(!Self.lines(body, "hearthminds_connections_clients", ["role=\"\(monitor)\""]).isEmpty)
        let statements = Self.lines(body, "hearthminds_statements_calls_total", ["datname=\"logos_db\"", "role=\"logos\""])
        #expect(!statements.isEmpty)
        let ourLines = body.split(separator: "\n").filter { $0.hasPrefix("hearthminds_") }
        #expect(!body.contains("generate_series") && !body.contains("logos-secret"))
        #expect(!ourLines.contains { $0.contains("memory 1") || $0.contains("INSERT") || $0.contains("SELECT") })

        // A lock the tenant holds on its table: the scrape is not held past the lock timeout.
        var locker: PGConnection? = try s.server.login("logos_db", user: "logos", password: Secret("logos-secret"))
        try locker?.execute("BEGIN; LOCK TABLE public.memory_shards IN ACCESS EXCLUSIVE MODE")
        let t0 = Clock.nowMs()
        let locked = exporter.scrape()
        let took = Clock.nowMs() - t0
        #expect(locked != nil)
        #expect(took < 8000, "a scrape under the tenant's lock took \(took) ms")
        // The lock was met (logos_db's memory_shards is missing from that scrape: its query ended
        // at the lock timeout), and aletheia's metrics are there all the same.
        #expect(Self.lines(locked ?? "", "hearthminds_memory_bytes", logosRows).isEmpty)
        #expect(Self.lines(locked ?? "", "hearthminds_memory_rows", ["datname=\"aletheia_db\""]).count == ExporterConfig.tables.count)
        try locker?.execute("ROLLBACK")
        locker = nil

        // promtool (Debian's prometheus package) on our families: the format is right.
        let promtool = try await Self.binary("prometheus", "/usr/bin/promtool")
        let ours = body.split(separator: "\n").filter {
            $0.hasPrefix("hearthminds_") || $0.hasPrefix("# HELP hearthminds_") || $0.hasPrefix("# TYPE hearthminds_")
        }.joined(separator: "\n") + "\n"
        #expect(ours.split(separator: "\n").count > 50)
        let checked = try await Command.run([promtool, "check", "metrics"], input: ours)
        #expect(checked.status == 0, "promtool check metrics: \(checked.stdout)\(checked.stderr)")
        // And the rules file.
        let rules = try await Command.run([promtool, "check", "rules", TestFiles.repositoryRoot + "/etc/prometheus/hearthminds-rules.yml"])
        #expect(rules.status == 0, "\(rules.stdout)\(rules.stderr)")
    }

    @Test("a dry run on a host without a cluster: the monitoring step changes nothing and says what needs the postgres step, what would change")
    func dryRunWithoutCluster() async throws {
        let textfiles = TestFiles.temporaryDirectory("hm-textfiles")
        chmod(textfiles, 0o755)
        let config = try loadConfig("PG_CLUSTER_NAME=hmnone\(Int.random(in: 1000..<9999))\nNODE_EXPORTER_TEXTFILE_DIR=\(textfiles)")
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "d", dryRun: true)
        let outcome = await runner.run(
            MonitoringStep.make(
                config, migrations: TestFiles.repositoryRoot + "/Migrations", socketDirectory: "/var/run/postgresql",
                systemd: false))
        #expect(outcome.status == 0, "\(outcome)")
        #expect(outcome.needs.contains("postgres") && outcome.unknown >= 2 && outcome.wouldChange >= 3, "\(outcome)")
        #expect(!FileSystem.exists(ExporterConfig.directory))
        #expect(try FileSystem.list(textfiles).isEmpty)
    }

    @Test("the schema textfile: each database's revision as its owner reads it (root's file, 0644); converged, nothing rewritten; a migration down shows")
    func schemaTextfile() async throws {
        let s = try await DatabasesScenario()
        defer { s.cluster.stop() }
        let textfiles = TestFiles.temporaryDirectory("hm-textfiles")
        chmod(textfiles, 0o755)
        let config = try s.config("AI_NAMES=logos,aletheia\nNODE_EXPORTER_TEXTFILE_DIR=\(textfiles)")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let credentials = Credentials(config, book: PasswordBook(config, directory: s.clientDirectory))
        let migrations = TestFiles.repositoryRoot + "/Migrations"
        let loaded = Once { try MigrationSet.load(directory: migrations, config: config) }
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "m", dryRun: false)
        func step() -> Step {
            Step("monitoring", [MonitoringStep.schemaAction(config, server: s.server, credentials: credentials, loaded: loaded)])
        }
        let first = await runner.run(step())
        #expect(first.status == 0 && first.changed == 1)
        let text = try FileSystem.readText(textfiles + "/" + MonitoringStep.schemaFile)
        let head = try #require(try loaded.get().head)
        #expect(text.contains("hearthminds_schema_at_head{datname=\"logos_db\"} 1\n"))
        #expect(text.contains("hearthminds_schema_checksums_match{datname=\"logos_db\"} 1\n"))
        #expect(text.contains("hearthminds_schema_revision_info{datname=\"logos_db\",revision=\"\(head)\",head=\"\(head)\"} 1\n"))
        // Converged: nothing written again.
        #expect(await runner.run(step()).changed == 0)
        // One revision down in logos_db: the file says so.
        let set = try loaded.get()
        let migrator = try Migrator(
            set: set, database: "logos_db", server: s.server, credentials: credentials, expected: "logos")
        try migrator.downgrade(steps: 1)
        #expect(await runner.run(step()).changed == 1)
        let after = try FileSystem.readText(textfiles + "/" + MonitoringStep.schemaFile)
        #expect(after.contains("hearthminds_schema_at_head{datname=\"logos_db\"} 0\n"))
        #expect(after.contains("hearthminds_schema_at_head{datname=\"aletheia_db\"} 1\n"))
        let below = try #require(set.revisions.dropLast().last?.id)
        #expect(after.contains("hearthminds_schema_revision_info{datname=\"logos_db\",revision=\"\(below)\",head=\"\(head)\"} 1\n"))
        let st = try #require(try OpenDirectory.open(textfiles).entry(MonitoringStep.schemaFile))
        #expect(st.uid == 0 && st.mode == 0o644)
    }
}
