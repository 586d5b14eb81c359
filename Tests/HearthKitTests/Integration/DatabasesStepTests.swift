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

/// A fresh cluster, a throwaway service account and client directory per scenario: roles are
/// cluster-wide, so scenarios do not share a cluster.
final class DatabasesScenario {
    let cluster: TestCluster
    let serviceUser: String
    let clientDirectory: String
    let server: PGServer
    let logPath: String

    init() async throws {
        cluster = try await TestCluster.start()
        serviceUser = "hmsvc-\(Int.random(in: 10000..<99999))"
        try await Command.check(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", serviceUser])
        let dir = TestFiles.temporaryDirectory()
        clientDirectory = dir + "/etc"
        logPath = dir + "/bootstrap.jsonl"
        server = PGServer(socketDirectory: cluster.socketDirectory, port: cluster.port, tcpHost: "127.0.0.1")
    }

    func config(_ extra: String = "") throws -> HearthConfig {
        try loadConfig("HEARTHMINDS_SERVICE_USER=\(serviceUser)\nPOSTGRES_PORT=\(cluster.port)\n" + extra)
    }

    /// `jobs`: roles and databases side by side (nil: the default width).
    func run(_ config: HearthConfig, dryRun: Bool = false, jobs: Int? = nil) async throws -> StepRunner.Outcome {
        let runner = StepRunner(console: Console(colour: false), log: try JSONLog(path: logPath), runID: "t", dryRun: dryRun)
        return await runner.run(DatabasesStep.make(config, server: server, clientDirectory: clientDirectory, jobs: jobs))
    }

    /// The migrations step (`jobs` databases side by side).
    func migrate(_ config: HearthConfig, jobs: Int? = nil) async throws -> StepRunner.Outcome {
        let runner = StepRunner(console: Console(colour: false), log: try JSONLog(path: logPath), runID: "m", dryRun: false)
        return await runner.run(
            MigrationsStep.make(
                config, directory: TestFiles.repositoryRoot + "/Migrations", socketDirectory: cluster.socketDirectory,
                clientDirectory: clientDirectory, jobs: jobs))
    }

    /// The migrations and vector-index steps, then verify (which checks every database is at
    /// head, with its search setting).
    func verify(_ config: HearthConfig, jobs: Int? = nil) async throws -> StepRunner.Outcome {
        let migrated = try await migrate(config, jobs: jobs)
        guard migrated.status == 0 else { return migrated }
        let runner = StepRunner(console: Console(colour: false), log: try JSONLog(path: logPath), runID: "v", dryRun: false)
        let indexed = await runner.run(vectorIndexStep(config))
        guard indexed.status == 0 else { return indexed }
        return await runner.run(
            VerifyStep.make(
                config, server: server, migrations: TestFiles.repositoryRoot + "/Migrations",
                clientDirectory: clientDirectory, jobs: jobs))
    }

    func admin(_ database: String = "postgres") throws -> PGConnection { try cluster.connect(database: database) }

    func vectorIndexStep(_ config: HearthConfig, lockTimeout: String = PGServer.lockTimeout) -> Step {
        VectorIndexStep.make(
            config, server: server, clientDirectory: clientDirectory, console: Console(colour: false),
            lockTimeout: lockTimeout)
    }

    func tearDown() {
        cluster.stop()
        TestFiles.spawn(["userdel", serviceUser])
        TestFiles.removeTree(String(clientDirectory.dropLast(4)))
    }
}

@Suite("databases and verify steps (integration, real PostgreSQL 15 + pgvector)", .serialized)
struct DatabasesStepTests {
    @Test("a dry run changes nothing; a run converges every role, database, extension and grant; a rerun applies nothing")
    func converge() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos,aletheia")

        let dry = try await s.run(config, dryRun: true)
        #expect(dry.status == 0 && dry.changed == 0 && dry.pending > 0)
        #expect(try s.admin().query("SELECT count(*) FROM pg_roles WHERE rolname IN ('logos','aletheia','hearthminds')").scalar == "0")

        let first = try await s.run(config)
        #expect(first.status == 0, "failed at \(first.failedAction ?? "")")
        let db = try s.admin()
        // Roles.
        let roles = try db.query(
            "SELECT rolname, rolsuper, rolcreatedb, rolcreaterole, rolcanlogin, left(rolpassword, 14) FROM pg_authid WHERE rolname = ANY($1::text[]) ORDER BY 1",
            ["{aletheia,hearthminds,logos,\(s.serviceUser)}"]).rows
        #expect(roles.map { $0[0] } == ["aletheia", "hearthminds", s.serviceUser, "logos"])
        #expect(roles[0] == ["aletheia", "f", "f", "f", "t", "SCRAM-SHA-256$"])
        #expect(roles[1] == ["hearthminds", "t", "f", "f", "t", "SCRAM-SHA-256$"])
        #expect(roles[2] == [s.serviceUser, "f", "f", "f", "t", nil])
        #expect(try db.query("SELECT pg_has_role('hearthminds', 'pg_monitor', 'MEMBER')").scalar == "t")
        #expect(try db.query("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = 'postgres'").scalar == "t")
        // Databases, owners, encoding.
        let databases = try db.query(
            "SELECT datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding) FROM pg_database WHERE datname LIKE '%_db' ORDER BY 1").rows
        #expect(databases == [["aletheia_db", "aletheia", "UTF8"], ["hearthminds_db", s.serviceUser, "UTF8"], ["logos_db", "logos", "UTF8"]])
        // Extensions owned by the manager.
        for name in ["hearthminds_db", "logos_db", "aletheia_db"] {
            #expect(try s.admin(name).query("SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = 'vector'").scalar == "hearthminds")
        }
        // PUBLIC may not connect anywhere of ours.
        #expect(try db.query("SELECT count(*) FROM pg_database WHERE datname LIKE '%_db' AND has_database_privilege('public', oid, 'CONNECT')").scalar == "0")
        // Client files.
        #expect(FileSystem.status(s.clientDirectory + "/pgpass/logos")?.mode == 0o600)

        let second = try await s.run(config)
        #expect(second.status == 0 && second.changed == 0)

        let verified = try await s.verify(config)
        #expect(verified.status == 0, "verify failed at \(verified.failedAction ?? "")")

        // No password in the log.
        let log = try FileSystem.readText(s.logPath)
        #expect(!log.contains("SCRAM-SHA-256$"))
        #expect(log.contains("\"step\":\"databases\""))
    }

    @Test("hand changes to roles, passwords and grants are put right; verify catches them first")
    func tampering() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos,aletheia")
        #expect(try await s.run(config).status == 0)
        let db = try s.admin()
        try db.execute("""
            ALTER ROLE logos SUPERUSER CREATEDB;
            ALTER ROLE aletheia PASSWORD 'changed-by-hand';
            GRANT CONNECT ON DATABASE logos_db TO PUBLIC;
            GRANT CONNECT, TEMPORARY ON DATABASE aletheia_db TO logos
            """)
        let caught = try await s.verify(config)
        #expect(caught.status == ExitStatus.failed)

        let fixed = try await s.run(config)
        #expect(fixed.status == 0)
        #expect(fixed.changed == 4)
        #expect(try db.query("SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = 'logos'").scalar == "f")
        #expect(try await s.verify(config).status == 0)
    }

    @Test("each AI reads the shared tables (also tables made later) but writes none, and cannot reach another AI's database")
    func access() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos,aletheia\nLOGOS_PASSWORD=logos-secret")
        #expect(try await s.run(config).status == 0)
        let shared = try s.admin("hearthminds_db")
        try shared.execute("""
            SET ROLE \(try shared.identifier(s.serviceUser));
            CREATE TABLE network_peers (name text);
            INSERT INTO network_peers VALUES ('logos');
            RESET ROLE
            """)
        let logos = try s.server.login("hearthminds_db", user: "logos", password: Secret("logos-secret"))
        #expect(try logos.query("SELECT name FROM network_peers").scalar == "logos")
        expectFailure(.database) { try logos.execute("INSERT INTO network_peers VALUES ('x')") }
        #expect { try s.server.login("aletheia_db", user: "logos", password: Secret("logos-secret")) } throws: {
            "\($0)".contains("permission denied for database")
        }
        expectFailure(.database) { try s.server.login("logos_db", user: "logos", password: Secret("logos")) }
        // The service account reaches its database by peer, with no password.
        let account = try #require(SystemAccount.lookup(s.serviceUser))
        #expect(try s.server.peerLogin("hearthminds_db", account: account).query("SELECT current_user").scalar == s.serviceUser)
    }

    @Test("an added AI gets its role and database; a removed AI's database is kept, not dropped")
    func addAndRemove() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        #expect(try await s.run(try s.config("AI_NAMES=logos,aletheia")).status == 0)
        try s.admin("logos_db").execute("CREATE TABLE memories (x int); INSERT INTO memories VALUES (42)")

        let added = try await s.run(try s.config("AI_NAMES=logos,aletheia,nous"))
        #expect(added.status == 0 && added.changed > 0)
        #expect(try s.admin().query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'nous_db'").scalar == "nous")
        #expect(try s.admin("logos_db").query("SELECT x FROM memories").scalar == "42")

        let removed = try await s.run(try s.config("AI_NAMES=logos"))
        #expect(removed.status == 0)
        #expect(try s.admin().query("SELECT count(*) FROM pg_database WHERE datname IN ('aletheia_db', 'nous_db')").scalar == "2")
        // Only configured AIs may connect to the shared database now.
        #expect(try s.admin().query("SELECT has_database_privilege('nous', 'hearthminds_db', 'CONNECT')").scalar == "f")
        #expect(try await s.verify(try s.config("AI_NAMES=logos")).status == 0)
    }

    @Test("POSTGRES_ADMIN_PASSWORD sets the admin's password; without it the admin is peer-only again")
    func adminPassword() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        #expect(try await s.run(try s.config("AI_NAMES=logos\nPOSTGRES_ADMIN_PASSWORD=admin-pw")).status == 0)
        let admin = try s.server.login("postgres", user: "postgres", password: Secret("admin-pw"))
        #expect(try admin.query("SELECT current_user").scalar == "postgres")
        #expect(try await s.run(try s.config("AI_NAMES=logos")).status == 0)
        #expect(try s.admin().query("SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = 'postgres'").scalar == "t")
    }

    @Test("a SCRAM verifier made by libpq is matched by its password and by no other")
    func scramMatch() async throws {
        let db = try await TestCluster.shared().connect()
        let verifier = try #require(SCRAMVerifier(try db.scramVerifier(Secret("pässword:1"), user: "x")))
        #expect(verifier.iterations == 4096)
        #expect(verifier.matches(Secret("pässword:1")))
        #expect(!verifier.matches(Secret("pässword:2")))
    }
}
