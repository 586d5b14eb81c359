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

/// Attack review of issue 24 part 2 (compressed memories: PGVECTOR_STORAGE, revision 0008,
/// memory_search, the vector-index step's storage assertion and HNSW upkeep, verify), by a
/// reviewer who did not write it. Each test tries an attack for real on a real cluster; a test
/// that fails is a finding (see the report on branch issue24-review), one that passes shows the
/// code held.
@Suite("attack review of compressed memories (integration, real PostgreSQL 15 + pgvector)", .serialized)
struct StorageAttackTests {
    static let password = "logos-attack-secret"

    /// Rows of `dimensions`-wide embeddings with both signs, inserted by `db` (the owner).
    static func insert(_ db: PGConnection, _ count: Int, dimensions: Int) throws {
        try db.execute(
            """
            INSERT INTO public.memory_shards (content, embedding)
            SELECT 'row ' || g, ARRAY(SELECT (random() - 0.5)::real FROM generate_series(1, \(dimensions)) WHERE g > 0)::public.vector
            FROM generate_series(1, \(count)) g
            """)
    }

    /// verify alone (not the migrations and vector-index steps before it, as s.verify runs them).
    static func verifyOnly(_ s: DatabasesScenario, _ config: HearthConfig) async -> StepRunner.Outcome {
        await testRunner().run(
            VerifyStep.make(
                config, server: s.server, migrations: TestFiles.repositoryRoot + "/Migrations",
                clientDirectory: s.clientDirectory))
    }

    /// The tenant's tools: `public.planted_log` (who ran a planted function, in which kind of
    /// backend, with which statement_timeout), and `public.planted(bigint)`, IMMUTABLE (so that
    /// an index may call it), which logs its call, sleeps `sleep` seconds and returns true.
    static func plantTools(_ db: PGConnection, sleep: Double) throws {
        try db.execute(
            """
            CREATE TABLE public.planted_log (who text, backend text, timeout text, pid int);
            CREATE FUNCTION public.planted_log_it() RETURNS void LANGUAGE plpgsql AS $f$
            BEGIN
                INSERT INTO public.planted_log SELECT current_user, a.backend_type, pg_catalog.current_setting('statement_timeout'), pg_catalog.pg_backend_pid()
                FROM pg_catalog.pg_stat_activity a WHERE a.pid = pg_catalog.pg_backend_pid();
            END $f$;
            CREATE FUNCTION public.planted(bigint) RETURNS boolean IMMUTABLE LANGUAGE plpgsql AS $f$
            BEGIN PERFORM public.planted_log_it(); PERFORM pg_catalog.pg_sleep(\(sleep)); RETURN true; END $f$;
            CREATE FUNCTION public.lookalike_binary_quantize(public.vector) RETURNS bit IMMUTABLE LANGUAGE plpgsql AS $f$
            BEGIN PERFORM public.planted_log_it(); PERFORM pg_catalog.pg_sleep(\(sleep)); RETURN public.binary_quantize($1); END $f$;
            ALTER TABLE public.memory_shards SET (autovacuum_enabled = off)
            """)
    }

    /// The planted functions' calls from client sessions other than the tenant's own `pid`.
    static func plantedRuns(_ s: DatabasesScenario, except pid: String) throws -> [String] {
        try s.admin("logos_db").query(
            "SELECT who || ' (' || backend || ', statement_timeout ' || timeout || ')' FROM public.planted_log WHERE pid <> $1::int AND backend = 'client backend'",
            [pid]
        ).rows.map { $0[0] ?? "" }
    }

    // MARK: - Finding 1: look-alike indexes pass the storage assertion and verify; the HNSW upkeep then runs their code, with no statement timeout

    @Test(
        "a look-alike of the suite's vector index (binary: an HNSW index on a planted lookalike_binary_quantize(embedding)::bit(N); vector and halfvec: the HNSW index made partial on a planted predicate) is refused by the storage assertion and verify, and nothing of it runs in the suite's sessions, nor for longer than the lock timeout",
        arguments: [
            ("binary: expression", "PGVECTOR_STORAGE=binary"),
            ("vector: predicate", "PGVECTOR_STORAGE=vector"),
            ("halfvec: predicate", "PGVECTOR_STORAGE=halfvec"),
        ])
    func lookalikeIndex(kind: String, key: String) async throws {
        let dims = 16
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config(
            "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=\(dims)\nPGVECTOR_INDEX=hnsw\nPG_ANALYZE_FRACTION=off\n" + key)
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        let pid = try #require(try logos.query("SELECT pg_backend_pid()::text").scalar)
        try Self.insert(logos, 800, dimensions: dims)
        try Self.plantTools(logos, sleep: 0.02)
        // The tenant replaces the suite's index by a look-alike of the same name, access method
        // and (the extension's) operator class.
        if config.vectorStorage == .binary {
            try logos.execute(
                """
                DROP INDEX public.\(EmbeddingStorage.binaryName);
                CREATE INDEX \(EmbeddingStorage.binaryName) ON public.memory_shards
                    USING hnsw ((public.lookalike_binary_quantize(embedding)::bit(\(dims))) public.bit_hamming_ops)
                """)
        } else {
            let opclass = config.vectorStorage == .halfvec ? "public.halfvec_cosine_ops" : "public.vector_cosine_ops"
            try logos.execute(
                """
                DROP INDEX public.\(VectorIndex.hnswName);
                CREATE INDEX \(VectorIndex.hnswName) ON public.memory_shards USING hnsw (embedding \(opclass)) WHERE public.planted(id)
                """)
        }
        // The upkeep is due: most rows deleted (what any AI may do with its memories).
        try logos.execute("DELETE FROM public.memory_shards WHERE id <= 500; TRUNCATE public.planted_log")
        _ = try logos.query("SELECT pg_catalog.pg_stat_force_next_flush()")
        _ = try logos.query("SELECT 1")
        #expect(try HnswUpkeep.read(logos).isDue)

        // The storage assertion's own reading: the look-alike is not what 0008 builds.
        let problems = EmbeddingStorage.problems(config, try EmbeddingStorage.inspect(logos))
        #expect(!problems.isEmpty, "\(kind): the look-alike index passes the storage check")
        // verify says so.
        let verified = await Self.verifyOnly(s, config)
        #expect(verified.status != 0, "\(kind): verify passes with the look-alike index")

        // The vector-index step refuses it, and never runs it: nothing planted runs in the
        // suite's sessions, and the step ends within its lock timeout (plus the logins).
        let t0 = Clock.nowMs()
        let step = await testRunner().run(s.vectorIndexStep(config, lockTimeout: "2s"))
        let ms = Clock.nowMs() - t0
        let runs = try Self.plantedRuns(s, except: pid)
        #expect(step.status != 0, "\(kind): the vector-index step accepted the look-alike index: \(step)")
        #expect(runs.isEmpty, "\(kind): the planted function ran \(runs.count) time(s) in the suite's session(s): \(Set(runs).sorted())")
        #expect(ms < 7_000, "\(kind): the vector-index step took \(Int(ms)) ms with lock timeout 2 s")
        print("attack \(kind): problems \(problems); verify status \(verified.status); step status \(step.status) in \(Int(ms)) ms; planted ran \(runs.count) time(s): \(Set(runs).sorted())")
    }

    // MARK: - Finding 2: memory_search returns fewer than k rows

    @Test(
        "memory_search(query, k) with k above hnsw.ef_search (or the binary index's candidates): at most that many rows (a known limit, documented), k rows with the session's hnsw.iterative_scan",
        arguments: [
            ("vector hnsw", "PGVECTOR_STORAGE=vector", 16, 100),
            ("halfvec hnsw", "PGVECTOR_STORAGE=halfvec", 16, 100),
            ("binary", "PGVECTOR_STORAGE=binary\nPGVECTOR_RERANK=25", 64, 150),
        ])
    func fewerThanK(kind: String, key: String, dims: Int, k: Int) async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let text = "EMBEDDING_DIM=\(dims)\nPGVECTOR_INDEX=hnsw\n" + key
        let config = try loadConfig(text)
        let set = try MigrationFixtures.set(MigrationFixtures.directory, text)
        try db.migrator(set).upgrade()
        let owner = try db.connectAsOwner()
        try Self.insert(owner, 3000, dimensions: dims)
        try owner.execute("ANALYZE public.memory_shards")
        // The database's setting, as the vector-index step makes it.
        let efSearch = try #require(VectorIndex.wantedSetting(config, indexLists: nil)).value
        try owner.execute("SET hnsw.ef_search = \(efSearch)")
        func rows() throws -> String? {
            try owner.query(
                "SELECT count(*)::text FROM public.memory_search((SELECT embedding::public.vector FROM public.memory_shards WHERE id = 7), $1)",
                [String(k)]
            ).scalar
        }
        let got = try rows()
        // Known and documented (docs/steps.md): memory_search sets none of pgvector's settings
        // (a SET clause naming hnsw.iterative_scan is refused to a restore as the owner, before
        // pgvector's library is loaded), so an HNSW index gives at most hnsw.ef_search rows.
        withKnownIssue("memory_search gives at most hnsw.ef_search rows (or the binary index's candidates)") {
            #expect(got == String(k), "\(kind): memory_search(query, \(k)) returned \(got ?? "?") row(s) of 3000 (hnsw.ef_search \(efSearch))")
        }
        // The documented way to k rows: the session's own iterative index scans.
        try owner.execute("SET hnsw.iterative_scan = relaxed_order")
        let iterative = try rows()
        #expect(iterative == String(k), "\(kind): with hnsw.iterative_scan, memory_search(query, \(k)) returned \(iterative ?? "?") row(s)")
        print("attack \(kind): memory_search(query, \(k)) returned \(got ?? "?") of 3000 rows at hnsw.ef_search \(efSearch), \(iterative ?? "?") with iterative scans")
    }

    // MARK: - Finding 3: a key change's mixed state that the named remedy never converges

    @Test("binary -> halfvec undone under the new value by mistake (no --set): no binary index is left beside the halfvec column (0008's down drops it whatever the value), and up converges at once")
    func remedyConverges() async throws {
        let dims = 16
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let binaryText = "EMBEDDING_DIM=\(dims)\nPGVECTOR_INDEX=hnsw\nPGVECTOR_STORAGE=binary"
        let halfvecText = "EMBEDDING_DIM=\(dims)\nPGVECTOR_INDEX=hnsw\nPGVECTOR_STORAGE=halfvec"
        let binarySet = try MigrationFixtures.set(MigrationFixtures.directory, binaryText)
        let halfvecSet = try MigrationFixtures.set(MigrationFixtures.directory, halfvecText)
        let halfvec = try loadConfig(halfvecText)
        try db.migrator(binarySet).upgrade()
        let owner = try db.connectAsOwner()
        try Self.insert(owner, 50, dimensions: dims)
        // The key changed to halfvec; 0008 undone without --set PGVECTOR_STORAGE=binary: it runs.
        try db.migrator(halfvecSet).downgrade(to: "0007")
        try db.migrator(halfvecSet).upgrade()
        // 0008's down drops the binary index whatever the value it runs under (the fix): the
        // mistake leaves no index of another kind, and up under the new value converges at once.
        let first = EmbeddingStorage.problems(halfvec, try EmbeddingStorage.inspect(owner))
        #expect(first.isEmpty, "a down under another value than the one applied, then up, leaves: \(first)")
        #expect(try owner.query("SELECT count(*) FROM public.memory_shards").scalar == "50")
    }

    @Test("PGVECTOR_STORAGE changed after 0008 ran: the migrations step's message names the storage remedy (down under the old value), not `hm-migrate stamp`, which would record the new kind without converting a row")
    func migrationsStepAdvice() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let base = "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_INDEX=hnsw\n"
        let vector = try s.config(base + "PGVECTOR_STORAGE=vector")
        #expect(try await s.run(vector).status == 0)
        #expect(try await s.verify(vector).status == 0)
        let halfvec = try s.config(base + "PGVECTOR_STORAGE=halfvec")
        let transcript = Transcript()
        let runner = StepRunner(console: Console(colour: false, transcript: transcript), log: nil, runID: "a", dryRun: false)
        let outcome = await runner.run(
            MigrationsStep.make(
                halfvec, directory: TestFiles.repositoryRoot + "/Migrations", socketDirectory: s.cluster.socketDirectory,
                clientDirectory: s.clientDirectory))
        #expect(outcome.status != 0)
        let text = transcript.text
        print("attack migrations-step advice: \(text.split(separator: "\n").filter { $0.contains("0008") })")
        #expect(!text.contains("hm-migrate stamp"), "the migrations step advises `hm-migrate stamp` after a PGVECTOR_STORAGE change")
        #expect(text.contains("PGVECTOR_STORAGE"), "the migrations step does not name PGVECTOR_STORAGE")
    }

    // MARK: - Held: attacks that failed

    @Test("held: vector -> halfvec -> binary -> vector with rows, each change as the remedy says (down under the old value, up under the new): every row kept, values within half precision, the catalog each time what the key wants")
    func keyChain() async throws {
        let dims = 24
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let base = "EMBEDDING_DIM=\(dims)\nPGVECTOR_INDEX=hnsw\nPGVECTOR_STORAGE="
        func set(_ kind: String) throws -> MigrationSet { try MigrationFixtures.set(MigrationFixtures.directory, base + kind) }
        try db.migrator(try set("vector")).upgrade()
        let owner = try db.connectAsOwner()
        try Self.insert(owner, 200, dimensions: dims)
        try owner.execute("INSERT INTO public.memory_shards (content) VALUES ('no embedding')")
        let before = try owner.query("SELECT id::text, embedding::text FROM public.memory_shards ORDER BY id").rows
        var previous = "vector"
        for kind in ["halfvec", "binary", "vector"] {
            try db.migrator(try set(previous)).downgrade(to: "0007")
            try db.migrator(try set(kind)).upgrade()
            let config = try loadConfig(base + kind)
            #expect(EmbeddingStorage.problems(config, try EmbeddingStorage.inspect(owner)) == [], "\(previous) -> \(kind)")
            #expect(try owner.query("SELECT count(*) FROM public.memory_shards").scalar == "201")
            previous = kind
        }
        let drift = try owner.query(
            """
            SELECT max(abs(a - b))::text, count(*)::text FROM (
                SELECT unnest(m.embedding::real[]) a, unnest(o.e::public.vector::real[]) b
                FROM public.memory_shards m JOIN (SELECT * FROM unnest($1::bigint[], $2::text[]) AS o(id, e)) o ON o.id = m.id
                WHERE m.embedding IS NOT NULL) s
            """, [PGArray.literal(before.map { $0[0] ?? "" }), PGArray.literal(before.map { $0[1] ?? "" })]
        ).first
        #expect(drift?[1] == String(200 * dims))
        #expect((Double(drift?[0] ?? "1") ?? 1) < 0.0005, "drift \(drift?[0] ?? "?")")
        #expect(try owner.query("SELECT count(*) FROM public.memory_shards WHERE embedding IS NULL").scalar == "1")
    }

    @Test("held: a dry run of the migrations and vector-index steps with 0008 pending (halfvec) converts nothing, creates no function")
    func dryRunChangesNothing() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let base = "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_INDEX=hnsw\n"
        let vector = try s.config(base)
        #expect(try await s.run(vector).status == 0)
        #expect(try await s.verify(vector).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        try Self.insert(logos, 100, dimensions: 8)
        // Back to 0007 (as the remedy would), then the key says halfvec: a dry run only.
        let set = try MigrationFixtures.set(MigrationFixtures.directory, "EMBEDDING_DIM=8\nPGVECTOR_INDEX=hnsw\nPGVECTOR_STORAGE=vector")
        for database in vector.databases {
            try Migrator(
                set: set, database: database, server: s.server,
                credentials: Credentials(vector, book: PasswordBook(vector, directory: s.clientDirectory)),
                expected: DatabaseSpec.owners(vector)[database]
            ).downgrade(to: "0007")
        }
        let halfvec = try s.config(base + "PGVECTOR_STORAGE=halfvec")
        let snapshot = "SELECT format_type(atttypid, atttypmod) || ' ' || (SELECT count(*) FROM pg_proc WHERE proname = 'memory_search') || ' ' || (SELECT string_agg(relname || ':' || relfilenode, ',' ORDER BY relname) FROM pg_class WHERE relname LIKE 'memory_shards%') FROM pg_attribute WHERE attrelid = 'public.memory_shards'::regclass AND attname = 'embedding'"
        let before = try logos.query(snapshot).scalar
        let dry = testRunner(dryRun: true)
        _ = await dry.run(
            MigrationsStep.make(
                halfvec, directory: TestFiles.repositoryRoot + "/Migrations", socketDirectory: s.cluster.socketDirectory,
                clientDirectory: s.clientDirectory))
        _ = await dry.run(s.vectorIndexStep(halfvec))
        #expect(try logos.query(snapshot).scalar == before)
        #expect(before?.hasPrefix("vector(8) 0 ") == true, "\(before ?? "?")")
    }

    @Test("held: kill -9 of the backend running the upkeep's REINDEX CONCURRENTLY (waiting behind a writer, its new copy made): the server recovers, one rerun of the vector-index step converges (the copy dropped, the index rebuilt, the table vacuumed), a second changes nothing, verify passes")
    func killedMidReindex() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config(
            "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=16\nPGVECTOR_STORAGE=binary\nPGVECTOR_INDEX=hnsw\nPG_ANALYZE_FRACTION=off")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        try logos.execute("ALTER TABLE public.memory_shards SET (autovacuum_enabled = off)")
        try Self.insert(logos, 2000, dimensions: 16)
        try logos.execute("DELETE FROM public.memory_shards WHERE id <= 1500")
        _ = try logos.query("SELECT pg_catalog.pg_stat_force_next_flush()")
        _ = try logos.query("SELECT 1")
        #expect(try HnswUpkeep.read(logos).isDue)
        let rowsBefore = try logos.query("SELECT count(*) FROM public.memory_shards").scalar
        // A writer keeps its transaction open: the rebuild waits for it once its copy exists.
        let holder = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        try holder.execute("BEGIN; INSERT INTO public.memory_shards (content) VALUES ('held')")
        let box = StepBox(s.vectorIndexStep(config, lockTimeout: "30s"))
        let first = Task(executorPreference: OwnThreadExecutor()) { await testRunner().run(box.step) }
        let admin = try s.admin("logos_db")
        var pid: String?
        // Up to 180 s: the step first converges both databases, slow on a loaded CI run. The
        // watch sleeps on its own thread (usleep): a Task.sleep could leave it unscheduled while
        // the step's blocking calls and other suites hold the cooperative pool, past the 30 s
        // the REINDEX waits before its lock timeout.
        for _ in 0..<1800 where pid == nil {
            usleep(100_000)
            pid = try admin.query(
                "SELECT pid::text FROM pg_stat_activity WHERE query LIKE 'REINDEX INDEX CONCURRENTLY%' AND wait_event_type = 'Lock'"
            ).scalar
        }
        let backend = try #require(pid.flatMap { pid_t($0) }, "the REINDEX never waited")
        #expect(try admin.query("SELECT count(*) FROM pg_class WHERE relname LIKE '%_ccnew%'").scalar == "1")
        #expect(Glibc.kill(backend, SIGKILL) == 0)
        let killed = await first.value
        #expect(killed.status != 0)
        // The postmaster restarts every backend (crash recovery): wait until it answers again.
        var back = false
        for _ in 0..<150 where !back {
            try await Task.sleep(for: .milliseconds(200))
            back = (try? s.cluster.connect(database: "logos_db").query("SELECT 1").scalar) == "1"
        }
        #expect(back)
        let owner = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        let left = try HnswUpkeep.read(owner)
        print("attack kill -9 mid-REINDEX: leftovers \(left.leftovers), due \(left.isDue)")
        let rerun = await testRunner().run(s.vectorIndexStep(config))
        #expect(rerun.status == 0 && rerun.changed >= 1, "\(rerun)")
        let after = try HnswUpkeep.read(owner)
        #expect(after.leftovers.isEmpty && !after.isDue, "\(after)")
        #expect(try s.cluster.connect(database: "logos_db").query("SELECT count(*) FROM pg_index WHERE NOT indisvalid").scalar == "0")
        #expect(try owner.query("SELECT count(*) FROM public.memory_shards").scalar == rowsBefore)
        #expect(await testRunner().run(s.vectorIndexStep(config)).changed == 0)
        #expect(await Self.verifyOnly(s, config).status == 0)
    }

    // MARK: - Finding: verify runs the tenant's memory_search, whatever its body, with no statement timeout

    @Test("memory_search replaced by the owner with another body (SECURITY INVOKER, search_path pinned, as the check wants) that sleeps: the storage check and verify refuse it (not 0008's), and verify never runs it nor waits on it")
    func plantedSearchBody() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_INDEX=hnsw")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        let pid = try #require(try logos.query("SELECT pg_backend_pid()::text").scalar)
        try Self.plantTools(logos, sleep: 20)
        try logos.execute(
            """
            CREATE OR REPLACE FUNCTION public.memory_search(query public.vector, k integer)
                RETURNS TABLE (id bigint, content text, distance double precision)
                LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
            AS $b$ SELECT 42::bigint, 'planted'::text, 0::float8 WHERE public.planted(1) $b$
            """)
        let problems = EmbeddingStorage.problems(config, try EmbeddingStorage.inspect(logos))
        #expect(!problems.isEmpty, "a memory_search of another body passes the storage check")
        let t0 = Clock.nowMs()
        let verified = await Self.verifyOnly(s, config)
        let ms = Clock.nowMs() - t0
        let runs = try Self.plantedRuns(s, except: pid)
        #expect(verified.status != 0, "verify passes with a planted memory_search")
        #expect(runs.isEmpty, "verify ran the planted memory_search: \(runs)")
        #expect(ms < 15_000, "verify took \(Int(ms)) ms on a planted memory_search that sleeps 20 s")
        print("attack planted memory_search: problems \(problems); verify status \(verified.status) in \(Int(ms)) ms; planted ran: \(runs)")
    }

    @Test("the HNSW upkeep's VACUUM (ANALYZE) on a table whose owner planted expression statistics (CREATE STATISTICS on a slow function of its own): the step still ends within its lock timeout (the upkeep lifts statement_timeout to 0)")
    func upkeepAnalyzeBounded() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config(
            "AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_INDEX=hnsw\nPG_ANALYZE_FRACTION=off")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let logos = try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(Self.password))
        let pid = try #require(try logos.query("SELECT pg_backend_pid()::text").scalar)
        try Self.insert(logos, 800, dimensions: 8)
        try Self.plantTools(logos, sleep: 0.02)
        // The index is the suite's own (the storage check passes); only statistics are planted.
        try logos.execute(
            """
            CREATE STATISTICS public.planted_stats ON (public.planted(id)) FROM public.memory_shards;
            DELETE FROM public.memory_shards WHERE id <= 500; TRUNCATE public.planted_log
            """)
        _ = try logos.query("SELECT pg_catalog.pg_stat_force_next_flush()")
        _ = try logos.query("SELECT 1")
        #expect(try HnswUpkeep.read(logos).isDue)
        #expect(EmbeddingStorage.problems(config, try EmbeddingStorage.inspect(logos)) == [])
        let t0 = Clock.nowMs()
        let step = await testRunner().run(s.vectorIndexStep(config, lockTimeout: "2s"))
        let ms = Clock.nowMs() - t0
        let runs = try Self.plantedRuns(s, except: pid)
        #expect(ms < 7_000, "the vector-index step took \(Int(ms)) ms with lock timeout 2 s (planted code ran \(runs.count) time(s): \(Set(runs).sorted()))")
        print("attack planted statistics: step status \(step.status) in \(Int(ms)) ms; planted ran \(runs.count) time(s): \(Set(runs).sorted())")
    }

    @Test("held: kill -9 of the owner's backend in the middle of 0008's conversion to halfvec (its index dropped, the rewrite under way): after crash recovery the database is at 0007 with every row and its vector index; one rerun converts")
    func killedMid0008() async throws {
        let cluster = try await TestCluster.start()
        defer { cluster.stop() }
        let db = try ScratchDatabase.make(cluster)
        let dims = 128
        let text = "EMBEDDING_DIM=\(dims)\nPGVECTOR_STORAGE=halfvec\nPGVECTOR_IVFFLAT_LISTS=10"
        let set = try MigrationFixtures.set(MigrationFixtures.directory, text)
        try db.migrator(set).upgrade(to: "0001")
        let owner = try db.connectAsOwner()
        try Self.insert(owner, 60_000, dimensions: dims)
        try db.migrator(set).upgrade(to: "0007")
        let before = try owner.query("SELECT count(*)::text || ' ' || md5(string_agg(embedding::text, ',' ORDER BY id)) FROM public.memory_shards").scalar
        let migration = MigratorBox(try db.migrator(set))
        let run = Task(executorPreference: OwnThreadExecutor()) { () -> String? in
            do { try migration.migrator.upgrade(); return nil } catch { return "\(error)" }
        }
        let admin = try db.connect()
        var pid: String?
        for _ in 0..<600 where pid == nil {
            usleep(20_000)  // (on this thread: see killedMidReindex)
            pid = try admin.query(
                "SELECT pid::text FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND query LIKE 'ALTER TABLE memory_shards ALTER COLUMN embedding TYPE%'"
            ).scalar
        }
        let backend = try #require(pid.flatMap { pid_t($0) }, "the conversion was never seen running")
        #expect(Glibc.kill(backend, SIGKILL) == 0)
        let error = await run.value
        #expect(error != nil, "the migration survived the kill")
        var back = false
        for _ in 0..<150 where !back {
            try await Task.sleep(for: .milliseconds(200))
            back = (try? db.connect().query("SELECT 1").scalar) == "1"
        }
        #expect(back)
        let fresh = try db.connectAsOwner()
        #expect(try db.migrator(set).currentRevision() == "0007")
        #expect(try fresh.query("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'public.memory_shards'::regclass AND attname = 'embedding'").scalar == "vector(\(dims))")
        #expect(try fresh.query("SELECT count(*) FROM pg_indexes WHERE indexname = $1", [VectorIndex.ivfflatName]).scalar == "1")
        #expect(try fresh.query("SELECT count(*)::text || ' ' || md5(string_agg(embedding::text, ',' ORDER BY id)) FROM public.memory_shards").scalar == before)
        try db.migrator(set).upgrade()
        #expect(try db.migrator(set).status().converged)
        #expect(EmbeddingStorage.problems(try loadConfig(text), try EmbeddingStorage.inspect(fresh)) == [])
        #expect(try fresh.query("SELECT count(*) FROM public.memory_shards").scalar == "60000")
        print("attack kill -9 mid-0008: the migration ended with: \(error ?? "-")")
    }

    @Test("a table of the expected name but another shape: memory_shards.embedding made dimensionless (public.vector, no typmod) by its owner on a binary host, rows of another width inserted: the storage check names the dimensions")
    func dimensionlessColumn() async throws {
        let cluster = try await TestCluster.shared()
        let db = try ScratchDatabase.make(cluster)
        defer { db.drop() }
        let text = "EMBEDDING_DIM=16\nPGVECTOR_INDEX=hnsw\nPGVECTOR_STORAGE=binary"
        try db.migrator(try MigrationFixtures.set(MigrationFixtures.directory, text)).upgrade()
        let owner = try db.connectAsOwner()
        try Self.insert(owner, 20, dimensions: 16)
        try owner.execute("ALTER TABLE public.memory_shards ALTER COLUMN embedding TYPE public.vector")
        try Self.insert(owner, 5, dimensions: 3)
        let problems = EmbeddingStorage.problems(try loadConfig(text), try EmbeddingStorage.inspect(owner))
        #expect(!problems.isEmpty, "a dimensionless column holding 3-wide vectors passes as EMBEDDING_DIM=16")
        // What it does to the seed's search: memory_search fails on the rows of another width.
        expectFailure(.database) {
            try owner.query("SELECT count(*) FROM public.memory_search(pg_catalog.array_fill(1::real, ARRAY[16])::public.vector, 30)")
        }
    }

    @Test("the shared database's owner (the service account, a tenant) replaces hearthminds_db's memory_search with a trojan of the same attributes (SECURITY INVOKER, search_path pinned): the storage check and verify name it, since an AI calling it runs the service account's code with the AI's rights (here: the AI's own password changed)")
    func sharedDatabaseTrojan() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let service = try s.server.peerLogin("hearthminds_db", account: try #require(SystemAccount.lookup(s.serviceUser)))
        try service.execute(
            """
            CREATE FUNCTION public.trojan() RETURNS boolean LANGUAGE plpgsql AS $f$
            BEGIN
                EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', current_user, 'known-to-the-service');
                RETURN true;
            END $f$;
            CREATE OR REPLACE FUNCTION public.memory_search(query public.vector, k integer)
                RETURNS TABLE (id bigint, content text, distance double precision)
                LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = pg_catalog, pg_temp
            AS $b$
                SELECT public.trojan();
                SELECT s.id, s.content, s.embedding OPERATOR(public.<=>) $1 FROM public.memory_shards s
                WHERE s.embedding IS NOT NULL ORDER BY 3 LIMIT $2
            $b$
            """)
        let problems = EmbeddingStorage.problems(config, try EmbeddingStorage.inspect(service))
        // An AI searches the shared memories with the documented function.
        let logos = try s.server.login("hearthminds_db", user: "logos", password: Secret(Self.password))
        _ = try logos.query("SELECT count(*) FROM public.memory_search(pg_catalog.array_fill(1::real, ARRAY[8])::public.vector, 5)")
        let takenOver = (try? s.server.login("logos_db", user: "logos", password: Secret("known-to-the-service"))) != nil
        print("attack shared-database trojan: storage problems \(problems); the service account now logs in to logos_db as logos: \(takenOver)")
        #expect(!problems.isEmpty, "a trojan memory_search in hearthminds_db passes the storage check (the service account took logos over: \(takenOver))")
    }

    @Test("a halfvec host: the service account plants public.<=>(halfvec, vector) in hearthminds_db (an exact match for the seed's query with a vector parameter, which the docs say keeps working): the storage check and verify name the planted operator, since an AI's seed query there runs it with the AI's rights")
    func sharedDatabaseHalfvecOperator() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let config = try s.config("AI_NAMES=logos\nLOGOS_PASSWORD=\(Self.password)\nEMBEDDING_DIM=8\nPGVECTOR_STORAGE=halfvec")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)
        let service = try s.server.peerLogin("hearthminds_db", account: try #require(SystemAccount.lookup(s.serviceUser)))
        try service.execute(
            """
            INSERT INTO public.memory_shards (content, embedding) VALUES ('shared', '[1,2,3,4,5,6,7,8]');
            CREATE FUNCTION public.trojan_distance(public.halfvec, public.vector) RETURNS float8 LANGUAGE plpgsql AS $f$
            BEGIN
                EXECUTE pg_catalog.format('ALTER ROLE %I PASSWORD %L', current_user, 'known-to-the-service');
                RETURN $1 OPERATOR(public.<=>) $2::public.halfvec;
            END $f$;
            CREATE OPERATOR public.<=> (LEFTARG = public.halfvec, RIGHTARG = public.vector, FUNCTION = public.trojan_distance)
            """)
        let problems = EmbeddingStorage.problems(config, try EmbeddingStorage.inspect(service))
        // An AI runs the seed's query in the shared database, its parameter a vector.
        let logos = try s.server.login("hearthminds_db", user: "logos", password: Secret(Self.password))
        _ = try logos.query(
            "SELECT content FROM memory_shards ORDER BY embedding <=> $1::vector LIMIT 5", ["[1,1,1,1,1,1,1,1]"])
        let takenOver = (try? s.server.login("logos_db", user: "logos", password: Secret("known-to-the-service"))) != nil
        print("attack shared-database halfvec operator: storage problems \(problems); the service account now logs in to logos_db as logos: \(takenOver)")
        #expect(!problems.isEmpty, "a planted public.<=>(halfvec, vector) in hearthminds_db passes the storage check (the service account took logos over: \(takenOver))")
    }
}

/// A step handed to a detached task (the test waits for it and touches nothing of it meanwhile).
private final class StepBox: @unchecked Sendable {
    let step: Step
    init(_ step: Step) { self.step = step }
}

/// A migrator handed to a detached task (the test waits for it and touches nothing of it meanwhile).
private final class MigratorBox: @unchecked Sendable {
    let migrator: Migrator
    init(_ migrator: Migrator) { self.migrator = migrator }
}
