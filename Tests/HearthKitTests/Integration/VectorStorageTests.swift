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

/// Rows of `dimensions`-wide embeddings with both signs (a binary quantization of only positive
/// values would be all ones), and two rows without one, inserted as the database's owner.
private func insertSigned(_ db: PGConnection, _ count: Int, dimensions: Int) throws {
    try db.execute(
        """
        INSERT INTO public.memory_shards (content, embedding)
        SELECT 'row ' || g, ARRAY(SELECT (random() - 0.5)::real FROM generate_series(1, \(dimensions)) WHERE g > 0)::public.vector
        FROM generate_series(1, \(count)) g;
        INSERT INTO public.memory_shards (content) VALUES ('no embedding 1'), ('no embedding 2')
        """)
}

/// The embedding column's type name and every row (id, embedding as text), in id order.
private func columnType(_ db: PGConnection) throws -> String? {
    try db.query(
        "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.memory_shards'::regclass AND attname = 'embedding'"
    ).scalar
}

private func rows(_ db: PGConnection) throws -> [[String?]] {
    try db.query("SELECT id::text, embedding::public.vector::text FROM public.memory_shards ORDER BY id").rows
}

/// memory_search's top k for `query` (a row's own embedding, as a vector), and the exact top k
/// by brute force over the stored values (no index: a sequential scan), as (id, distance).
private func topK(_ db: PGConnection, query: String, k: Int, halfvec: Bool) throws -> (search: [String], exact: [String]) {
    let search = try db.query(
        "SELECT id::text, round(distance::numeric, 4)::text FROM public.memory_search($1::public.vector, $2)", [query, String(k)]
    ).rows.map { "\($0[0] ?? "") \($0[1] ?? "")" }
    let cast = halfvec ? "::public.halfvec" : ""
    try db.execute("SET enable_indexscan = off; SET enable_bitmapscan = off")
    defer { try? db.execute("RESET enable_indexscan; RESET enable_bitmapscan") }
    let exact = try db.query(
        """
        SELECT id::text, round((embedding OPERATOR(public.<=>) $1::public.vector\(cast))::numeric, 4)::text
        FROM public.memory_shards WHERE embedding IS NOT NULL
        ORDER BY embedding OPERATOR(public.<=>) $1::public.vector\(cast), id LIMIT $2
        """, [query, String(k)]
    ).rows.map { "\($0[0] ?? "") \($0[1] ?? "")" }
    return (search, exact)
}

@Suite("compressed memories: PGVECTOR_STORAGE and revision 0008 (integration, real PostgreSQL 15 + pgvector)", .serialized)
struct VectorStorageTests {
    static let password = "logos-storage-secret"

    @Test(
        "each kind: 0008 up converts the rows present, memory_search returns the exact top k, the catalog is what the key wants; down converts back keeping every row; up again leaves the same schema",
        arguments: [
            ("vector", "PGVECTOR_STORAGE=vector"),
            ("vector hnsw", "PGVECTOR_STORAGE=vector\nPGVECTOR_INDEX=hnsw"),
            ("halfvec ivfflat", "PGVECTOR_STORAGE=halfvec"),
            ("halfvec hnsw", "PGVECTOR_STORAGE=halfvec\nPGVECTOR_INDEX=hnsw"),
            ("binary", "PGVECTOR_STORAGE=binary\nPGVECTOR_INDEX=hnsw\nPGVECTOR_RERANK=100"),
        ])
    func roundTrip(kind: String, keys: String) async throws {
        let dims = 32
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let text = "EMBEDDING_DIM=\(dims)\n" + keys
        let config = try loadConfig(text)
        let set = try MigrationFixtures.set(MigrationFixtures.directory, text)
        try db.migrator(set).upgrade(to: "0007")
        let owner = try db.connectAsOwner()
        try insertSigned(owner, 60, dimensions: dims)
        let before = try rows(owner)
        let atSeven = try await db.schema()

        try db.migrator(set).upgrade()
        #expect(try db.migrator(set).status().converged)
        let halfvec = config.vectorStorage == .halfvec
        #expect(try columnType(owner) == (halfvec ? "halfvec(\(dims))" : "vector(\(dims))"))
        #expect(try owner.query("SELECT count(*) FROM public.memory_shards").scalar == "62")
        #expect(EmbeddingStorage.problems(config, try EmbeddingStorage.inspect(owner)) == [], "\(kind)")
        #expect(try EmbeddingStorage.require(config, database: db.name, owner))

        // Exact top 5 for a few rows' own embeddings: every list of the index probed, ef_search
        // beyond the rows, so that the index's answer is the exact one on this small set.
        try owner.execute("SET ivfflat.probes = 100; SET hnsw.ef_search = 400")
        for query in before.prefix(60).compactMap({ $0[1] }).enumerated().filter({ $0.offset % 15 == 0 }).map(\.element) {
            let (search, exact) = try topK(owner, query: query, k: 5, halfvec: halfvec)
            #expect(search.count == 5)
            #expect(search == exact, "\(kind): memory_search \(search) vs exact \(exact)")
        }
        // The search is the index's: its plan uses the kind's index (the binary index for binary).
        if let index = EmbeddingStorage.wantedIndexes(config).keys.first {
            try owner.execute("SET enable_seqscan = off")
            let plan = try owner.query(
                "EXPLAIN " + (config.vectorStorage == .binary
                    ? "SELECT id FROM public.memory_shards ORDER BY public.binary_quantize(embedding)::bit(\(dims)) OPERATOR(public.<~>) public.binary_quantize($1::public.vector) LIMIT 100"
                    : "SELECT id FROM public.memory_shards ORDER BY embedding OPERATOR(public.<=>) $1::public.vector\(halfvec ? "::public.halfvec(\(dims))" : "") LIMIT 5"),
                [before[0][1]]
            ).rows.compactMap { $0[0] }.joined(separator: "\n")
            try owner.execute("RESET enable_seqscan")
            #expect(plan.contains(index), "\(kind): \(plan)")
        }
        // The seed's query pattern on the column itself still works (vector -> halfvec is implicit).
        #expect(
            try owner.query(
                "SELECT count(*) FROM (SELECT id FROM public.memory_shards ORDER BY embedding OPERATOR(public.<=>) $1::public.vector LIMIT 5) s",
                [before[0][1]]
            ).scalar == "5")

        // Down: back to vector, every row kept (halfvec: values within half precision).
        try db.migrator(set).downgrade(to: "0007")
        #expect(try columnType(owner) == "vector(\(dims))")
        let after = try rows(owner)
        #expect(after.map { $0[0] } == before.map { $0[0] })
        #expect(after.filter { $0[1] == nil }.count == 2)
        if halfvec {
            let drift = try owner.query(
                """
                SELECT max(abs(a - b))::text FROM (
                    SELECT unnest(m.embedding::real[]) a, unnest($1::public.vector::real[]) b
                    FROM public.memory_shards m WHERE m.id = $2::bigint) s
                """, [before[0][1], before[0][0]]
            ).scalar
            #expect((Double(drift ?? "1") ?? 1) < 0.001, "drift \(drift ?? "?")")
        } else {
            #expect(after == before)
        }
        #expect(try await db.schema() == atSeven, "\(kind): down leaves 0007's schema")
        try db.migrator(set).upgrade()
        #expect(try db.migrator(set).status().converged)
        #expect(EmbeddingStorage.problems(config, try EmbeddingStorage.inspect(owner)) == [])
    }

    @Test("a halfvec host: the steps converge, the IVFFlat index on halfvec is trained, verify passes and runs memory_search; a rerun changes nothing; the key changed afterwards is refused with what to run, never left half")
    func halfvecHost() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let text = "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_IVFFLAT_LISTS=auto\n"
        let config = try s.config(text + "PGVECTOR_STORAGE=halfvec")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        #expect(try columnType(logos) == "halfvec(8)")
        try insertSigned(logos, 3000, dimensions: 8)
        let trained = await testRunner().run(s.vectorIndexStep(config))
        #expect(trained.status == 0 && trained.changed >= 1, "\(trained)")
        let found = try #require(try VectorIndex.findIvfflat(logos, opclass: "halfvec_cosine_ops"))
        #expect(found.problems.isEmpty && found.lists == 3 && found.trainedOn == 3000)
        #expect(try VectorIndex.findIvfflat(logos)?.problems.isEmpty == false)  // not vector_cosine_ops
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        #expect(try await s.verify(config).status == 0)

        // The key moved back to vector without undoing 0008: the migrations step reports 0008
        // changed, the vector-index step is false naming what to run; nothing is converted.
        let vector = try s.config(text + "PGVECTOR_STORAGE=vector")
        let step = await testRunner().run(s.vectorIndexStep(vector))
        #expect(step.status == ExitStatus.failed)
        #expect(step.failedAction?.contains("memory_shards.embedding stored as vector") == true, "\(step)")
        #expect {
            try EmbeddingStorage.require(vector, database: "logos_db", logos)
        } throws: { error in
            let message = "\(error)"
            return message.contains("memory_shards.embedding is halfvec")
                && message.contains("hm-migrate down --to 0007 --database logos_db --set PGVECTOR_STORAGE=halfvec")
        }
        #expect(try columnType(logos) == "halfvec(8)")
        #expect(try await s.migrate(vector).status == ExitStatus.failed)  // 0008's checksum changed

        // As the docs say: down under the old value, then up under the new one.
        let set = try MigrationSet.load(directory: MigrationFixtures.directory, config: config)
        let credentials = Credentials(config, book: PasswordBook(config, directory: s.clientDirectory))
        for database in config.databases {
            let migrator = try Migrator(
                set: set, database: database, server: s.server, credentials: credentials,
                expected: DatabaseSpec.owners(config)[database])
            try migrator.downgrade(to: "0007")
        }
        #expect(try columnType(logos) == "vector(8)")
        #expect(try logos.query("SELECT count(*) FROM public.memory_shards").scalar == "3002")
        #expect(try await s.verify(vector).status == 0)
    }

    @Test("a binary host: the binary index, hnsw.ef_search at least 4 x PGVECTOR_RERANK, verify passes")
    func binaryHost() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config(
            "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=16\nPGVECTOR_STORAGE=binary\nPGVECTOR_INDEX=hnsw\nPGVECTOR_RERANK=120")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        for database in config.databases {
            #expect(try databaseSetting(s, database, "hnsw.ef_search") == "480")
        }
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        #expect(try logos.query("SELECT count(*) FROM pg_indexes WHERE indexname = $1", [EmbeddingStorage.binaryName]).scalar == "1")
        #expect(try logos.query("SELECT count(*) FROM pg_indexes WHERE indexname = $1", [VectorIndex.hnswName]).scalar == "0")
        // Rows loaded: memory_search re-ranks the binary candidates; a rerun of the step changes nothing.
        try insertSigned(logos, 300, dimensions: 16)
        #expect(try logos.query("SELECT count(*) FROM public.memory_search((SELECT embedding FROM public.memory_shards WHERE id = 1), 10)").scalar == "10")
        #expect(await testRunner().run(s.vectorIndexStep(config)).status == 0)
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        #expect(try await s.verify(config).status == 0)
        // The owner drops the binary index: the step and verify say so and what to run.
        try logos.execute("DROP INDEX public.\(EmbeddingStorage.binaryName)")
        let step = await testRunner().run(s.vectorIndexStep(config))
        #expect(step.status == ExitStatus.failed)
        #expect {
            try EmbeddingStorage.require(config, database: "logos_db", logos)
        } throws: { error in
            "\(error)".contains("index \(EmbeddingStorage.binaryName) is missing")
        }
    }

    @Test("hostile tenant: a planted operator in public or on the caller's search_path, or a planted temp function, does not change what memory_search runs or returns; it stays SECURITY INVOKER with its search_path pinned")
    func hostileTenant() async throws {
        let dims = 16
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let text = "EMBEDDING_DIM=\(dims)\nPGVECTOR_STORAGE=halfvec\nPGVECTOR_INDEX=hnsw"
        let set = try MigrationFixtures.set(MigrationFixtures.directory, text)
        try db.migrator(set).upgrade()
        let owner = try db.connectAsOwner()
        try insertSigned(owner, 40, dimensions: dims)
        let query = try #require(try rows(owner).first?[1])
        try owner.execute("SET hnsw.ef_search = 400")
        let honest = try topK(owner, query: query, k: 5, halfvec: true)
        #expect(honest.search == honest.exact)

        // The owner plants: public.<=>(halfvec, vector) (a closer match than the cast the
        // function makes), an operator <=> and a binary_quantize of its own in schema evil, and
        // puts evil first on its search_path; each raises if it ever runs.
        try owner.execute(
            """
            CREATE FUNCTION public.planted(public.halfvec, public.vector) RETURNS float8 LANGUAGE plpgsql AS
                $$BEGIN RAISE EXCEPTION 'planted public operator ran as %', current_user; END$$;
            CREATE OPERATOR public.<=> (LEFTARG = public.halfvec, RIGHTARG = public.vector, FUNCTION = public.planted);
            CREATE SCHEMA evil;
            CREATE FUNCTION evil.planted(public.halfvec, public.halfvec) RETURNS float8 LANGUAGE plpgsql AS
                $$BEGIN RAISE EXCEPTION 'planted evil operator ran as %', current_user; END$$;
            CREATE OPERATOR evil.<=> (LEFTARG = public.halfvec, RIGHTARG = public.halfvec, FUNCTION = evil.planted);
            CREATE FUNCTION evil.binary_quantize(public.vector) RETURNS bit LANGUAGE plpgsql AS
                $$BEGIN RAISE EXCEPTION 'planted binary_quantize ran'; END$$;
            CREATE FUNCTION pg_temp.halfvec(public.vector) RETURNS public.halfvec LANGUAGE plpgsql AS
                $$BEGIN RAISE EXCEPTION 'planted temp cast ran'; END$$;
            SET search_path = evil, public, pg_catalog
            """)
        // The planted operator does catch an unqualified query of the owner's own: it is real.
        expectFailure(.database) {
            try owner.query("SELECT embedding <=> $1::public.vector FROM public.memory_shards LIMIT 1", [query])
        }
        let planted = try owner.query(
            "SELECT id::text, round(distance::numeric, 4)::text FROM public.memory_search($1::public.vector, 5)", [query]
        ).rows.map { "\($0[0] ?? "") \($0[1] ?? "")" }
        #expect(planted == honest.search)
        try owner.execute("RESET search_path")
        let found = try EmbeddingStorage.inspect(owner)
        #expect(found.search == EmbeddingStorage.Search(securityDefiner: false, ownedByDatabaseOwner: true, pinnedSearchPath: true))

        // The owner replaces memory_search with a SECURITY DEFINER one: the storage check names it.
        try owner.execute("ALTER FUNCTION public.memory_search(public.vector, integer) SECURITY DEFINER RESET search_path")
        let config = try loadConfig(text)
        let problems = EmbeddingStorage.problems(config, try EmbeddingStorage.inspect(owner))
        #expect(problems.contains("public.memory_search is SECURITY DEFINER, not INVOKER"))
        #expect(problems.contains("public.memory_search's search_path is not pinned (pg_catalog, pg_temp)"))
        #expect(problems.contains("public.memory_search is not the function revision 0008 makes (its body, language or settings differ)"))
        // The planted operators are named too: a query written as the seed's may resolve to them.
        #expect(problems.contains { $0.hasPrefix("operator <=>(halfvec,vector) is not pgvector's") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("operator evil.<=>(halfvec,halfvec) is not pgvector's") }, "\(problems)")
    }

    @Test("HNSW upkeep (pgvector's advice): many rows deleted, the HNSW index is rebuilt (REINDEX CONCURRENTLY) then memory_shards vacuumed, as the owner; few, nothing; a rerun changes nothing; an interrupted rebuild's leftover is dropped")
    func hnswUpkeep() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config(
            "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_STORAGE=binary\nPGVECTOR_INDEX=hnsw\nPG_ANALYZE_FRACTION=off")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        try logos.execute("ALTER TABLE public.memory_shards SET (autovacuum_enabled = off)")
        try insertSigned(logos, 2000, dimensions: 8)
        func flush() throws {
            _ = try logos.query("SELECT pg_catalog.pg_stat_force_next_flush()")
            _ = try logos.query("SELECT 1")
        }
        func file() throws -> String? {
            try logos.query("SELECT relfilenode::text FROM pg_class WHERE relname = $1", [EmbeddingStorage.binaryName]).scalar
        }
        try flush()
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        let before = try file()

        // 300 of 2002 deleted: below 20% + 50, nothing.
        try logos.execute("DELETE FROM public.memory_shards WHERE id <= 300")
        try flush()
        #expect(try HnswUpkeep.read(logos).deadRows == 300)
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        #expect(try file() == before)

        // 900 more: due. A dry run says so and changes nothing; the run rebuilds, then vacuums.
        try logos.execute("DELETE FROM public.memory_shards WHERE id <= 1200")
        try flush()
        #expect(try HnswUpkeep.read(logos).isDue)
        let dry = await testRunner(dryRun: true).run(s.vectorIndexStep(config))
        #expect(dry.status == 0 && dry.pending == 1)
        #expect(try file() == before)
        let run = await testRunner().run(s.vectorIndexStep(config))
        #expect(run.status == 0 && run.changed == 1)
        #expect(try file() != before)
        let state = try HnswUpkeep.read(logos)
        #expect(state.deadRows == 0 && state.liveRows == 802 && !state.isDue)
        #expect(try logos.query("SELECT (last_vacuum IS NOT NULL)::text FROM pg_stat_all_tables WHERE relid = 'public.memory_shards'::regclass").scalar == "true")
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        #expect(try await s.verify(config).status == 0)

        // An interrupted REINDEX CONCURRENTLY leaves an invalid copy: the next run drops it.
        let admin = try s.admin("logos_db")
        try admin.execute(
            "CREATE INDEX \(EmbeddingStorage.binaryName)_ccnew ON public.memory_shards USING hnsw ((public.binary_quantize(embedding)::bit(8)) public.bit_hamming_ops)")
        try admin.execute(
            "UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'public.\(EmbeddingStorage.binaryName)_ccnew'::regclass")
        #expect(try HnswUpkeep.read(logos).leftovers == [EmbeddingStorage.binaryName + "_ccnew"])
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 1)
        #expect(try HnswUpkeep.read(logos).leftovers.isEmpty)
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
    }

    @Test("a revision's transaction raises maintenance_work_mem to what an IVFFlat build needs, and never lowers a larger one (a tuned server's, for 0008's HNSW rebuilds)")
    func buildMemoryNeverLowered() async throws {
        let cluster = try await TestCluster.shared()
        for (setting, expected) in [(nil as String?, nil as String?), ("1GB", "1GB")] {
            let db = try ScratchDatabase.make(cluster)
            defer { db.drop() }
            let dir = try MigrationFixtures.copy([
                "0009_probe.up.sql": "CREATE TABLE mwm AS SELECT pg_catalog.current_setting('maintenance_work_mem') AS v;\n",
                "0009_probe.down.sql": "DROP TABLE mwm;\n",
            ])
            defer { TestFiles.removeTree(dir) }
            let set = try MigrationFixtures.set(dir)
            let needed = try #require(set.buildMemoryMB)
            #expect(needed > 64)
            if let setting {
                try db.connect().execute("ALTER DATABASE \(db.name) SET maintenance_work_mem = '\(setting)'")
            }
            try db.migrator(set).upgrade()
            #expect(try db.scalar("SELECT v FROM mwm") == (expected ?? "\(needed)MB"))
        }
    }
}
