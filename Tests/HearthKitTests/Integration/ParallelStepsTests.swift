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

/// The databases, migrations and verify steps with their roles and databases side by side
/// (ActionGroup) against one after another: the same cluster state, and a failure that names
/// its database.
@Suite("steps side by side (integration, real PostgreSQL 15 + pgvector)", .serialized)
struct ParallelStepsTests {
    static let ais = (1...9).map { "ai\($0)" }

    /// What the steps made, as text that does not depend on the run: roles (attributes,
    /// memberships, mark, whether a password is set), databases (owner, encoding, mark, privileges),
    /// and in each database its extensions, tables, default privileges, table privileges, the
    /// revision and the history (revision, direction, checksum). The scenario's own service
    /// account is written SERVICE.
    static func state(_ s: DatabasesScenario, _ config: HearthConfig) throws -> [String] {
        let admin = try s.admin()
        var out: [String] = []
        let names = PGArray.literal(config.databases + config.ais.map(\.name) + [config.hearthmindsUser, s.serviceUser])
        out += try admin.query(
            """
            SELECT rolname || ' ' || rolsuper || rolinherit || rolcreaterole || rolcreatedb || rolcanlogin
                   || rolreplication || rolbypassrls || ' ' || (rolpassword IS NOT NULL) || ' '
                   || coalesce(shobj_description(oid, 'pg_authid'), '-') || ' '
                   || ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
                            WHERE m.member = a.oid ORDER BY 1)::text
            FROM pg_authid a WHERE rolname = ANY($1::text[]) ORDER BY rolname
            """, [names]).rows.map { $0[0] ?? "" }
        out += try admin.query(
            """
            SELECT datname || ' ' || pg_get_userbyid(datdba) || ' ' || pg_encoding_to_char(encoding) || ' '
                   || datallowconn || ' ' || coalesce(shobj_description(oid, 'pg_database'), '-') || ' '
                   || ARRAY(SELECT x FROM unnest(coalesce(datacl, acldefault('d', datdba))::text[]) x ORDER BY 1)::text
            FROM pg_database WHERE datname = ANY($1::text[]) ORDER BY datname
            """, [names]).rows.map { $0[0] ?? "" }
        for database in config.databases {
            let db = try s.admin(database)
            out += try db.query(
                """
                SELECT 'extension ' || extname || ' ' || pg_get_userbyid(extowner) || ' ' || extversion FROM pg_extension
                UNION ALL
                SELECT 'table ' || c.relname || ' ' || c.relkind::text || ' ' || pg_get_userbyid(c.relowner) || ' '
                       || ARRAY(SELECT x FROM unnest(coalesce(c.relacl, '{}')::text[]) x ORDER BY 1)::text
                FROM pg_class c WHERE c.relnamespace = 'public'::regnamespace
                UNION ALL
                SELECT 'default ' || pg_get_userbyid(defaclrole) || ' ' || defaclobjtype::text || ' '
                       || ARRAY(SELECT x FROM unnest(defaclacl::text[]) x ORDER BY 1)::text FROM pg_default_acl
                UNION ALL
                SELECT 'schema public ' || ARRAY(SELECT x FROM unnest(nspacl::text[]) x ORDER BY 1)::text
                FROM pg_namespace WHERE nspname = 'public'
                UNION ALL
                SELECT 'revision ' || version_num FROM alembic_version
                UNION ALL
                SELECT 'history ' || string_agg(revision || ':' || direction || ':' || coalesce(checksum, '-'), ',' ORDER BY id)
                FROM hearthminds_migration_history
                ORDER BY 1
                """).rows.map { "\(database): " + ($0[0] ?? "") }
        }
        return out.map { $0.replacing(s.serviceUser, with: "SERVICE") }
    }

    @Test("databases, migrations and verify, 9 AIs: side by side (4 workers) the cluster ends exactly as one after another; reruns change nothing")
    func sameAsSerial() async throws {
        var states: [Int: [String]] = [:]
        var times: [String] = []
        for jobs in [1, 4] {
            let s = try await DatabasesScenario()
            defer { s.tearDown() }
            let config = try s.config("AI_NAMES=" + Self.ais.joined(separator: ","))
            let t0 = Clock.nowMs()
            let databases = try await s.run(config, jobs: jobs)
            #expect(databases.status == 0, "jobs \(jobs): failed at \(databases.failedAction ?? "")")
            let t1 = Clock.nowMs()
            let verified = try await s.verify(config, jobs: jobs)
            #expect(verified.status == 0, "jobs \(jobs): failed at \(verified.failedAction ?? "")")
            let t2 = Clock.nowMs()
            #expect(try await s.run(config, jobs: jobs).changed == 0)
            #expect(try await s.migrate(config, jobs: jobs).changed == 0)
            let t3 = Clock.nowMs()
            times.append(
                "jobs \(jobs): databases \(Int(t1 - t0)) ms, migrations + verify \(Int(t2 - t1)) ms, both reruns \(Int(t3 - t2)) ms")
            states[jobs] = try Self.state(s, config)
        }
        print("timing parallel steps, 10 databases: " + times.joined(separator: "; "))
        let serial = try #require(states[1])
        #expect(serial.count > 40)
        #expect(serial.contains { $0.hasSuffix("revision 0008") })
        #expect(serial == states[4])
    }

    @Test("side by side, a failing AI database is named (the log, the outcome); none is left between revisions; the shared database went first")
    func failureNamed() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=" + Self.ais.joined(separator: ","))
        #expect(try await s.run(config, jobs: 4).status == 0)
        // ai5's database holds a table of revision 0001's name: 0001 fails there, as its owner.
        let planted = try s.admin("ai5_db")
        try planted.execute("CREATE TABLE public.memory_shards (x int); ALTER TABLE public.memory_shards OWNER TO ai5")
        let failed = try await s.migrate(config, jobs: 4)
        #expect(failed.status == ExitStatus.failed)
        #expect(failed.failedAction == "database ai5_db at the head revision")
        let log = try FileSystem.readText(s.logPath)
        let line = try #require(log.split(separator: "\n").first { $0.contains("\"action\":\"database ai5_db at the head revision\"") })
        #expect(line.contains("\"result\":false") && line.contains("0001_") && line.contains("ai5_db"))
        // HEARTHMINDS_DB went first, alone: at head. Every AI database is at head or untouched.
        func revision(_ database: String) throws -> String {
            let db = try s.admin(database)
            guard try db.query("SELECT to_regclass('public.alembic_version') IS NOT NULL").scalar == "t" else { return "base" }
            return try db.query("SELECT version_num FROM alembic_version").scalar ?? "base"
        }
        #expect(try revision(config.hearthmindsDB) == "0008")
        for ai in config.ais {
            let at = try revision(ai.database)
            #expect(at == "0008" || at == "base", "\(ai.database) at \(at)")
        }
        #expect(try revision("ai5_db") == "base")
        // Put right, the next run converges every database.
        try planted.execute("DROP TABLE public.memory_shards")
        #expect(try await s.migrate(config, jobs: 4).status == 0)
        for database in config.databases { #expect(try revision(database) == "0008", "\(database)") }

        // The shared database failing: named, and no AI database is touched.
        let shared = try s.admin(config.hearthmindsDB)
        let broken = TestFiles.temporaryDirectory("hm-broken")
        defer { TestFiles.removeTree(broken) }
        for file in try FileSystem.list(TestFiles.repositoryRoot + "/Migrations") where file.hasSuffix(".sql") {
            try FileSystem.writeAtomically(
                broken + "/" + file, try FileSystem.readText(TestFiles.repositoryRoot + "/Migrations/" + file))
        }
        try FileSystem.writeAtomically(broken + "/0009_fails.up.sql", "CREATE TABLE t8 (x int);\nSELECT 1/0;\n")
        try FileSystem.writeAtomically(broken + "/0009_fails.down.sql", "DROP TABLE t8;\n")
        let runner = StepRunner(console: Console(colour: false), log: try JSONLog(path: s.logPath), runID: "b", dryRun: false)
        let sharedFirst = await runner.run(
            MigrationsStep.make(
                config, directory: broken, socketDirectory: s.cluster.socketDirectory, clientDirectory: s.clientDirectory,
                jobs: 4))
        #expect(sharedFirst.failedAction == "database \(config.hearthmindsDB) at the head revision")
        #expect(try shared.query("SELECT version_num FROM alembic_version").scalar == "0008")
        for ai in config.ais { #expect(try revision(ai.database) == "0008", "\(ai.database) untouched") }
    }
}
