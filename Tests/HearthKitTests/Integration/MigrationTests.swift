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

/// A throwaway database with its own owner role (a login role with a password, as an AI is) in
/// the shared test cluster, with `vector` created by the superuser as the databases step does.
struct ScratchDatabase {
    let cluster: TestCluster
    let name: String
    let owner: String
    let password: Secret

    /// `owner`: the owner role's name (default: one with a hyphen, like hearthminds-service, so
    /// that identifier escaping matters).
    static func make(_ cluster: TestCluster, vector: Bool = true, name: String? = nil, owner: String? = nil) throws
        -> ScratchDatabase
    {
        let id = Int.random(in: 100_000..<999_999)
        let db = ScratchDatabase(
            cluster: cluster, name: name ?? "mig_db_\(id)", owner: owner ?? "mig-owner-\(id)",
            password: Secret("owner-pw-\(id)"))
        let admin = try cluster.connect()
        let role = try admin.identifier(db.owner)
        if try admin.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [db.owner]).first == nil {
            try admin.execute("CREATE ROLE \(role) LOGIN")
        }
        try admin.execute("ALTER ROLE \(role) PASSWORD \(try admin.literal(try admin.scramVerifier(db.password, user: db.owner)))")
        try admin.execute("CREATE DATABASE \(try admin.identifier(db.name)) OWNER \(role)")
        if vector { try db.connect().execute("CREATE EXTENSION vector") }
        return db
    }

    var server: PGServer {
        PGServer(socketDirectory: cluster.socketDirectory, port: cluster.port, tcpHost: "127.0.0.1")
    }

    /// The owner's login, as the suite holds an AI's.
    var credentials: Credentials { Credentials(peerAccounts: [], passwords: [owner: password]) }

    /// A superuser connection (postgres, by peer).
    func connect() throws -> PGConnection { try cluster.connect(database: name) }

    /// A connection as the owner itself, over TCP with its password.
    func connectAsOwner() throws -> PGConnection {
        try cluster.connectTCP(database: name, user: owner, password: password)
    }

    /// An owner named as an AI may be (hm-migrate reaches a database only as a configured owner).
    static func aiOwner() -> String { "migai_\(Int.random(in: 100_000..<999_999))" }

    /// A host file for hm-migrate: the cluster's port, the owner as the one AI, its password
    /// (mode 0600: it holds a password).
    func writeConfig(_ path: String) throws {
        try FileSystem.writeAtomically(
            path, "POSTGRES_PORT=\(cluster.port)\nAI_NAMES=\(owner)\n\(owner.uppercased())_PASSWORD=\(password.reveal)\n",
            mode: 0o600)
    }

    func migrator(_ set: MigrationSet, progress: @escaping (String) -> Void = { _ in }) throws -> Migrator {
        try Migrator(set: set, database: name, server: server, credentials: credentials, progress: progress)
    }

    func scalar(_ sql: String, _ params: [String?] = []) throws -> String? { try connect().query(sql, params).scalar }

    func exists(_ relation: String) throws -> Bool {
        try scalar("SELECT to_regclass($1) IS NOT NULL", ["public." + relation]) == "t"
    }

    /// `pg_dump --schema-only`, as postgres over the socket, without the random `\\restrict`
    /// key lines that pg_dump 15.14 and later write.
    func schema() async throws -> String {
        let dump = try await Command.check(
            [cluster.binDirectory + "/pg_dump", "--schema-only", "-h", cluster.socketDirectory, "-p", String(cluster.port),
             "-U", "postgres", "-d", name],
            asUser: cluster.postgres)
        #expect(dump.contains("PostgreSQL database dump complete"))
        return dump.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("\\restrict ") && !$0.hasPrefix("\\unrestrict ") }
            .joined(separator: "\n")
    }

    func drop() {
        guard let admin = try? cluster.connect() else { return }
        _ = try? admin.execute("DROP DATABASE IF EXISTS \(try admin.identifier(name)) WITH (FORCE)")
        _ = try? admin.execute("DROP ROLE IF EXISTS \(try admin.identifier(owner))")
    }
}

enum MigrationFixtures {
    static let directory = TestFiles.repositoryRoot + "/Migrations"
    static let patternQuery = "SELECT content FROM eng_patterns WHERE tags @> ARRAY['testing', 'validation']"

    static func set(_ directory: String = directory, _ config: String = "") throws -> MigrationSet {
        try MigrationSet.load(directory: directory, config: try loadConfig(config))
    }

    /// A private copy of Migrations/ plus `extra` files.
    static func copy(_ extra: [String: String] = [:]) throws -> String {
        let dir = TestFiles.temporaryDirectory("hm-migs")
        for name in try FileSystem.list(directory) {
            try FileSystem.writeAtomically(dir + "/" + name, try FileSystem.readText(directory + "/" + name))
        }
        for (name, text) in extra { try FileSystem.writeAtomically(dir + "/" + name, text) }
        return dir
    }

    static var hmMigrate: String { TestFiles.executable("hm-migrate") }
}

@Suite("migrations (integration, real PostgreSQL 15 + pgvector)")
struct MigrationTests {
    @Test("up to head as the owner; down to base; up again gives the same schema (pg_dump)")
    func roundTrip() async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let set = try MigrationFixtures.set()
        let fresh = try await db.schema()

        let t0 = Clock.nowMs()
        let done = try db.migrator(set).upgrade()
        print("timing: up to head on one database: \(JSON.number(Clock.nowMs() - t0)) ms")
        #expect(done.map(\.move.revision.id) == ["0001", "0003", "0004", "0005", "0006", "0007", "0008"])
        let status = try db.migrator(set).status()
        #expect(status.current == "0008" && status.atHead && status.converged && status.unrecorded.isEmpty)
        #expect(try db.scalar("SELECT version_num FROM alembic_version") == "0008")
        #expect(try db.scalar("SELECT count(*) FROM alembic_version") == "1")

        // Every object of ours belongs to the database's owner.
        let owners = try db.connect().query("""
            SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind IN ('r', 'i', 'S')
            """).rows.map { $0[0] ?? "" }
        #expect(owners == [db.owner])
        #expect(try db.scalar("""
            SELECT format_type(atttypid, atttypmod) FROM pg_attribute
            WHERE attrelid = 'memory_shards'::regclass AND attname = 'embedding'
            """) == "vector(1536)")
        #expect(try db.scalar("SELECT indexdef FROM pg_indexes WHERE indexname = 'memory_shards_embedding_ivfflat_idx'")?
            .contains("ivfflat (embedding vector_cosine_ops) WITH (lists='100')") == true)
        let pattern = try #require(try db.scalar(MigrationFixtures.patternQuery))
        #expect(pattern.hasPrefix("Boolean validation pattern (check / apply / verify)"))
        #expect(pattern.contains("Fail fast") && pattern.contains("Every boolean is logged"))
        let atHead = try await db.schema()
        #expect(atHead != fresh)

        let undone = try db.migrator(set).downgrade(to: "base")
        #expect(undone.map(\.move.revision.id) == ["0008", "0007", "0006", "0005", "0004", "0003", "0001"])
        #expect(try db.migrator(set).currentRevision() == nil)
        for table in ["memory_shards", "raw_conversations", "eng_patterns"] { #expect(try !db.exists(table)) }
        #expect(try db.scalar("SELECT count(*) FROM pg_extension WHERE extname = 'vector'") == "1")

        try db.migrator(set).upgrade()
        #expect(try await db.schema() == atHead)
        let directions = try db.migrator(set).history().map { "\($0.direction) \($0.revision)" }
        #expect(directions.count == 21)
        #expect(Array(directions.prefix(8)) == ["up 0001", "up 0003", "up 0004", "up 0005", "up 0006", "up 0007", "up 0008", "down 0008"])

        // Down one step, and a downgrade below base is refused.
        try db.migrator(set).downgrade()
        #expect(try db.migrator(set).currentRevision() == "0007")
        expectFailure(.migration) { try db.migrator(set).downgrade(steps: 7) }
        expectFailure(.migration) { try db.migrator(set).upgrade(to: "0004") }
    }

    @Test("--sql prints the script of up and down and changes nothing")
    func sqlOnly() async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let set = try MigrationFixtures.set()
        let before = try await db.schema()
        let migrator = try db.migrator(set)
        let script = try migrator.script(try migrator.planUp())
        #expect(script.contains("CREATE TABLE IF NOT EXISTS public.alembic_version"))
        // Run as the owner itself: no role switching in the script.
        #expect(script.contains("run as its owner \(db.owner)") && !script.contains("SET LOCAL ROLE"))
        #expect(script.contains("CREATE TABLE memory_shards"))
        #expect(script.contains("INSERT INTO public.alembic_version (version_num) VALUES ('0001')"))
        #expect(script.contains("UPDATE ONLY public.alembic_version SET version_num = '0006' WHERE version_num = '0005'"))
        // One transaction per revision; the state tables are made in the first one.
        #expect(script.components("BEGIN;") == 7 && script.components("COMMIT;") == 7)
        #expect(try await db.schema() == before)
        #expect(try !db.exists("alembic_version"))

        try migrator.upgrade(to: "0004")
        let at0004 = try await db.schema()
        let down = try migrator.script(try migrator.planDown(to: "base"))
        #expect(down.contains("ALTER TABLE memory_shards\n    DROP COLUMN metadata"))
        #expect(down.contains("DELETE FROM ONLY public.alembic_version WHERE version_num = '0001'"))
        #expect(!down.contains("CREATE TABLE IF NOT EXISTS"))
        #expect(try await db.schema() == at0004)
        #expect(try migrator.currentRevision() == "0004")
    }

    @Test("a failing revision rolls back alone and names its file, line and statement")
    func brokenRevision() async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let dir = try MigrationFixtures.copy([
            "0009_broken.up.sql": "CREATE TABLE half_done (x int);\n\nSELECT no_such_column\n  FROM memory_shards;\n",
            "0009_broken.down.sql": "DROP TABLE half_done;\n",
        ])
        defer { TestFiles.removeTree(dir) }
        let set = try MigrationFixtures.set(dir)
        var message = ""
        do {
            try db.migrator(set).upgrade()
            Issue.record("the broken revision passed")
        } catch {
            message = "\(error)"
        }
        #expect(message.contains("0009_broken.up.sql line 3 failed: SELECT no_such_column FROM memory_shards"))
        #expect(message.contains("no_such_column") && message.contains("42703"))
        #expect(message.contains("stays at 0008"))
        #expect(try db.migrator(set).currentRevision() == "0008")
        #expect(try !db.exists("half_done"))
        #expect(try db.exists("eng_patterns"))
        #expect(try db.migrator(set).history().filter { $0.revision == "0009" }.isEmpty)
    }

    @Test("tables exist but no state (the seed's troubleshooting case): up fails, stamp 0001 then up works")
    func stampBaseline() async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let set = try MigrationFixtures.set()
        // The application created the baseline itself, as the seed allows in development.
        let owner = try db.connect()
        try owner.execute("SET ROLE \(try owner.identifier(db.owner))")
        for statement in set.revisions[0].up.statements { try owner.execute(statement.text) }

        #expect {
            try db.migrator(set).upgrade()
        } throws: { error in
            "\(error)".contains("0001_baseline.up.sql line 7 failed: CREATE TABLE memory_shards")
                && "\(error)".contains("already exists")
        }
        #expect(try db.migrator(set).currentRevision() == nil)

        try db.migrator(set).stamp("0001")
        let stamped = try db.migrator(set).status()
        #expect(stamped.current == "0001" && stamped.changed.isEmpty && stamped.unrecorded.isEmpty)
        try db.migrator(set).upgrade()
        #expect(try db.migrator(set).status().converged)
        #expect(try db.scalar(MigrationFixtures.patternQuery) != nil)

        // stamp base forgets the state and leaves the tables.
        try db.migrator(set).stamp("base")
        #expect(try db.migrator(set).currentRevision() == nil)
        #expect(try db.exists("eng_patterns"))
        expectFailure(.migration) { try db.migrator(set).stamp("0002") }
    }

    @Test("a database Alembic stamped at 0003 upgrades to head")
    func alembicStamped() async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let set = try MigrationFixtures.set()
        // What Alembic leaves: the schema of 0001 and 0003, and its table holding '0003'; no
        // history of ours. Made first by the superuser Alembic connected as: that table is not
        // the owner's, so it is refused by name until it is handed to the owner.
        let conn = try db.connect()
        try conn.execute("SET ROLE \(try conn.identifier(db.owner))")
        for revision in set.revisions.prefix(2) { for s in revision.up.statements { try conn.execute(s.text) } }
        try conn.execute("RESET ROLE")
        try conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))")
        try conn.execute("INSERT INTO alembic_version (version_num) VALUES ('0003')")
        #expect {
            try db.migrator(set).status()
        } throws: { error in
            "\(error)".contains("public.alembic_version is not a plain table of \(db.owner): it is owned by postgres")
        }
        try conn.execute("ALTER TABLE alembic_version OWNER TO \(try conn.identifier(db.owner))")

        let before = try db.migrator(set).status()
        #expect(before.current == "0003" && before.unrecorded == ["0001", "0003"] && before.changed.isEmpty)
        let done = try db.migrator(set).upgrade()
        #expect(done.map(\.move.revision.id) == ["0004", "0005", "0006", "0007", "0008"])
        #expect(try db.connect().query("SELECT version_num FROM alembic_version").rows == [["0008"]])
        let after = try db.migrator(set).status()
        #expect(after.atHead && after.converged && after.unrecorded == ["0001", "0003"])
        #expect(try db.scalar(MigrationFixtures.patternQuery) != nil)
        #expect(try db.scalar("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'eng_patterns'") == db.owner)
    }

    @Test("check reports an applied revision whose file was edited; the step's check is then false; stamp records it")
    func editedFile() async throws {
        let cluster = try await TestCluster.shared()
        let dir = try MigrationFixtures.copy()
        defer { TestFiles.removeTree(dir) }
        let db = try ScratchDatabase.make(cluster, owner: ScratchDatabase.aiOwner())
        defer { db.drop() }
        try db.migrator(try MigrationFixtures.set(dir)).upgrade(to: "0005")

        let path = dir + "/0004_content_metadata.up.sql"
        try FileSystem.writeAtomically(path, try FileSystem.readText(path) + "-- edited after it ran\n")
        let edited = try MigrationFixtures.set(dir)
        let status = try db.migrator(edited).status()
        #expect(status.changed == ["0004"] && !status.converged)

        // The command line: exit 1, naming the revision and its files.
        let config = TestFiles.temporaryDirectory("hm-migcfg")
        defer { TestFiles.removeTree(config) }
        try db.writeConfig(config + "/hm.env")
        let result = try await Command.run(
            [MigrationFixtures.hmMigrate, "check", "--config", config + "/hm.env", "--database", db.name,
             "--migrations", dir, "--socket-dir", cluster.socketDirectory],
            environment: ["HEARTHMINDS_LOG": config + "/log.jsonl", "HEARTHMINDS_LOCK_DIR": config + "/lock"])
        #expect(result.status == 1)
        #expect(result.stdout.contains("\(db.name): revision 0004 changed since it was applied (0004_content_metadata.up.sql"))

        // A deliberate change is recorded by stamping the current revision again.
        try db.migrator(edited).stamp("0005")
        #expect(try db.migrator(edited).status().changed.isEmpty)
    }

    @Test("two runners on one database serialize on the advisory lock; on one host the run lock keeps the second out")
    func concurrentRunners() async throws {
        let cluster = try await TestCluster.shared()
        #expect(FileSystem.exists(MigrationFixtures.hmMigrate), "build first: swift build --build-tests")
        let db = try ScratchDatabase.make(cluster, owner: ScratchDatabase.aiOwner())
        defer { db.drop() }
        let work = TestFiles.temporaryDirectory("hm-migcfg")
        defer { TestFiles.removeTree(work) }
        try db.writeConfig(work + "/hm.env")
        let argv = [MigrationFixtures.hmMigrate, "up", "--config", work + "/hm.env", "--database", db.name,
                    "--migrations", MigrationFixtures.directory, "--socket-dir", cluster.socketDirectory]
        let env: [String: String?] = ["HEARTHMINDS_LOG": work + "/log.jsonl", "HEARTHMINDS_LOCK_DIR": work + "/lock"]

        // A holder of the lock keeps a runner waiting, and nothing changes meanwhile.
        let holder = try db.connect()
        try holder.query("SELECT pg_advisory_lock($1::bigint)", [String(MigrationState.lockKey)])
        async let waiting = Command.run(argv, environment: env)
        var waiters = "0"
        for _ in 0..<300 where waiters == "0" {  // up to 30 s for the process to start and block
            try await Task.sleep(for: .milliseconds(100))
            waiters = try db.scalar(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
                    + "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())") ?? "?"
        }
        #expect(waiters == "1")
        try await Task.sleep(for: .milliseconds(300))
        #expect(try !db.exists("memory_shards"))
        try holder.query("SELECT pg_advisory_unlock($1::bigint)", [String(MigrationState.lockKey)])
        let first = try await waiting
        #expect(first.status == 0, "\(first.stderr)")
        #expect(first.stdout.contains("waiting for another migration runner"))
        #expect(first.stdout.contains("\(db.name): at 0008 (head), 7 revision(s) applied"))

        // On one host, hm-migrate takes the run lock like every executable: while another run
        // holds it, a second refuses at once (75), running nothing.
        try FileSystem.makeDirectories(work + "/lock", mode: 0o700)
        let held = try await Command.run(["flock", work + "/lock/bootstrap.lock"] + argv, environment: env)
        #expect(held.status == ExitStatus.busy && held.stderr.contains("another run holds the lock"), "\(held.stderr)")

        // Two runners at once on a fresh database that do not share a run lock (two hosts, or
        // another tool): one applies everything, the other waits on the advisory lock and
        // finds nothing to do.
        try db.migrator(try MigrationFixtures.set()).downgrade(to: "base")
        var envB = env
        envB["HEARTHMINDS_LOCK_DIR"] = work + "/lock-b"
        async let a = Command.run(argv, environment: env)
        async let b = Command.run(argv, environment: envB)
        let (ra, rb) = try await (a, b)
        #expect(ra.status == 0 && rb.status == 0, "\(ra.stderr) \(rb.stderr)")
        let outputs = [ra.stdout, rb.stdout]
        #expect(outputs.filter { $0.contains("7 revision(s) applied") }.count == 1)
        #expect(outputs.filter { $0.contains("nothing to do") }.count == 1)
        #expect(try db.scalar("SELECT count(*) FROM hearthminds_migration_history WHERE direction = 'up'") == "14")
        #expect(try db.scalar("SELECT count(*) FROM alembic_version") == "1")
        let log = try FileSystem.readText(work + "/log.jsonl")
        #expect(log.contains("\"step\":\"migrate\"") && log.contains("\"result\":true"))
    }

    @Test("vector: the owner's IF NOT EXISTS passes when it exists; where missing, the runner creates it as superuser")
    func vectorExtension() async throws {
        let cluster = try await TestCluster.shared()
        let with = try ScratchDatabase.make(cluster)
        defer { with.drop() }
        let asOwner = try with.connect()
        try asOwner.execute("SET ROLE \(try asOwner.identifier(with.owner))")
        try asOwner.execute("CREATE EXTENSION IF NOT EXISTS vector")  // no error: it exists

        let without = try ScratchDatabase.make(cluster, vector: false)
        defer { without.drop() }
        let owner2 = try without.connect()
        try owner2.execute("SET ROLE \(try owner2.identifier(without.owner))")
        #expect {
            try owner2.execute("CREATE EXTENSION IF NOT EXISTS vector")
        } throws: { error in
            "\(error)".contains("permission denied to create extension \"vector\"")
        }
        try without.migrator(try MigrationFixtures.set()).upgrade()
        #expect(try without.scalar("SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = 'vector'") == "postgres")
        #expect(try without.scalar("SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'memory_shards'") == without.owner)
    }

    @Test("the migrations step: a dry run changes nothing, a run brings every database to head, a rerun applies nothing")
    func step() async throws {
        let cluster = try await TestCluster.shared()
        let id = Int.random(in: 1000..<9999)
        // Each database is migrated as its owner: the service account by peer, each AI with its password.
        let service = "hmsvc-mig-\(id)"
        try await Command.check(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", service])
        defer { TestFiles.spawn(["userdel", service]) }
        let ais = ["stepa_\(id)", "stepb_\(id)"]
        let shared = try ScratchDatabase.make(cluster, name: "hm_step_\(id)", owner: service)
        let aiDBs = try ais.map { try ScratchDatabase.make(cluster, name: $0 + "_db", owner: $0) }
        let dbs = [shared] + aiDBs
        defer { dbs.forEach { $0.drop() } }
        let config = try loadConfig(
            """
            POSTGRES_PORT=\(cluster.port)
            HEARTHMINDS_DB=hm_step_\(id)
            HEARTHMINDS_SERVICE_USER=\(service)
            AI_NAMES=["stepa_\(id)", "stepb_\(id)"]
            """,
            environment: Dictionary(uniqueKeysWithValues: aiDBs.map { ($0.owner.uppercased() + "_PASSWORD", $0.password.reveal) }))
        func step() -> Step {
            MigrationsStep.make(config, directory: MigrationFixtures.directory, socketDirectory: cluster.socketDirectory)
        }
        let dry = await StepRunner(console: Console(colour: false), log: nil, runID: "t", dryRun: true).run(step())
        #expect(dry.status == 0 && dry.pending == 3 && dry.changed == 0)
        #expect(try dbs.allSatisfy { try !$0.exists("memory_shards") })

        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "t", dryRun: false)
        let first = await runner.run(step())
        #expect(first.status == 0 && first.changed == 3)
        for db in dbs { #expect(try db.scalar(MigrationFixtures.patternQuery) != nil) }
        let second = await runner.run(step())
        #expect(second.status == 0 && second.changed == 0)

        // An edited applied file is a definite false, even in a dry run.
        let dir = try MigrationFixtures.copy()
        defer { TestFiles.removeTree(dir) }
        let path = dir + "/0006_eng_patterns.up.sql"
        try FileSystem.writeAtomically(path, try FileSystem.readText(path) + "\n-- edited\n")
        let edited = MigrationsStep.make(config, directory: dir, socketDirectory: cluster.socketDirectory)
        let third = await StepRunner(console: Console(colour: false), log: nil, runID: "t", dryRun: true).run(edited)
        #expect(third.status == 1)
        #expect(third.failedAction?.hasSuffix("at the head revision") == true)
        #expect(third.changed == 0)
    }

    @Test("a missing database is pending in a dry run and a false result in a run")
    func missingDatabase() async throws {
        let cluster = try await TestCluster.shared()
        let config = try loadConfig("POSTGRES_PORT=\(cluster.port)\nHEARTHMINDS_DB=hm_absent_\(Int.random(in: 1000..<9999))\nAI_NAMES=")
        let step = MigrationsStep.make(config, directory: MigrationFixtures.directory, socketDirectory: cluster.socketDirectory)
        let dry = await StepRunner(console: Console(colour: false), log: nil, runID: "t", dryRun: true).run(step)
        #expect(dry.status == 0 && dry.pending == 1)
        let run = await StepRunner(console: Console(colour: false), log: nil, runID: "t", dryRun: false).run(step)
        #expect(run.status == 1)
    }

    @Test("hm-migrate on the command line: up --sql, up, current, history, down, stamp, and bad usage")
    func commandLine() async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster, owner: ScratchDatabase.aiOwner())
        defer { db.drop() }
        let work = TestFiles.temporaryDirectory("hm-migcfg")
        defer { TestFiles.removeTree(work) }
        try db.writeConfig(work + "/hm.env")
        func run(_ args: [String]) async throws -> CommandResult {
            try await Command.run(
                [MigrationFixtures.hmMigrate] + args
                    + ["--config", work + "/hm.env", "--database", db.name, "--migrations", MigrationFixtures.directory,
                       "--socket-dir", cluster.socketDirectory],
                environment: ["HEARTHMINDS_LOG": work + "/log.jsonl", "HEARTHMINDS_LOCK_DIR": work + "/lock"])
        }
        let sql = try await run(["up", "--sql"])
        #expect(sql.status == 0 && sql.stdout.contains("CREATE TABLE memory_shards"))
        #expect(try !db.exists("alembic_version"))
        let dry = try await run(["up", "--dry-run"])
        #expect(dry.status == 0 && dry.stdout.contains("would run: \(db.name): base -> 0008: 0001_baseline.up.sql"))
        #expect(try !db.exists("memory_shards"))

        #expect(try await run(["up", "--to", "0004"]).stdout.contains("\(db.name): at 0004, 3 revision(s) applied"))
        #expect(try await run(["current"]).stdout == "\(db.name): 0004 (head is 0008)\n")
        let history = try await run(["history", "--applied"])
        #expect(history.stdout.contains("0007 -> 0008 (head), vector_storage"))
        #expect(history.stdout.contains("up     0003"))
        #expect(try await run(["down"]).stdout.contains("\(db.name): at 0003, 1 revision(s) undone"))
        #expect(try await run(["stamp", "head"]).status == 0)
        #expect(try await run(["current"]).stdout == "\(db.name): 0008 (head)\n")
        #expect(try await run(["check"]).status == 0)

        #expect(try await run(["down", "--to", "base", "--steps", "1"]).status == 64)
        #expect(try await run(["up", "--to", "0002"]).stderr.contains("no revision '0002'"))
        #expect(try await run(["up", "--set", "EMBEDDING_DIM=0"]).status == 64)
        let bad = try await Command.run([MigrationFixtures.hmMigrate, "up", "--config", work + "/missing.env"])
        #expect(bad.status == 64)
    }

    @Test("timing: up to head on 10 databases")
    func tenDatabases() async throws {
        let cluster = try await TestCluster.shared()
        let set = try MigrationFixtures.set()
        var dbs: [ScratchDatabase] = []
        defer { dbs.forEach { $0.drop() } }
        for _ in 0..<10 { dbs.append(try ScratchDatabase.make(cluster)) }
        let t0 = Clock.nowMs()
        for db in dbs { try db.migrator(set).upgrade() }
        let ms = Clock.nowMs() - t0
        print("timing: up to head on 10 databases: \(JSON.number(ms)) ms (\(JSON.number(ms / 10)) ms each)")
        for db in dbs { #expect(try db.migrator(set).status().converged) }
    }
}

extension String {
    fileprivate func components(_ separator: String) -> Int {
        var count = 0
        var rest = self[...]
        while let range = rest.firstRange(of: separator) {
            count += 1
            rest = rest[range.upperBound...]
        }
        return count
    }
}
