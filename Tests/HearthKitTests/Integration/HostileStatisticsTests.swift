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

/// The statistics upkeep (issue 24) against hostile tenants: ANALYZE evaluates a table's index
/// expressions and its extended statistics' expressions, which the owner writes: the step runs
/// it as the owner, so what it plants runs with no more than the owner's rights.
@Suite("hostile tenants: statistics upkeep (integration, real PostgreSQL 15 + pgvector)", .serialized)
struct HostileStatisticsTests {
    typealias Host = HostileTenantTests.Host

    func flush(_ db: PGConnection) throws {
        _ = try db.query("SELECT pg_catalog.pg_stat_force_next_flush()")
        _ = try db.query("SELECT 1")
    }

    @Test("an expression index and expression statistics that call a planted function, a view shadowing pg_stat_all_tables, eng_patterns replaced by a view: ANALYZE runs as the owner only, no escalation; the host converges")
    func plantedExpressions() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        let logos = try host.tenant("logos_db")
        try logos.execute(
            """
            CREATE FUNCTION public.pwn_text(text) RETURNS text IMMUTABLE LANGUAGE plpgsql AS $f$
            BEGIN PERFORM public.pwn(); RETURN $1; END $f$;
            CREATE INDEX shards_pwn_idx ON public.memory_shards ((public.pwn_text(content)));
            CREATE STATISTICS public.shards_pwn_stats ON (public.pwn_text(content || 'x')) FROM public.memory_shards;
            -- a view of the same name in public: the suite's reads are schema-qualified
            CREATE VIEW public.pg_stat_all_tables AS
                SELECT c.oid AS relid, 0::bigint AS n_live_tup, 0::bigint AS n_mod_since_analyze,
                       now() AS last_analyze, now() AS last_autoanalyze
                FROM pg_catalog.pg_class c WHERE public.pwn() IS NOT NULL;
            -- raw_conversations replaced by a view: not a table of ours to analyze
            DROP TABLE public.raw_conversations;
            CREATE VIEW public.raw_conversations AS SELECT public.pwn() AS x;
            ALTER TABLE public.memory_shards SET (autovacuum_enabled = off);
            """)
        // The index build and the inserts ran the function as logos itself: forget those runs.
        try HostileTenantTests.insertRows(logos, 300)
        try flush(logos)
        try logos.execute("TRUNCATE public.pwned_log")
        let analyzed = try logos.query(
            "SELECT analyze_count::text FROM pg_catalog.pg_stat_all_tables WHERE relid = 'public.memory_shards'::regclass"
        ).scalar

        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)
        let step = await runner.run(host.s.vectorIndexStep(host.config))
        #expect(step.status == 0, "\(step)")
        try host.expectNoEscalation("statistics upkeep")
        let runs = try host.ranAs()
        // ANALYZE evaluated the planted expressions (the attack was really tried), as logos alone.
        #expect(!runs.isEmpty, "the planted expressions never ran: the attack was not tried")
        #expect(runs.allSatisfy { $0 == "logos/logos" }, "\(runs)")
        let after = try logos.query(
            """
            SELECT analyze_count::text, n_mod_since_analyze::text FROM pg_catalog.pg_stat_all_tables
            WHERE relid = 'public.memory_shards'::regclass
            """
        ).first
        #expect(after?[0] != analyzed && after?[1] == "0")

        // The whole suite, every command, with all of it in place: no escalation; converged.
        try logos.execute("TRUNCATE public.pwned_log")
        let outcomes = try await host.runEverything("planted statistics expressions")
        #expect(outcomes["vector-index"] == 0)
        #expect(await runner.run(host.s.vectorIndexStep(host.config)).changed == 0)
    }
}
