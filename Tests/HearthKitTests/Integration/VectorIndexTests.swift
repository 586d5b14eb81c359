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

/// Rows of random `dimensions`-wide embeddings, inserted by the database's owner.
func insertEmbeddings(_ db: PGConnection, _ count: Int, dimensions: Int = 8) throws {
    try db.execute(
        """
        INSERT INTO public.memory_shards (content, embedding)
        SELECT 'row ' || g, ARRAY(SELECT random()::real FROM generate_series(1, \(dimensions)) WHERE g > 0)::vector
        FROM generate_series(1, \(count)) g
        """)
    // The session's counts reach the server's statistics now, not within the next second or so
    // (the statistics action reads them).
    _ = try db.query("SELECT pg_catalog.pg_stat_force_next_flush()")
    _ = try db.query("SELECT 1")
}

/// memory_shards' statistics as the server has them: (n_mod_since_analyze, analyzed ever).
func shardStatistics(_ db: PGConnection) throws -> (modified: Int, analyzed: Bool, analyzeCount: Int) {
    let row = try #require(
        try db.query(
            """
            SELECT n_mod_since_analyze::text, (last_analyze IS NOT NULL)::text, analyze_count::text
            FROM pg_catalog.pg_stat_all_tables WHERE relid = 'public.memory_shards'::regclass
            """
        ).first)
    return (Int(row[0] ?? "") ?? -1, row[1] == "true", Int(row[2] ?? "") ?? -1)
}

/// The IVFFlat index of logos_db as the catalog has it: lists, comment, relfilenode (a new one
/// after each rebuild).
func ivfflatState(_ db: PGConnection) throws -> (lists: String, comment: String?, file: String) {
    let row = try #require(
        try db.query(
            """
            SELECT array_to_string(reloptions, ','), obj_description(oid, 'pg_class'), relfilenode::text
            FROM pg_class WHERE relname = 'memory_shards_embedding_ivfflat_idx'
            """
        ).first)
    return (row[0] ?? "", row[1], row[2] ?? "")
}

func databaseSetting(_ s: DatabasesScenario, _ database: String, _ name: String) throws -> String? {
    try VectorIndex.databaseSetting(name, database: database, s.admin())
}

@Suite("vector index (integration, real PostgreSQL 15 + pgvector)", .serialized)
struct VectorIndexTests {
    static let password = "logos-vector-secret"

    @Test("IVFFlat: untrained on a fresh host (noted); trained with lists from the rows once data is there; a converged rerun rebuilds nothing; twice the rows retrain it")
    func trainsWhenGrown() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_IVFFLAT_LISTS=auto")
        #expect(try await s.run(config).status == 0)
        // Before the migrations step (install.sh --dry-run on a new host): no index yet is what
        // the run will make, pending, not a false check.
        let early = await testRunner(dryRun: true).run(s.vectorIndexStep(config))
        #expect(early.status == 0 && early.failedAction == nil && early.pending == 6, "\(early)")
        let migrated = await testRunner().run(
            MigrationsStep.make(
                config, directory: TestFiles.repositoryRoot + "/Migrations", socketDirectory: s.cluster.socketDirectory,
                clientDirectory: s.clientDirectory))
        #expect(migrated.status == 0)

        // Fresh: nothing to train (no rows); the probes are not set yet: a dry run says so.
        let dry = await testRunner(dryRun: true).run(s.vectorIndexStep(config))
        #expect(dry.status == 0 && dry.pending == 2 && dry.changed == 0)
        let first = await testRunner().run(s.vectorIndexStep(config))
        #expect(first.status == 0 && first.changed == 2)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        let fresh = try ivfflatState(logos)
        #expect(fresh.lists == "lists=100" && fresh.comment == nil)
        // auto probes: the square root of the index's 100 lists.
        #expect(try databaseSetting(s, "logos_db", "ivfflat.probes") == "10")
        #expect(try databaseSetting(s, "hearthminds_db", "ivfflat.probes") == "10")
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)

        // The AI loads 3000 rows: the rerun trains the index (lists 3000 / 1000), probes follow.
        try insertEmbeddings(logos, 3000)
        let trained = await testRunner().run(s.vectorIndexStep(config))
        #expect(trained.status == 0 && trained.changed == 2, "\(trained)")
        let after = try ivfflatState(logos)
        #expect(after.lists == "lists=3")
        #expect(after.comment == VectorIndex.comment(rows: 3000, lists: 3))
        #expect(after.file != fresh.file)
        #expect(try databaseSetting(s, "logos_db", "ivfflat.probes") == "2")
        #expect(try databaseSetting(s, "hearthminds_db", "ivfflat.probes") == "10")
        #expect(try logos.query("SELECT count(*) FROM pg_index WHERE NOT indisvalid").scalar == "0")
        #expect(try await s.verify(config).status == 0)

        #expect(try shardStatistics(logos).modified == 0)  // the training ANALYZEd

        // More rows below twice: no rebuild (the same file), but a big ingest (2999 rows changed of
        // 5999, beyond 10% + 50): ANALYZEd by the statistics action; then converged.
        try insertEmbeddings(logos, 2999)
        #expect(try shardStatistics(logos).modified == 2999)
        let analyzeCount = try shardStatistics(logos).analyzeCount
        let ingested = await testRunner().run(s.vectorIndexStep(config))
        #expect(ingested.status == 0 && ingested.changed == 1)
        let fresh2 = try shardStatistics(logos)
        #expect(fresh2.modified == 0 && fresh2.analyzed && fresh2.analyzeCount == analyzeCount + 1)
        #expect(try logos.query("SELECT reltuples::bigint::text FROM pg_catalog.pg_class WHERE oid = 'public.memory_shards'::regclass").scalar == "5999")
        let converged = await testRunner().run(s.vectorIndexStep(config))
        #expect(converged.status == 0 && converged.changed == 0)
        #expect(try ivfflatState(logos).file == after.file)

        // Twice the rows it was trained on: retrained, lists 6, probes 3.
        try insertEmbeddings(logos, 1)
        let again = await testRunner().run(s.vectorIndexStep(config))
        #expect(again.status == 0 && again.changed == 2)
        let retrained = try ivfflatState(logos)
        #expect(retrained.lists == "lists=6" && retrained.file != after.file)
        #expect(retrained.comment == VectorIndex.comment(rows: 6000, lists: 6))
        #expect(try databaseSetting(s, "logos_db", "ivfflat.probes") == "3")
        // A search uses the index, with the database's probes, in a new session of the AI.
        let search = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        #expect(try search.query("SHOW ivfflat.probes").scalar == "3")
        let plan = try search.query(
            "EXPLAIN SELECT id FROM memory_shards ORDER BY embedding <=> (SELECT embedding FROM memory_shards LIMIT 1) LIMIT 10"
        ).rows.compactMap { $0[0] }.joined(separator: "\n")
        #expect(plan.contains("memory_shards_embedding_ivfflat_idx"), "\(plan)")
    }

    @Test("fixed lists and probes: the index is rebuilt with the configured lists; a probes value the owner sets is put back, and verify sees it")
    func fixedSettingsConverge() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config(
            "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_IVFFLAT_LISTS=20\nPGVECTOR_IVFFLAT_PROBES=7")
        #expect(try await s.run(config).status == 0)
        // 0003 renders lists 20: the index is built with them (untrained: no rows).
        #expect(try await s.verify(config).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        #expect(try ivfflatState(logos).lists == "lists=20")
        #expect(try databaseSetting(s, "logos_db", "ivfflat.probes") == "7")

        // Fewer rows than lists: not trained yet; at 20 rows it is.
        try insertEmbeddings(logos, 19)
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        try insertEmbeddings(logos, 1)
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 1)
        #expect(try ivfflatState(logos).comment == VectorIndex.comment(rows: 20, lists: 20))

        // The owner lowers the probes of its database: verify is false, the step puts it back.
        try logos.execute("ALTER DATABASE logos_db SET ivfflat.probes = 1")
        #expect(try databaseSetting(s, "logos_db", "ivfflat.probes") == "1")
        let verify = await testRunner().run(
            VerifyStep.make(
                config, server: s.server, migrations: TestFiles.repositoryRoot + "/Migrations",
                clientDirectory: s.clientDirectory))
        #expect(verify.status == ExitStatus.failed && verify.failedAction == "logos_db: ivfflat.probes = 7 for the database")
        let back = await testRunner().run(s.vectorIndexStep(config))
        #expect(back.status == 0 && back.changed == 1)
        #expect(try databaseSetting(s, "logos_db", "ivfflat.probes") == "7")

        // The operator changes the lists: the index is rebuilt with them (a checksum change of
        // 0003 that `hm-migrate check` reports is the migrations step's business, not this one's).
        let forty = try s.config(
            "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_IVFFLAT_LISTS=40\nPGVECTOR_IVFFLAT_PROBES=7")
        #expect(await testRunner().run(s.vectorIndexStep(forty)).changed == 2)  // hearthminds_db's index too
        #expect(try ivfflatState(logos).lists == "lists=40")
        #expect(await testRunner().run(s.vectorIndexStep(forty)).changed == 0)
    }

    @Test("a fresh install shows pgvector's NOTICE of 0003 (little data) instead of hiding it")
    func freshNoticeShown() async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let migrator = try db.migrator(try MigrationFixtures.set())
        var notices: [String] = []
        migrator.notice = { notices.append($0) }
        try migrator.upgrade()
        #expect(notices.count == 1, "\(notices)")
        #expect(notices.first?.contains("0003_ivfflat_index.up.sql: NOTICE: ivfflat index created with little data") == true)
        #expect(notices.first?.contains("This will cause low recall") == true)
    }

    @Test("HNSW: revision 0007 replaces the IVFFlat index; down brings it back; the round trip leaves the same schema")
    func hnswRoundTrip() async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let ivfflat = try MigrationFixtures.set()
        try db.migrator(ivfflat).upgrade()
        let atHeadIvfflat = try await db.schema()
        try db.migrator(ivfflat).downgrade(to: "0007")
        let atSevenIvfflat = try await db.schema()
        try db.migrator(ivfflat).downgrade(to: "0006")
        #expect(try await db.schema() == atSevenIvfflat, "0007 with ivfflat is a no-op")
        #expect(atHeadIvfflat != atSevenIvfflat, "0008 makes memory_search")

        let hnsw = try MigrationFixtures.set(
            MigrationFixtures.directory,
            "PGVECTOR_INDEX=hnsw\nPGVECTOR_HNSW_M=8\nPGVECTOR_HNSW_EF_CONSTRUCTION=32")
        #expect(hnsw.revision("0007")?.checksum != ivfflat.revision("0007")?.checksum)
        try db.connectAsOwner().execute(
            "INSERT INTO memory_shards (content, embedding) SELECT 'r' || g, "
                + "ARRAY(SELECT random()::real FROM generate_series(1, 1536) WHERE g > 0)::vector FROM generate_series(1, 5000) g")
        // 5000 rows: 0007's down rebuilds the IVFFlat index on a full sample of 100 lists (50 rows
        // per list), which needs more than PostgreSQL's default 64 MB of maintenance_work_mem at
        // 1536 dimensions (pgvector refused it on 20,000 rows: "memory required is 65 MB"): each
        // revision's transaction gets what the lists and dimensions need.
        #expect(ivfflat.buildMemoryMB.map { $0 > 64 } == true)
        let beforeHnsw = try await db.schema()
        try db.migrator(hnsw).upgrade()
        let indexes = try db.connect().query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'memory_shards' AND indexname LIKE '%embedding%'"
        ).rows
        #expect(indexes.count == 1)
        #expect(indexes.first?[0] == VectorIndex.hnswName)
        #expect(indexes.first?[1]?.contains("USING hnsw (embedding vector_cosine_ops) WITH (m='8', ef_construction='32')") == true)
        #expect(try db.migrator(hnsw).status().converged)

        try db.migrator(hnsw).downgrade(to: "0006")
        #expect(try db.migrator(hnsw).currentRevision() == "0006")
        #expect(try await db.schema() == beforeHnsw, "up and down of 0007 leave the schema as it was")
        try db.migrator(hnsw).upgrade()
        try db.migrator(hnsw).downgrade(to: "base")
        try db.migrator(hnsw).upgrade()
        #expect(try db.connect().query("SELECT count(*) FROM pg_indexes WHERE indexname = $1", [VectorIndex.hnswName]).scalar == "1")
    }

    @Test("the hnsw choice on a host: ef_search set for every database and put back; no IVFFlat training")
    func hnswHost() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config(
            "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_INDEX=hnsw\nPGVECTOR_HNSW_EF_SEARCH=80")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        for database in config.databases {
            #expect(try databaseSetting(s, database, "hnsw.ef_search") == "80")
            #expect(try databaseSetting(s, database, "ivfflat.probes") == nil)
        }
        let step = s.vectorIndexStep(config)
        #expect(step.actions.count == 8)  // storage, HNSW upkeep, ef_search and statistics, for each database
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        // Once pgvector is loaded in its session (any vector value), the owner may set its parameters.
        expectFailure(.database) { try logos.execute("ALTER DATABASE logos_db SET hnsw.ef_search = 1") }
        _ = try logos.query("SELECT '[1,2]'::vector")
        try logos.execute("ALTER DATABASE logos_db SET hnsw.ef_search = 1")
        #expect(await testRunner().run(step).changed == 1)
        #expect(try databaseSetting(s, "logos_db", "hnsw.ef_search") == "80")
        #expect(try logos.query("SELECT count(*) FROM pg_indexes WHERE indexname = $1", [VectorIndex.hnswName]).scalar == "1")
    }

    @Test("statistics (issue 24): with HNSW (no training), a big ingest is ANALYZEd by the step as the owner, a small one not; a rerun changes nothing; PG_ANALYZE_FRACTION=off leaves it to autovacuum")
    func statisticsAfterIngest() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_INDEX=hnsw")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        // (autovacuum off for the table: what analyzes it here is the step)
        try logos.execute("ALTER TABLE public.memory_shards SET (autovacuum_enabled = off)")
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        let before = try shardStatistics(logos).analyzeCount

        // 40 rows: fewer than autovacuum's threshold of 50: not a load, nothing done.
        try insertEmbeddings(logos, 40)
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        #expect(try shardStatistics(logos).analyzeCount == before)

        // PG_ANALYZE_FRACTION=off: no statistics action at all.
        try insertEmbeddings(logos, 2000)
        let off = try s.config("AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_INDEX=hnsw\nPG_ANALYZE_FRACTION=off")
        #expect(s.vectorIndexStep(off).actions.count == 6)
        #expect(await testRunner().run(s.vectorIndexStep(off)).changed == 0)
        #expect(try shardStatistics(logos).analyzeCount == before && shardStatistics(logos).modified == 2040)

        // The default: a dry run says it would change and changes nothing; the run ANALYZEs
        // (the planner's row estimate is the table's); the rerun changes nothing.
        let dry = await testRunner(dryRun: true).run(s.vectorIndexStep(config))
        #expect(dry.status == 0 && dry.pending == 1)
        #expect(try shardStatistics(logos).analyzeCount == before)
        let run = await testRunner().run(s.vectorIndexStep(config))
        #expect(run.status == 0 && run.changed == 1)
        let stats = try shardStatistics(logos)
        #expect(stats.analyzed && stats.modified == 0 && stats.analyzeCount == before + 1)
        #expect(try logos.query("SELECT reltuples::bigint::text FROM pg_catalog.pg_class WHERE oid = 'public.memory_shards'::regclass").scalar == "2040")
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        // A change of 10% + 50 is not yet stale; one row more than that is.
        try logos.execute("UPDATE public.memory_shards SET content = content || '.' WHERE id IN (SELECT id FROM public.memory_shards ORDER BY id LIMIT 254)")
        _ = try logos.query("SELECT pg_catalog.pg_stat_force_next_flush()")
        _ = try logos.query("SELECT 1")
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        try logos.execute("UPDATE public.memory_shards SET content = content || '.' WHERE id IN (SELECT id FROM public.memory_shards ORDER BY id LIMIT 1)")
        _ = try logos.query("SELECT pg_catalog.pg_stat_force_next_flush()")
        _ = try logos.query("SELECT 1")
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 1)
        #expect(try shardStatistics(logos).modified == 0)
    }
}
