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

/// Hostile tenants, for real (issue 10): an AI, logged in with its own password, and the service
/// account, logged in by peer, plant in the databases they own what they are allowed to create —
/// views in place of the migration state, triggers, rules, row security, functions and
/// operators in `public` to catch unqualified names, a hostile search_path, a huge SCRAM
/// iteration count, the migration lock — while the suite runs its steps, `hm-migrate`, the
/// reset's listing and verify. After every command: the attacker holds no new privilege (role
/// attributes and memberships compared right after it), no planted function ever ran as a
/// superuser, and the command ended in bounded time; then the suite converges the host back.
@Suite("hostile tenants (integration, real PostgreSQL 15 + pgvector)", .serialized)
struct HostileTenantTests {
    static let logosPassword = "logos-own-secret"

    /// A converged host (databases, migrations) with AIs logos (password known to the test, as
    /// to the AI) and aletheia, and the attacks' common tools in logos_db and the shared database:
    /// `pwn()` records who ran it (current_user, session_user) and tries to climb (RESET ROLE,
    /// then ALTER ROLE ... SUPERUSER), returning '0006'.
    final class Host {
        let s: DatabasesScenario
        let config: HearthConfig
        var baseline: [String] = []

        init() async throws {
            s = try await DatabasesScenario()
            // Lists from the rows (auto): the vector index attacks train it on a few hundred rows.
            config = try s.config(
                "AI_NAMES=logos,aletheia\nLOGOS_PASSWORD=\(HostileTenantTests.logosPassword)\nPGVECTOR_IVFFLAT_LISTS=auto")
            #expect(try await s.run(config).status == 0)
            #expect(try await s.verify(config).status == 0)
            for (db, role) in [("logos_db", "logos"), ("hearthminds_db", s.serviceUser)] {
                try tenant(db).execute(Host.tools(role))
            }
            baseline = try privileges()
        }

        static func tools(_ role: String) -> String {
            """
            CREATE TABLE public.pwned_log (who text, sess text);
            GRANT INSERT ON public.pwned_log TO PUBLIC;
            CREATE FUNCTION public.pwn() RETURNS varchar LANGUAGE plpgsql AS $f$
            BEGIN
                INSERT INTO public.pwned_log VALUES (current_user, session_user);
                BEGIN
                    EXECUTE 'RESET ROLE';
                    EXECUTE 'ALTER ROLE "\(role)" SUPERUSER';
                    EXECUTE 'GRANT pg_execute_server_program TO "\(role)"';
                EXCEPTION WHEN others THEN NULL;
                END;
                RETURN '0006';
            END $f$;
            CREATE FUNCTION public.pwn_bool(anyelement, anyelement) RETURNS boolean LANGUAGE plpgsql AS $f$
            BEGIN PERFORM public.pwn(); RETURN $1::text = $2::text; END $f$;
            """
        }

        /// The tenant of a database, logged in as itself: logos with its password, the service
        /// account by peer.
        func tenant(_ database: String) throws -> PGConnection {
            if database == "logos_db" {
                return try s.server.login(database, user: "logos", password: Secret(HostileTenantTests.logosPassword))
            }
            return try s.server.peerLogin(database, account: try #require(SystemAccount.lookup(s.serviceUser)))
        }

        /// Every role's attributes and memberships, one line each.
        func privileges() throws -> [String] {
            try s.admin().query(
                """
                SELECT r.rolname || ' ' || r.rolsuper || r.rolcreaterole || r.rolcreatedb || r.rolreplication
                       || r.rolbypassrls || ' ' || coalesce((SELECT string_agg(b.rolname, ',' ORDER BY b.rolname)
                       FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid WHERE m.member = r.oid), '')
                FROM pg_roles r ORDER BY r.rolname
                """
            ).rows.map { $0[0] ?? "" }
        }

        /// Who ran a planted function, in both tenants' databases: (current_user, session_user).
        func ranAs() throws -> [String] {
            var who: [String] = []
            for db in ["logos_db", "hearthminds_db"] {
                // Through the suite's own superuser connection (its settings pinned): a tenant's
                // database settings do not cut this read short.
                who += try s.server.admin(db).query("SELECT who || '/' || sess FROM public.pwned_log").rows.map { $0[0] ?? "" }
            }
            return who
        }

        /// After each command: no new privilege, and nothing planted ran as a superuser or in a
        /// superuser's session (where it could RESET ROLE).
        func expectNoEscalation(_ what: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
            #expect(try privileges() == baseline, "\(what): role attributes or memberships changed", sourceLocation: sourceLocation)
            let superusers: Set<String> = ["postgres", config.hearthmindsUser]
            let runs = try ranAs()
            #expect(
                !runs.contains { $0.split(separator: "/").contains { superusers.contains(String($0)) } },
                "\(what): a planted function ran as a superuser or in a superuser's session: \(runs)",
                sourceLocation: sourceLocation)
        }

        var migrations: String { TestFiles.repositoryRoot + "/Migrations" }
        /// The vector-index step's lock wait in these tests (60 s in production).
        var vectorLockTimeout = PGServer.lockTimeout

        func migrator(_ database: String, lockTimeout: String = PGServer.lockTimeout) throws -> Migrator {
            try Migrator(
                set: try MigrationSet.load(directory: migrations, config: config), database: database, server: s.server,
                credentials: Credentials(config, book: PasswordBook(config, directory: s.clientDirectory)),
                lockTimeout: lockTimeout)
        }

        /// Every command the suite has, each followed by the escalation check; their outcomes.
        @discardableResult
        func runEverything(_ what: String) async throws -> [String: Int32] {
            var outcomes: [String: Int32] = [:]
            let runner = StepRunner(console: Console(colour: false), log: nil, runID: "hostile", dryRun: false)
            outcomes["databases"] = await runner.run(
                DatabasesStep.make(config, server: s.server, clientDirectory: s.clientDirectory)).status
            try expectNoEscalation("\(what): databases step")
            outcomes["migrations"] = await runner.run(
                MigrationsStep.make(
                    config, directory: migrations, socketDirectory: s.cluster.socketDirectory,
                    clientDirectory: s.clientDirectory)).status
            try expectNoEscalation("\(what): migrations step")
            outcomes["vector-index"] = await runner.run(s.vectorIndexStep(config, lockTimeout: vectorLockTimeout)).status
            try expectNoEscalation("\(what): vector-index step")
            outcomes["verify"] = await runner.run(
                VerifyStep.make(config, server: s.server, migrations: migrations, clientDirectory: s.clientDirectory)).status
            try expectNoEscalation("\(what): verify")
            for database in config.databases {
                _ = try? migrator(database).status()  // hm-migrate current / check
                try expectNoEscalation("\(what): hm-migrate current on \(database)")
                _ = try? migrator(database).history()  // hm-migrate history --applied
                try expectNoEscalation("\(what): hm-migrate history on \(database)")
            }
            _ = await ResetStep.plan(config, server: s.server, clientDirectory: s.clientDirectory).inventory()
            try expectNoEscalation("\(what): hm-reset --dry-run listing")
            outcomes["reset --dry-run"] = await StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: true)
                .run(ResetStep.make(config, server: s.server, clientDirectory: s.clientDirectory)).status
            try expectNoEscalation("\(what): hm-reset --dry-run")
            return outcomes
        }
    }

    @Test("SET ROLE from a superuser session is no boundary: a tenant's function RESETs ROLE (why the suite logs in as the owner)")
    func setRoleIsNoBoundary() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        // What the suite did before: read the tenant's objects as the superuser with SET ROLE.
        let superuser = try host.s.admin("logos_db")
        try superuser.execute("SET ROLE logos")
        _ = try superuser.query("SELECT public.pwn()")
        #expect(try host.ranAs() == ["logos/postgres"])
        #expect(try host.s.admin().query("SELECT rolsuper FROM pg_roles WHERE rolname = 'logos'").scalar == "t")
        // The owner's own session cannot.
        try host.s.admin().execute("ALTER ROLE logos NOSUPERUSER; REVOKE pg_execute_server_program FROM logos")
        try host.s.admin("logos_db").execute("TRUNCATE public.pwned_log")
        let (owner, name) = try host.s.server.ownerConnection("logos_db", Credentials(host.config, book: PasswordBook(host.config, directory: host.s.clientDirectory)))
        #expect(name == "logos")
        _ = try owner.query("SELECT public.pwn()")
        #expect(try host.ranAs() == ["logos/logos"])
        try host.expectNoEscalation("the owner's session")
    }

    @Test("a view in place of alembic_version (the AI and the service account): every command refuses it by name; nothing runs as superuser")
    func viewInPlaceOfState() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        for db in ["logos_db", "hearthminds_db"] {
            try host.tenant(db).execute(
                """
                ALTER TABLE public.alembic_version RENAME TO alembic_version_real;
                CREATE VIEW public.alembic_version AS SELECT public.pwn()::varchar(32) AS version_num
                """)
        }
        let outcomes = try await host.runEverything("view")
        #expect(outcomes["migrations"] == ExitStatus.failed && outcomes["verify"] == ExitStatus.failed)
        #expect(outcomes["databases"] == 0)
        #expect { try host.migrator("logos_db").status() } throws: {
            "\($0)".contains("public.alembic_version is not a plain table of logos: it is a view")
        }
        #expect { try host.migrator("hearthminds_db").status() } throws: {
            "\($0)".contains("public.alembic_version is not a plain table of \(host.s.serviceUser): it is a view")
        }
        #expect(try host.ranAs().isEmpty, "nothing read the view")

        // Put back, the suite converges the host again.
        for db in ["logos_db", "hearthminds_db"] {
            try host.tenant(db).execute(
                "DROP VIEW public.alembic_version; ALTER TABLE public.alembic_version_real RENAME TO alembic_version")
        }
        let again = try await host.runEverything("view removed")
        #expect(again["migrations"] == 0 && again["verify"] == 0 && again["reset --dry-run"] == 0)
    }

    @Test("triggers, rules, row security and a child table on the state tables: refused by name; a pending revision does not run through them")
    func triggersAndRules() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        // One revision down (by the suite), so that the next run writes the state.
        try host.migrator("logos_db").downgrade()
        let plants: [(String, String, String)] = [
            ("trigger", "CREATE FUNCTION public.pwn_trg() RETURNS trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN NEW; END $f$; "
                + "CREATE TRIGGER t BEFORE INSERT OR UPDATE OR DELETE ON public.alembic_version FOR EACH ROW EXECUTE FUNCTION public.pwn_trg()",
             "DROP TRIGGER t ON public.alembic_version"),
            ("rule", "CREATE RULE r AS ON UPDATE TO public.hearthminds_migration_history DO ALSO SELECT public.pwn()",
             "DROP RULE r ON public.hearthminds_migration_history"),
            ("row level security", "ALTER TABLE public.alembic_version ENABLE ROW LEVEL SECURITY; ALTER TABLE public.alembic_version FORCE ROW LEVEL SECURITY; "
                + "CREATE POLICY p ON public.alembic_version USING (public.pwn() IS NOT NULL)",
             "DROP POLICY p ON public.alembic_version; ALTER TABLE public.alembic_version DISABLE ROW LEVEL SECURITY"),
            ("child table", "CREATE TABLE public.history_child () INHERITS (public.hearthminds_migration_history)",
             "DROP TABLE public.history_child"),
        ]
        for (what, plant, remove) in plants {
            try host.tenant("logos_db").execute(plant)
            let outcomes = try await host.runEverything(what)
            #expect(outcomes["migrations"] == ExitStatus.failed, "\(what)")
            #expect { try host.migrator("logos_db").status() } throws: { "\($0)".contains("not a plain table of logos") }
            let runs = try host.ranAs()
            #expect(runs.allSatisfy { $0 == "logos/logos" }, "\(what): \(runs)")
            try host.tenant("logos_db").execute(remove)
        }
        let done = try await host.runEverything("all removed")
        #expect(done["migrations"] == 0 && done["verify"] == 0)
        #expect(try host.migrator("logos_db").status().converged)
    }

    @Test("functions and operators planted in public, a hostile search_path for the database and the role: no superuser call ever resolves to them")
    func plantedFunctionsAndSearchPath() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        for (db, role) in [("logos_db", "logos"), ("hearthminds_db", host.s.serviceUser)] {
            let t = try host.tenant(db)
            // Shadows of names the suite's queries use, and operators that match better than
            // pg_catalog's for the types of our parameters.
            try t.execute(
                """
                CREATE FUNCTION public.pg_get_userbyid(oid) RETURNS name LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN 'x'; END $f$;
                CREATE FUNCTION public.to_regclass(text) RETURNS regclass LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN NULL; END $f$;
                CREATE FUNCTION public.current_setting(text) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN '0'; END $f$;
                CREATE FUNCTION public.shobj_description(oid, name) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN ''; END $f$;
                CREATE FUNCTION public.obj_description(oid, name) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN ''; END $f$;
                CREATE FUNCTION public.starts_with(text, text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN false; END $f$;
                CREATE FUNCTION public.array_to_string(text[], text) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN ''; END $f$;
                CREATE FUNCTION public.unnest(text[]) RETURNS SETOF text LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); END $f$;
                CREATE FUNCTION public.eq_name_text(name, text) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN $1::text = $2; END $f$;
                CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = text, FUNCTION = public.eq_name_text);
                CREATE FUNCTION public.eq_name_unknown(name, varchar) RETURNS boolean LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN $1::text = $2::text; END $f$;
                CREATE OPERATOR public.= (LEFTARG = name, RIGHTARG = varchar, FUNCTION = public.eq_name_unknown);
                ALTER ROLE "\(role)" SET search_path = public, pg_catalog;
                """)
        }
        // The owners set a hostile search_path for their whole database, too.
        try host.tenant("logos_db").execute("ALTER DATABASE logos_db SET search_path = public, pg_catalog")
        try host.tenant("hearthminds_db").execute("ALTER DATABASE hearthminds_db SET search_path = public, pg_catalog")
        // An event trigger would catch the superuser's DDL: a tenant may not create one.
        try host.tenant("logos_db").execute(
            "CREATE FUNCTION public.pwn_evt() RETURNS event_trigger LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); END $f$")
        #expect { try host.tenant("logos_db").execute("CREATE EVENT TRIGGER e ON ddl_command_start EXECUTE FUNCTION public.pwn_evt()") } throws: {
            "\($0)".contains("permission denied") || "\($0)".contains("must be superuser")
        }
        // A new revision pending too, so the migrations step writes the state.
        try host.migrator("logos_db").downgrade()
        let outcomes = try await host.runEverything("planted functions")
        #expect(outcomes["databases"] == 0 && outcomes["migrations"] == 0 && outcomes["verify"] == 0)
        let runs = try host.ranAs()
        #expect(runs.allSatisfy { $0.hasSuffix("/logos") || $0.hasSuffix("/\(host.s.serviceUser)") }, "\(runs)")
    }

    /// The IVFFlat index of logos_db: (comment, relfilenode, lists).
    static func index(_ host: Host) throws -> [String?] {
        try host.s.admin("logos_db").query(
            """
            SELECT obj_description(oid, 'pg_class'), relfilenode::text, array_to_string(reloptions, ',')
            FROM pg_class WHERE relname = 'memory_shards_embedding_ivfflat_idx'
            """
        ).first ?? []
    }

    static func insertRows(_ db: PGConnection, _ count: Int) throws {
        try db.execute(
            """
            INSERT INTO public.memory_shards (content, embedding)
            SELECT 'r' || g, ARRAY(SELECT random()::real FROM generate_series(1, 1536) WHERE g > 0)::vector
            FROM generate_series(1, \(count)) g
            """)
    }

    @Test("the vector index (issue 14): a tampered comment, the tenant's own probes, row security that calls a planted function, an index replaced by one whose expression does: no escalation, bounded, converged back")
    func vectorIndexTampering() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        let logos = try host.tenant("logos_db")
        try Self.insertRows(logos, 200)
        var outcomes = try await host.runEverything("rows loaded")
        #expect(outcomes["vector-index"] == 0 && outcomes["verify"] == 0)
        let trained = try Self.index(host)
        #expect(trained.first == VectorIndex.comment(rows: 200, lists: 1))

        // The comment says far more rows: nothing is rebuilt (the AI's own recall is what it loses).
        try logos.execute("COMMENT ON INDEX memory_shards_embedding_ivfflat_idx IS 'HearthMinds vector-index: trained on 999999999 rows'")
        outcomes = try await host.runEverything("comment: huge")
        #expect(outcomes["vector-index"] == 0 && outcomes["verify"] == 0)
        #expect(try Self.index(host)[1] == trained[1])
        // A comment that is not ours counts as never trained: rebuilt once, then converged.
        try logos.execute("COMMENT ON INDEX memory_shards_embedding_ivfflat_idx IS $c$'); DROP TABLE x; --$c$")
        outcomes = try await host.runEverything("comment: garbage")
        #expect(outcomes["vector-index"] == 0)
        let rebuilt = try Self.index(host)
        #expect(rebuilt.first == VectorIndex.comment(rows: 200, lists: 1) && rebuilt[1] != trained[1])
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)
        #expect(await runner.run(host.s.vectorIndexStep(host.config)).changed == 0)

        // The owner sets its database's probes (once pgvector is loaded in its session): put back.
        _ = try logos.query("SELECT '[1]'::vector")
        try logos.execute("ALTER DATABASE logos_db SET ivfflat.probes = 5")
        let fixed = await runner.run(host.s.vectorIndexStep(host.config))
        #expect(fixed.status == 0 && fixed.changed == 1)
        #expect(try VectorIndex.databaseSetting("ivfflat.probes", database: "logos_db", host.s.admin()) == "1")  // sqrt(1 list)
        try host.expectNoEscalation("probes")

        // Forced row security whose policy calls pwn(): the step counts rows as the owner only.
        try logos.execute(
            """
            ALTER TABLE public.memory_shards ENABLE ROW LEVEL SECURITY; ALTER TABLE public.memory_shards FORCE ROW LEVEL SECURITY;
            CREATE POLICY p ON public.memory_shards USING (public.pwn() IS NOT NULL)
            """)
        try Self.insertRows(logos, 200)  // twice the rows: the step counts, and retrains
        let t0 = Clock.nowMs()
        outcomes = try await host.runEverything("row security")
        #expect(Clock.nowMs() - t0 < 120_000)
        #expect(outcomes["vector-index"] == 0)
        #expect(try Self.index(host).first == VectorIndex.comment(rows: 400, lists: 1))
        let runs = try host.ranAs()
        #expect(!runs.isEmpty && runs.allSatisfy { $0 == "logos/logos" }, "\(runs)")
        try logos.execute("DROP POLICY p ON public.memory_shards; ALTER TABLE public.memory_shards DISABLE ROW LEVEL SECURITY")

        // The index replaced by one of the same name whose expression calls pwn(): refused by
        // name, never rebuilt (nothing of it runs in the suite's sessions).
        try logos.execute(
            """
            CREATE FUNCTION public.pwn_vec(vector) RETURNS vector IMMUTABLE LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.pwn(); RETURN $1; END $f$;
            DROP INDEX public.memory_shards_embedding_ivfflat_idx;
            CREATE INDEX memory_shards_embedding_ivfflat_idx ON public.memory_shards USING ivfflat ((public.pwn_vec(embedding)::vector(1536)) vector_cosine_ops) WITH (lists = 1);
            TRUNCATE public.pwned_log
            """)
        try Self.insertRows(logos, 400)
        try logos.execute("TRUNCATE public.pwned_log")
        outcomes = try await host.runEverything("replaced index")
        #expect(outcomes["vector-index"] == ExitStatus.failed)
        #expect(try host.ranAs().isEmpty, "the planted expression never ran in the suite's sessions")
        let step = await runner.run(host.s.vectorIndexStep(host.config))
        // (issue 24: the storage assertion, first of the database's actions, already names the
        // index on an expression; the training action would refuse it too)
        #expect(step.failedAction?.hasPrefix("database logos_db: memory_shards.embedding stored as vector") == true, "\(step)")
        // Put back as 0003 builds it: converged again.
        try logos.execute(
            """
            DROP INDEX public.memory_shards_embedding_ivfflat_idx;
            CREATE INDEX memory_shards_embedding_ivfflat_idx ON memory_shards USING ivfflat (embedding vector_cosine_ops) WITH (lists = 100)
            """)
        outcomes = try await host.runEverything("index put back")
        #expect(outcomes["vector-index"] == 0 && outcomes["verify"] == 0)
        #expect(try Self.index(host).first == VectorIndex.comment(rows: 800, lists: 1))
    }

    @Test("REINDEX CONCURRENTLY behind a tenant's open transaction: a bounded wait, a false result; the invalid copy it left is dropped by the next run")
    func reindexBehindOpenTransaction() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        host.vectorLockTimeout = "2s"
        let logos = try host.tenant("logos_db")
        try Self.insertRows(logos, 100)
        #expect(try await host.runEverything("trained")["vector-index"] == 0)
        try Self.insertRows(logos, 100)
        // The tenant keeps a write open: the rebuild must wait for it.
        let holder = try host.tenant("logos_db")
        try holder.execute("BEGIN; INSERT INTO public.memory_shards (content) VALUES ('held')")
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)
        let t0 = Clock.nowMs()
        let blocked = await runner.run(host.s.vectorIndexStep(host.config, lockTimeout: "2s"))
        let ms = Clock.nowMs() - t0
        #expect(blocked.status == ExitStatus.failed)
        #expect(ms < 30_000, "waited \(Int(ms)) ms")
        let leftovers = try host.s.admin("logos_db").query(
            "SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid WHERE NOT x.indisvalid").rows
        #expect(leftovers.map { $0[0] } == ["memory_shards_embedding_ivfflat_idx_ccnew"])
        try holder.execute("ROLLBACK")
        let after = await runner.run(host.s.vectorIndexStep(host.config, lockTimeout: "2s"))
        #expect(after.status == 0 && after.changed == 1)
        #expect(try host.s.admin("logos_db").query("SELECT count(*) FROM pg_index WHERE NOT indisvalid").scalar == "0")
        #expect(try Self.index(host).first == VectorIndex.comment(rows: 200, lists: 1))
        try host.expectNoEscalation("open transaction")
        print("hostile timing: REINDEX CONCURRENTLY behind an open transaction gave up after \(Int(ms)) ms (lock_timeout 2s)")
    }

    @Test("a role's own SCRAM verifier with 2^22 iterations does not stall the run: it is replaced without being computed")
    func scramIterationsStall() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        let salt = Base64.encode(Array("sixteen byte slt".utf8))
        let key = Base64.encode([UInt8](repeating: 7, count: 32))
        // The AI sets its own password to a verifier of 2^22 iterations (what a role may do; the
        // server itself runs them once when it takes the verifier, so 2^31 would stall that
        // ALTER ROLE for hours, not us).
        let hostile = "'SCRAM-SHA-256$4194304:\(salt)$\(key):\(key)'"
        try host.tenant("logos_db").execute("ALTER ROLE logos PASSWORD \(hostile)")
        let t0 = Clock.nowMs()
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)
        let outcome = await runner.run(DatabasesStep.make(host.config, server: host.s.server, clientDirectory: host.s.clientDirectory))
        let ms = Clock.nowMs() - t0
        #expect(outcome.status == 0 && outcome.changed == 1)
        // Computing 2^22 PBKDF2 rounds in this (debug) build takes minutes; the step took seconds.
        #expect(ms < 20_000, "the databases step took \(Int(ms)) ms")
        #expect(try host.s.admin().query("SELECT rolpassword LIKE 'SCRAM-SHA-256$4096:%' FROM pg_authid WHERE rolname = 'logos'").scalar == "t")
        // Verify, too, stays bounded on such a verifier.
        try host.tenant("logos_db").execute("ALTER ROLE logos PASSWORD \(hostile)")
        let v0 = Clock.nowMs()
        let verified = await runner.run(
            VerifyStep.make(host.config, server: host.s.server, migrations: host.migrations, clientDirectory: host.s.clientDirectory))
        let verifyMs = Clock.nowMs() - v0
        #expect(verified.status == ExitStatus.failed)  // logos's password is not ours now
        #expect(verifyMs < 20_000)
        print("hostile timing: databases step over a 2^22-iteration verifier \(Int(ms)) ms, verify \(Int(verifyMs)) ms")
    }

    @Test("the migration lock held by a tenant: the runner waits a bounded time and names the holder")
    func lockHeldByTenant() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        try host.migrator("logos_db").downgrade()
        let squatter = try host.tenant("logos_db")
        try squatter.query("SELECT pg_advisory_lock($1::bigint)", [String(MigrationState.lockKey)])
        let t0 = Clock.nowMs()
        #expect { try host.migrator("logos_db", lockTimeout: "2s").upgrade() } throws: {
            "\($0)".contains("another session has held the migration lock") && "\($0)".contains("(user logos)")
        }
        #expect(Clock.nowMs() - t0 < 30_000)
        // A lock on the state table itself, likewise.
        try squatter.query("SELECT pg_advisory_unlock($1::bigint)", [String(MigrationState.lockKey)])
        try squatter.execute("BEGIN; LOCK TABLE public.alembic_version IN ACCESS EXCLUSIVE MODE")
        #expect(throws: (any Error).self) { try host.migrator("logos_db", lockTimeout: "2s").status() }
        try squatter.execute("ROLLBACK")
        try host.migrator("logos_db").upgrade()
        try host.expectNoEscalation("lock")
    }

    @Test("marks: an AI cannot comment its own role; a database without its mark is re-marked; an unmarked role or a database of our name and another owner is never taken over or dropped")
    func marks() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        #expect { try host.tenant("logos_db").execute("COMMENT ON ROLE logos IS 'mine'") } throws: {
            "\($0)".contains("permission denied") || "\($0)".contains("must have CREATEROLE")
        }
        // The AI removes its database's mark: the next run puts it back.
        try host.tenant("logos_db").execute("COMMENT ON DATABASE logos_db IS NULL")
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)
        let fixed = await runner.run(DatabasesStep.make(host.config, server: host.s.server, clientDirectory: host.s.clientDirectory))
        #expect(fixed.status == 0 && fixed.changed == 1)
        // (Removed just before a reset, it vetoes nothing: the reset trusts the record of what the
        // suite made, not the comment: commentDoesNotVetoReset.)

        // Names that are taken by someone else: a role and a database of another owner.
        let admin = try host.s.admin()
        try admin.execute("CREATE ROLE nous LOGIN")
        try admin.execute("CREATE DATABASE nous_db OWNER postgres")
        let taken = try host.s.config("AI_NAMES=logos,aletheia,nous\nLOGOS_PASSWORD=\(HostileTenantTests.logosPassword)")
        let outcome = await runner.run(DatabasesStep.make(taken, server: host.s.server, clientDirectory: host.s.clientDirectory))
        #expect(outcome.status == ExitStatus.failed)
        #expect(outcome.failedAction?.hasPrefix("role nous") == true)
        #expect(try admin.query("SELECT rolsuper OR rolcreatedb, shobj_description(oid, 'pg_authid') IS NULL FROM pg_roles WHERE rolname = 'nous'").first == ["f", "t"])
        try admin.execute("COMMENT ON ROLE nous IS \(try admin.literal(Marks.role))")  // handed over, as the message says
        let next = await runner.run(DatabasesStep.make(taken, server: host.s.server, clientDirectory: host.s.clientDirectory))
        #expect(next.status == ExitStatus.failed)
        #expect(next.failedAction == "database nous_db (UTF8) owned by nous, recorded and marked")
        #expect(try admin.query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'nous_db'").scalar == "postgres")
        try admin.execute("DROP DATABASE nous_db")
        try admin.execute("DROP ROLE nous")
        try host.expectNoEscalation("marks")
    }
}

extension HostileTenantTests {
    @Test("an AI holds its own role's and database's catalog rows in an open transaction: the superuser's ALTER ROLE and COMMENT wait a bounded time, then the host converges")
    func catalogRowsHeldByTenant() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        var server = host.s.server
        server.adminLockTimeout = "2s"
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)
        func databases() async -> (StepRunner.Outcome, Double) {
            let t0 = Clock.nowMs()
            let outcome = await runner.run(DatabasesStep.make(host.config, server: server, clientDirectory: host.s.clientDirectory))
            return (outcome, Clock.nowMs() - t0)
        }
        // The AI changes its password (committed: the suite must set it back), then changes it
        // again in a transaction it keeps open, holding its pg_authid row.
        let tenant = try host.tenant("logos_db")
        try tenant.execute("ALTER ROLE logos PASSWORD 'logos-chose-this'")
        try tenant.execute("BEGIN; ALTER ROLE logos PASSWORD 'and-holds-this'")
        let (held, ms) = await databases()
        #expect(held.status == ExitStatus.failed && held.failedAction?.hasPrefix("role logos") == true, "\(held)")
        #expect(ms < 30_000, "the databases step took \(Int(ms)) ms")
        try tenant.execute("ROLLBACK")
        try host.expectNoEscalation("role row held")

        // Its database's row and its comment: the mark removed and PUBLIC given CONNECT
        // (committed), then both again in an open transaction (the same session: its password
        // is still the one it chose).
        let again = tenant
        try again.execute("COMMENT ON DATABASE logos_db IS NULL; GRANT CONNECT ON DATABASE logos_db TO PUBLIC")
        try again.execute("BEGIN; COMMENT ON DATABASE logos_db IS 'mine'; GRANT TEMPORARY ON DATABASE logos_db TO PUBLIC")
        let (blocked, blockedMs) = await databases()
        #expect(blocked.status == ExitStatus.failed && blocked.failedAction?.contains("logos_db") == true, "\(blocked)")
        #expect(blockedMs < 30_000, "the databases step took \(Int(blockedMs)) ms")
        try again.execute("ROLLBACK")
        try host.expectNoEscalation("database row held")

        // Let go, the host converges.
        let (converged, _) = await databases()
        #expect(converged.status == 0, "\(converged)")
        #expect(try host.s.admin().query("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'logos_db'").scalar == Marks.database)
        print("hostile timing: databases step against a held role row \(Int(ms)) ms, a held database row \(Int(blockedMs)) ms")
    }
}

/// A test-only extension in PostgreSQL 15's extension directory whose script makes an
/// unqualified call at script time (`lower(varchar)`), as many extension scripts do: created
/// with its schema on the path, a `public.lower(varchar)` its owner planted is the better match,
/// and runs as the superuser who runs CREATE EXTENSION. `hm_hostile_fixed` is the same but not
/// relocatable. Removed again by `remove()`.
struct ProbeExtensions {
    static let directory = "/usr/share/postgresql/15/extension"
    static let names = ["hm_hostile_probe", "hm_hostile_fixed"]

    init() throws {
        for name in Self.names {
            try FileSystem.writeAtomically(
                "\(Self.directory)/\(name).control",
                """
                comment = 'HearthMinds test only: a script with an unqualified call'
                default_version = '1.0'
                relocatable = \(name == "hm_hostile_probe" ? "true" : "false")

                """, mode: 0o644, uid: 0, gid: 0)
            try FileSystem.writeAtomically(
                "\(Self.directory)/\(name)--1.0.sql",
                """
                CREATE FUNCTION \(name)_version() RETURNS text LANGUAGE sql AS $$ SELECT '1.0'::text $$;
                SELECT lower('PROBE'::varchar);

                """, mode: 0o644, uid: 0, gid: 0)
        }
    }

    func remove() {
        for name in Self.names {
            FileSystem.remove("\(Self.directory)/\(name).control")
            FileSystem.remove("\(Self.directory)/\(name)--1.0.sql")
        }
    }

    /// What a tenant plants in its database's public schema: the better match for the script's
    /// call, running the tenant's escalation.
    static let plant = """
        CREATE FUNCTION public.lower(varchar) RETURNS text LANGUAGE plpgsql AS $f$
        BEGIN PERFORM public.pwn(); RETURN pg_catalog.lower($1::text); END $f$
        """
}

extension HostileTenantTests {
    @Test("a new extension in AI_DEFAULT_EXTENSIONS, or one a revision creates, whose script makes an unqualified call: the tenant's function planted in public never runs as the superuser who creates it")
    func extensionScriptsInTenantDatabases() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        let probe = try ProbeExtensions()
        defer { probe.remove() }
        for db in ["logos_db", "hearthminds_db"] { try host.tenant(db).execute(ProbeExtensions.plant) }
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)

        // The configuration gains the extension: the databases step creates it in every database.
        let config = try host.s.config(
            "AI_NAMES=logos,aletheia\nLOGOS_PASSWORD=\(HostileTenantTests.logosPassword)\n"
                + "AI_DEFAULT_EXTENSIONS=vector,hm_hostile_probe")
        let created = await runner.run(DatabasesStep.make(config, server: host.s.server, clientDirectory: host.s.clientDirectory))
        try host.expectNoEscalation("databases step creating hm_hostile_probe")
        #expect(created.status == 0, "\(created)")
        for db in config.databases {
            let row = try host.s.admin(db).query(
                "SELECT e.extnamespace::regnamespace::text, pg_get_userbyid(e.extowner) FROM pg_extension e WHERE e.extname = 'hm_hostile_probe'").first
            #expect(row == ["public", config.hearthmindsUser], "\(db): \(String(describing: row))")
            // No schema of the suite's is left behind.
            #expect(try host.s.admin(db).query("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'hm_ext_%'").scalar == "0")
        }
        #expect(await runner.run(DatabasesStep.make(config, server: host.s.server, clientDirectory: host.s.clientDirectory)).changed == 0)

        // A revision creates it (the migrator's superuser makes it before the revision's transaction).
        let migrations = TestFiles.temporaryDirectory("hm-hostile-migrations")
        defer { TestFiles.removeTree(migrations) }
        try await Hostile.asRoot("cp \(host.migrations)/*.sql \(migrations)/")
        try FileSystem.writeAtomically(migrations + "/0009_probe.up.sql", "CREATE EXTENSION IF NOT EXISTS hm_hostile_probe;\n")
        try FileSystem.writeAtomically(migrations + "/0009_probe.down.sql", "SELECT 1;\n")
        try host.s.admin("logos_db").execute("DROP EXTENSION hm_hostile_probe")
        let migrated = await runner.run(
            MigrationsStep.make(
                host.config, directory: migrations, socketDirectory: host.s.cluster.socketDirectory,
                clientDirectory: host.s.clientDirectory))
        try host.expectNoEscalation("migrations step creating hm_hostile_probe")
        #expect(migrated.status == 0, "\(migrated)")
        #expect(try host.s.admin("logos_db").query(
            "SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'hm_hostile_probe'").scalar == "public")

        // One that cannot be moved out of a schema of its own is not created by a superuser in a
        // tenant's database: a false result naming it.
        let fixed = try host.s.config(
            "AI_NAMES=logos,aletheia\nLOGOS_PASSWORD=\(HostileTenantTests.logosPassword)\n"
                + "AI_DEFAULT_EXTENSIONS=vector,hm_hostile_fixed")
        let (refused, detail) = try await Hostile.run(DatabasesStep.make(fixed, server: host.s.server, clientDirectory: host.s.clientDirectory))
        try host.expectNoEscalation("databases step refusing hm_hostile_fixed")
        #expect(refused.status == ExitStatus.failed)
        #expect(detail.contains("hm_hostile_fixed") && detail.contains("not relocatable"), "\(detail)")
        for db in config.databases {
            #expect(try host.s.admin(db).query("SELECT count(*) FROM pg_extension WHERE extname = 'hm_hostile_fixed'").scalar == "0")
        }
    }
}

extension HostileTenantTests {
    @Test("a tenant's settings for its database and role (role = itself, read-only, statement and idle timeouts) neither demote the superuser's sessions nor break the suite's")
    func tenantSettingsDoNotRedirect() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        // A revision pending in logos_db, so that the migrator writes there.
        try host.migrator("logos_db").downgrade()
        let hostile = [
            "SET default_transaction_read_only = on", "SET statement_timeout = '1ms'",
            "SET idle_in_transaction_session_timeout = '1ms'", "SET idle_session_timeout = '1ms'",
        ]
        for (db, role) in [("logos_db", "logos"), ("hearthminds_db", host.s.serviceUser)] {
            let settings = hostile.map { "ALTER DATABASE \(db) \($0)" } + hostile.map { "ALTER ROLE \"\(role)\" \($0)" }
            try host.tenant(db).execute(
                "ALTER DATABASE \(db) SET role = \"\(role)\"; " + settings.joined(separator: "; "))
        }
        // What the settings do to a superuser session that does not pin them (only the idle
        // timeouts, so that it lives long enough to ask): it becomes the tenant, read-only.
        var unpinned = PGTarget(
            host: host.s.cluster.socketDirectory, port: host.s.cluster.port, database: "logos_db", user: "postgres",
            asSystemUser: Hostile.postgres)
        unpinned.settings = [("idle_session_timeout", "0"), ("idle_in_transaction_session_timeout", "0")]
        #expect(try PGConnection(unpinned).query("SELECT current_user, current_setting('default_transaction_read_only')").first
            == ["logos", "on"])
        // The suite's superuser session stays the superuser's.
        #expect(try host.s.server.admin("logos_db").query("SELECT current_user, current_setting('default_transaction_read_only')").first
            == ["postgres", "off"])

        let outcomes = try await host.runEverything("tenant settings")
        #expect(outcomes["databases"] == 0 && outcomes["migrations"] == 0 && outcomes["verify"] == 0, "\(outcomes)")
        #expect(try host.migrator("logos_db").status().converged)
        // A new extension is still made by the manager (not by the demoted session).
        let probe = try ProbeExtensions()
        defer { probe.remove() }
        let config = try host.s.config(
            "AI_NAMES=logos,aletheia\nLOGOS_PASSWORD=\(HostileTenantTests.logosPassword)\nAI_DEFAULT_EXTENSIONS=vector,hm_hostile_probe")
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)
        #expect(await runner.run(DatabasesStep.make(config, server: host.s.server, clientDirectory: host.s.clientDirectory)).status == 0)
        // (Read through the suite's pinned connection: the test cluster's plain one would take the
        // tenant's idle timeout of 1 ms.)
        #expect(try host.s.server.admin("logos_db").query(
            "SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = 'hm_hostile_probe'").scalar == config.hearthmindsUser)
        try host.expectNoEscalation("tenant settings")
    }
}

extension HostileTenantTests {
    @Test("an AI writes a terminal escape sequence into its alembic_version: hm-migrate current names the revision, but no escape sequence reaches the operator's terminal")
    func escapeSequenceInState() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        try host.tenant("logos_db").execute(#"UPDATE public.alembic_version SET version_num = E'\x1b]2;pwned\x07\x1b[2J'"#)
        let work = TestFiles.temporaryDirectory("hm-hostile-console")
        defer { TestFiles.removeTree(work) }
        try FileSystem.writeAtomically(
            work + "/hearthminds.env",
            "HEARTHMINDS_SERVICE_USER=\(host.s.serviceUser)\nPOSTGRES_PORT=\(host.s.cluster.port)\nAI_NAMES=logos,aletheia\n"
                + "LOGOS_PASSWORD=\(HostileTenantTests.logosPassword)\n", mode: 0o600, uid: 0, gid: 0)
        let result = try await Command.run(
            [
                Hostile.executable("migrate"), "current", "--database", "logos_db", "--config", work + "/hearthminds.env",
                "--socket-dir", host.s.cluster.socketDirectory, "--migrations", host.migrations,
            ],
            environment: ["HEARTHMINDS_LOCK_DIR": work + "/run", "HEARTHMINDS_LOG": work + "/log.jsonl"])
        let shown = result.stdout + result.stderr
        #expect(result.status == ExitStatus.failed, "\(shown)")
        #expect(shown.contains("is at revision '^[]2;pwned^G^[[2J'"), "\(shown)")
        #expect(!shown.unicodeScalars.contains("\u{1B}") && !shown.unicodeScalars.contains("\u{07}"), "\(shown)")
        try host.expectNoEscalation("escape sequence in the state")
    }
}
