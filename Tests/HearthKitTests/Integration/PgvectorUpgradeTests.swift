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

/// A host with an older pgvector (issue 24): the pgvector step updates `vector` in every database
/// of ours (ALTER EXTENSION vector UPDATE, as its owner, the script away from the tenant's public)
/// and reports it; rows and indexes stay valid; a tenant's planted function is never called.
@Suite("pgvector upgrade of a host's databases (integration, real PostgreSQL 15 + pgvector)", .serialized)
struct PgvectorUpgradeTests {
    static let password = "logos-upgrade-secret"

    /// The extension taken back to 0.7.4 as it was: the objects the 0.7.4 → 0.8.0 script adds
    /// (four array-to-sparsevec functions and their casts) dropped from it, and its catalog
    /// version 0.7.4; ALTER EXTENSION ... UPDATE then runs the real update script from there.
    func ageTo074(_ s: DatabasesScenario, _ database: String) throws {
        let db = try s.server.admin(database)
        var sql = "BEGIN;\n"
        for type in ["integer[]", "real[]", "double precision[]", "numeric[]"] {
            sql += """
                ALTER EXTENSION vector DROP CAST (\(type) AS public.sparsevec);
                DROP CAST (\(type) AS public.sparsevec);
                ALTER EXTENSION vector DROP FUNCTION public.array_to_sparsevec(\(type), integer, boolean);
                DROP FUNCTION public.array_to_sparsevec(\(type), integer, boolean);

                """
        }
        sql += "UPDATE pg_catalog.pg_extension SET extversion = '0.7.4' WHERE extname = 'vector';\nCOMMIT;"
        try db.execute(sql)
    }

    func version(_ s: DatabasesScenario, _ database: String) throws -> String? {
        try s.server.admin(database).query("SELECT extversion FROM pg_catalog.pg_extension WHERE extname = 'vector'").scalar
    }

    @Test("vector behind in two databases: updated as its owner, reported; rows and indexes valid; a rerun changes nothing; a tenant's same-named function in public is refused, never called")
    func upgradesDatabases() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.migrate(config).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        try insertEmbeddings(logos, 500)
        let offered = try #require(try version(s, "logos_db"))
        let owner = try s.server.admin("logos_db").query(
            "SELECT pg_catalog.pg_get_userbyid(extowner) FROM pg_catalog.pg_extension WHERE extname = 'vector'").scalar
        #expect(owner == config.hearthmindsUser)

        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "u", dryRun: false)
        let step = { PgvectorStep.make(config, server: s.server) }
        #expect(await runner.run(step()).changed == 0)

        try ageTo074(s, "logos_db")
        try ageTo074(s, "hearthminds_db")
        let dry = await StepRunner(console: Console(colour: false), log: nil, runID: "d", dryRun: true).run(step())
        #expect(dry.status == 0 && dry.pending == 1)
        #expect(try version(s, "logos_db") == "0.7.4")
        let run = await runner.run(step())
        #expect(run.status == 0 && run.changed == 1, "\(run)")
        #expect(try version(s, "logos_db") == offered && version(s, "hearthminds_db") == offered)
        // The update script really ran: 0.8.0's array-to-sparsevec casts are the extension's.
        #expect(
            try s.server.admin("logos_db").query(
                """
                SELECT count(*)::text FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_cast c ON c.oid = d.objid
                WHERE d.classid = 'pg_catalog.pg_cast'::regclass AND d.deptype = 'e'
                  AND d.refobjid = (SELECT oid FROM pg_catalog.pg_extension WHERE extname = 'vector')
                  AND c.casttarget = 'public.sparsevec'::regtype AND c.castsource = 'integer[]'::regtype
                """
            ).scalar == "1")
        #expect(try logos.query("SELECT count(*) FROM public.memory_shards").scalar == "500")
        #expect(try logos.query("SELECT count(*) FROM pg_catalog.pg_index WHERE NOT indisvalid").scalar == "0")
        try logos.execute("SET ivfflat.probes = 100")
        #expect(try logos.query("SELECT count(*) FROM (SELECT id FROM public.memory_shards ORDER BY embedding <=> (SELECT embedding FROM public.memory_shards LIMIT 1) LIMIT 10) s").scalar == "10")
        #expect(try s.server.admin("logos_db").query("SELECT count(*) FROM pg_catalog.pg_namespace WHERE nspname LIKE 'hm\\_ext\\_%'").scalar == "0")
        #expect(await runner.run(step()).changed == 0)
        #expect(try await s.verify(config).status == 0)

        try ageTo074(s, "logos_db")
        // The tenant plants, in its public, a function of the name and arguments the 0.7.4 to
        // 0.8.0 script creates, whose body would climb: the script never resolves to it (it runs
        // in a schema of its own); moving the extension back to public then meets it, and the
        // whole update is rolled back, a false result: nothing of the tenant's ran.
        try logos.execute(
            """
            CREATE TABLE public.pwned_log (who text, sess text);
            GRANT INSERT ON public.pwned_log TO PUBLIC;
            CREATE FUNCTION public.array_to_sparsevec(integer[], integer, boolean) RETURNS public.sparsevec LANGUAGE plpgsql AS $f$
            BEGIN
                INSERT INTO public.pwned_log VALUES (current_user, session_user);
                BEGIN EXECUTE 'ALTER ROLE logos SUPERUSER'; EXCEPTION WHEN others THEN NULL; END;
                RETURN NULL;
            END $f$;
            """)
        let refused = await runner.run(step())
        #expect(refused.status == ExitStatus.failed)
        #expect(try version(s, "logos_db") == "0.7.4")
        #expect(try s.server.admin("logos_db").query("SELECT count(*) FROM public.pwned_log").scalar == "0")
        #expect(try s.server.admin().query("SELECT rolsuper::text FROM pg_catalog.pg_roles WHERE rolname = 'logos'").scalar == "false")
        // The tenant's function gone: the update goes through.
        try logos.execute("DROP FUNCTION public.array_to_sparsevec(integer[], integer, boolean)")
        let healed = await runner.run(step())
        #expect(healed.status == 0 && healed.changed == 1)
        #expect(try version(s, "logos_db") == offered)
    }
}
