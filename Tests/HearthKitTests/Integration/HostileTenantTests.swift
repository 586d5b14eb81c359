#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HearthKit

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
            config = try s.config("AI_NAMES=logos,aletheia\nLOGOS_PASSWORD=\(HostileTenantTests.logosPassword)")
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
                who += try s.admin(db).query("SELECT who || '/' || sess FROM public.pwned_log").rows.map { $0[0] ?? "" }
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

    @Test("marks: an AI cannot comment its own role; a database without its mark is re-marked; an unmarked role or database of our name is never taken over or dropped")
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
        // Removed just before a reset: the reset refuses and drops nothing.
        try host.tenant("logos_db").execute("COMMENT ON DATABASE logos_db IS NULL")
        let refused = await runner.run(ResetStep.make(host.config, server: host.s.server, clientDirectory: host.s.clientDirectory))
        #expect(refused.status == ExitStatus.failed && refused.changed == 0)
        #expect(try host.s.admin().query("SELECT count(*) FROM pg_database WHERE datname IN ('logos_db', 'aletheia_db', 'hearthminds_db')").scalar == "3")

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
        #expect(next.failedAction == "database nous_db (UTF8) owned by nous, marked")
        #expect(try admin.query("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'nous_db'").scalar == "postgres")
        try admin.execute("DROP DATABASE nous_db")
        try admin.execute("DROP ROLE nous")
        try host.expectNoEscalation("marks")
    }
}
