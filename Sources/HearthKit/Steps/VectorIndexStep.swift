import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// `vector-index`: after `migrations`, per database, the vector index is good for search
/// (issue 14):
/// - the IVFFlat index of revision 0003 is trained on the rows it serves: rebuilt by
///   `REINDEX INDEX CONCURRENTLY` (outside a transaction, as the database's owner logged in
///   itself; searches and writes go on meanwhile) once memory_shards holds at least twice the
///   rows it was trained on, with lists from PGVECTOR_IVFFLAT_LISTS (auto: from the rows);
///   until it is trained, every run says so (pgvector's "created with little data" notice);
/// - `ivfflat.probes` (PGVECTOR_IVFFLAT_PROBES; auto: the square root of the index's lists,
///   rounded up), or `hnsw.ef_search` with PGVECTOR_INDEX=hnsw, is the database's setting
///   (`ALTER DATABASE ... SET`, by the superuser from the `postgres` database): a value the
///   owner set is put back.
/// - (issue 24) first, an assertion that memory_shards.embedding, its index and memory_search are
///   of the kind PGVECTOR_STORAGE says (revision 0008; EmbeddingStorage); with HNSW, pgvector's
///   upkeep: many dead rows, the index rebuilt (REINDEX CONCURRENTLY), then VACUUM (HnswUpkeep);
///   planner statistics fresh (TableStatistics).
/// Why a step of its own after `migrations`: the index exists only once revision 0003 ran, and
/// the probes follow the lists the training has just chosen, so both belong after the schema
/// is at head and together.
public enum VectorIndexStep {
    public static let name = StepName.vectorIndex

    public static func make(
        _ config: HearthConfig, server: PGServer? = nil, clientDirectory: String = ClientFiles.defaultDirectory,
        console: Console = Console(), lockTimeout: String = PGServer.lockTimeout
    ) -> Step {
        make(StepContext(config, server: server, clientDirectory: clientDirectory, console: console), lockTimeout: lockTimeout)
    }

    public static func make(_ context: StepContext, lockTimeout: String = PGServer.lockTimeout) -> Step {
        let (config, server, connections, console) = (context.config, context.server, context.connections, context.console)
        let owners = OwnerSessions(
            server, context.credentials,
            expected: DatabaseSpec.owners(config), work: .maintenance, lockTimeout: lockTimeout)
        var actions: [Action] = []
        for database in config.databases {
            actions.append(storageAction(config, database: database, owners: owners))
            if config.vectorIndex == .ivfflat && config.ivfflat {
                actions.append(trainingAction(config, database: database, owners: owners, console: console))
            }
            if config.vectorIndex == .hnsw {
                actions.append(hnswUpkeepAction(config, database: database, owners: owners, console: console))
            }
            if let action = settingAction(config, database: database, owners: owners, connections: connections) {
                actions.append(action)
            }
            if let fraction = config.analyzeFraction {
                actions.append(statisticsAction(database: database, fraction: fraction, owners: owners, console: console))
            }
        }
        return Step(name, actions)
    }

    static func trainingAction(_ config: HearthConfig, database: String, owners: OwnerSessions, console: Console)
        -> Action
    {
        let index = VectorIndex.ivfflatName
        func found(_ db: PGConnection) throws -> VectorIndex.Found {
            guard let found = try VectorIndex.findIvfflat(db, opclass: EmbeddingStorage.ivfflatOpclass(config)) else {
                // Not a hostWrong failure: in a dry run, before the migrations step has run, it is what
                // the next run will make (pending); in a run it is a false result.
                throw Failure(
                    "\(database): there is no index public.\(index) (revision 0003 builds it): is the database at the "
                        + "head revision (`hm-migrate current --database \(database)`)?", needs: MigrationsStep.name)
            }
            guard found.problems.isEmpty else {
                throw Failure.hostWrong(
                    "\(database): public.\(index) is not the index the suite builds: "
                        + "\(found.problems.joined(separator: "; ")); it is not rebuilt. Put it back as "
                        + (config.vectorStorage == .halfvec
                            ? "Migrations/0008_vector_storage.up.sql builds it" : "Migrations/0003_ivfflat_index.up.sql builds it")
                        + " (DROP INDEX, then its CREATE INDEX)")
            }
            return found
        }
        let lists = config.ivfflatLists.map { "lists \($0)" } ?? "lists from the rows (auto)"
        return Action(
            "database \(database): IVFFlat index trained on the rows it serves (\(lists); retrained when memory_shards "
                + "has twice the rows)",
            check: {
                try owners.with(database) { db, _ in
                    let index = try found(db)
                    if !index.leftovers.isEmpty || !index.valid { return false }
                    if let wanted = config.ivfflatLists, index.lists != wanted { return false }
                    let at = VectorIndex.retrainAt(trainedOn: index.trainedOn, configuredLists: config.ivfflatLists)
                    if try VectorIndex.hasRows(db, atLeast: at) { return false }
                    if (index.trainedOn ?? 0) < index.lists {
                        let built = index.trainedOn.map { "was trained on \($0) row(s)" } ?? "was built by a revision, not trained"
                        console.err(
                            "  note: \(database): public.\(VectorIndex.ivfflatName) (lists \(index.lists)) \(built): "
                                + "pgvector's NOTICE \"ivfflat index created with little data — This will cause low "
                                + "recall\" holds; it is trained (REINDEX CONCURRENTLY) once memory_shards holds \(at) "
                                + "row(s) with an embedding: load the data, then rerun ./install.sh")
                    }
                    return true
                }
            },
            apply: {
                try owners.with(database) { db, _ in
                    let current = try found(db)
                    let name = "public." + (try db.identifier(index))
                    for leftover in current.leftovers {
                        try db.execute("DROP INDEX CONCURRENTLY IF EXISTS public.\(try db.identifier(leftover))")
                    }
                    let rows = try VectorIndex.rowCount(db)
                    let lists = VectorIndex.lists(rows: rows, configured: config.ivfflatLists)
                    if current.lists != lists {
                        try db.execute("ALTER INDEX \(name) SET (lists = \(lists))")
                    }
                    let dimensions = try VectorIndex.dimensions(db, fallback: config.embeddingDim)
                    let memory = VectorIndex.trainingMemoryMB(rows: rows, lists: lists, dimensions: dimensions)
                    _ = db.takeNotices()
                    let t0 = Clock.nowMs()
                    // Its time is the data's (no tenant code runs in it: the index is a plain column
                    // of a plain table with pgvector's operator class); waits for other sessions are
                    // bounded by the session's lock_timeout.
                    try db.execute("SET maintenance_work_mem TO '\(memory)MB'; SET statement_timeout TO 0")
                    let restore = "RESET maintenance_work_mem; SET statement_timeout TO \(try db.literal(owners.lockTimeout))"
                    do {
                        try db.execute("REINDEX INDEX CONCURRENTLY \(name)")
                    } catch {
                        try? db.execute(restore)
                        throw error
                    }
                    try db.execute(restore)
                    for notice in db.takeNotices() { console.err("  note: \(database): REINDEX \(name): \(notice)") }
                    try db.execute(
                        "COMMENT ON INDEX \(name) IS \(try db.literal(VectorIndex.comment(rows: rows, lists: lists)))")
                    try db.execute("ANALYZE public.\(VectorIndex.table)")
                    console.err(
                        "  note: \(database): \(index) trained on \(rows) row(s), lists \(lists), in "
                            + "\(JSON.number(Clock.nowMs() - t0)) ms")
                }
            })
    }

    /// The column, its index and memory_search are of the kind PGVECTOR_STORAGE says (revision
    /// 0008): an assertion, since only a revision converts rows; a difference (the key changed
    /// after 0008 ran, an index dropped or replaced) names what to run (EmbeddingStorage.remedy).
    static func storageAction(_ config: HearthConfig, database: String, owners: OwnerSessions) -> Action {
        .assertion(
            "database \(database): memory_shards.embedding stored as \(config.vectorStorage.rawValue), its index and "
                + "memory_search as revision 0008 makes them"
        ) {
            try owners.with(database) { db, _ in try EmbeddingStorage.require(config, database: database, db) }
        }
    }

    /// pgvector's HNSW upkeep (HnswUpkeep): many dead rows in memory_shards, its HNSW indexes
    /// rebuilt, then the table vacuumed, as the owner.
    static func hnswUpkeepAction(_ config: HearthConfig, database: String, owners: OwnerSessions, console: Console) -> Action {
        Action(
            "database \(database): HNSW index rebuilt (REINDEX CONCURRENTLY) then VACUUM when memory_shards has more dead "
                + "rows than \(Int(HnswUpkeep.scaleFactor * 100))% of its rows + \(HnswUpkeep.threshold)",
            check: {
                try owners.with(database) { db, _ in !(try HnswUpkeep.read(db).isDue) }
            },
            apply: {
                try owners.with(database) { db, _ in
                    let state = try HnswUpkeep.read(db)
                    guard state.isDue else { return }
                    // Only the suite's own indexes are rebuilt without a statement timeout: one
                    // the owner made partial or on a function of its own is refused first.
                    _ = try EmbeddingStorage.require(config, database: database, db)
                    let t0 = Clock.nowMs()
                    try HnswUpkeep.run(db, state, restoreTimeout: owners.lockTimeout)
                    console.err(
                        "  note: \(database): \(state.deadRows) dead row(s) of \(state.liveRows): REINDEX INDEX CONCURRENTLY "
                            + "\(state.indexes.joined(separator: ", ")), then VACUUM memory_shards, in \(JSON.number(Clock.nowMs() - t0)) ms")
                }
            },
            verify: {
                try owners.with(database) { db, _ in
                    let after = try HnswUpkeep.read(db)
                    guard after.leftovers.isEmpty else {
                        throw Failure.hostWrong("\(database): invalid index copies left after REINDEX: \(after.leftovers.joined(separator: ", "))")
                    }
                    return true
                }
            })
    }

    /// The suite's tables analyzed when their statistics are missing or stale (TableStatistics),
    /// as the database's owner: after a big ingest, and after an index build of the migrations
    /// step (a table never analyzed). The IVFFlat training analyzes memory_shards itself.
    static func statisticsAction(database: String, fraction: Double, owners: OwnerSessions, console: Console)
        -> Action
    {
        let percent = (fraction * 1000).rounded() / 10
        return Action(
            "database \(database): planner statistics fresh (ANALYZE when more than \(percent)% of a table's rows, "
                + "+\(TableStatistics.threshold), changed since the last)",
            check: {
                try owners.with(database) { db, _ in try TableStatistics.stale(db, fraction: fraction).isEmpty }
            },
            apply: {
                try owners.with(database) { db, _ in
                    let stale = try TableStatistics.stale(db, fraction: fraction)
                    let t0 = Clock.nowMs()
                    try TableStatistics.analyze(db, stale, restoreTimeout: owners.lockTimeout)
                    for table in stale {
                        console.err("  note: \(database): ANALYZE public.\(table.name) (\(table.reason))")
                    }
                    if !stale.isEmpty {
                        console.err("  note: \(database): ANALYZE took \(JSON.number(Clock.nowMs() - t0)) ms")
                    }
                }
            },
            verify: {
                // (what the server counted as ANALYZEd: the statistics reset; other sessions may be
                // writing meanwhile, so only the tables this run analyzed are asked)
                try owners.with(database) { db, _ in
                    let stale = try TableStatistics.stale(db, fraction: fraction)
                    if let table = stale.first(where: { !$0.analyzed }) {
                        throw Failure.hostWrong("\(database): public.\(table.name) is still not analyzed after ANALYZE")
                    }
                    return true
                }
            })
    }

    /// The database's search setting: ivfflat.probes or hnsw.ef_search.
    static func settingAction(
        _ config: HearthConfig, database: String, owners: OwnerSessions, connections: AdminConnections
    ) -> Action? {
        guard let described = describeSetting(config) else { return nil }
        let wanted = { () throws -> (name: String, value: Int)? in
            try wantedSetting(config, database: database, owners: owners)
        }
        return Action(
            "database \(database): \(described)",
            check: {
                guard let wanted = try wanted() else { return true }
                return try VectorIndex.databaseSetting(wanted.name, database: database, connections.get())
                    == String(wanted.value)
            },
            apply: {
                guard let wanted = try wanted() else { return }
                try VectorIndex.setDatabaseSetting(wanted.name, wanted.value, database: database, connections.get())
            },
            preview: {
                guard let wanted = try wanted() else { return "" }
                return try VectorIndex.setDatabaseSettingPlan(wanted.name, wanted.value, database: database, connections.get())
                    .shown
            })
    }

    /// What the setting action is named after; nil when there is no vector index to search.
    static func describeSetting(_ config: HearthConfig) -> String? {
        switch config.vectorIndex {
        case .hnsw:
            if config.vectorStorage == .binary {
                return "hnsw.ef_search = \(EmbeddingStorage.binaryEfSearch(config)) for the database (at least 4 x "
                    + "PGVECTOR_RERANK \(config.rerank), for the binary index's candidates)"
            }
            return "hnsw.ef_search = \(config.hnswEfSearch) for the database"
        case .ivfflat:
            guard config.ivfflat else { return nil }
            return "ivfflat.probes = "
                + (config.ivfflatProbes.map(String.init) ?? "the square root of the index's lists, rounded up (auto)")
                + " for the database"
        }
    }

    /// The setting the database must have; with auto probes, from its IVFFlat index's lists
    /// (read from the catalog as the database's owner).
    static func wantedSetting(_ config: HearthConfig, database: String, owners: OwnerSessions) throws
        -> (name: String, value: Int)?
    {
        var lists: Int?
        if config.vectorIndex == .ivfflat && config.ivfflat && config.ivfflatProbes == nil {
            lists = try owners.with(database) { db, _ in
                try VectorIndex.findIvfflat(db, opclass: EmbeddingStorage.ivfflatOpclass(config))?.lists
            }
        }
        return VectorIndex.wantedSetting(config, indexLists: lists)
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<VectorIndexStep>).
extension VectorIndexStep: StepDefinition {
    public static let abstract = "train each database's IVFFlat index on its rows (when grown), set its probes"
    public static let discussion = """
        The install.sh step `vector-index`, after `migrations`. Per database: the IVFFlat index \
        on memory_shards.embedding is rebuilt (REINDEX INDEX CONCURRENTLY, as the database's \
        owner) once the table holds at least twice the rows it was trained on, with \
        PGVECTOR_IVFFLAT_LISTS lists (auto: rows / 1000 up to a million rows, sqrt(rows) beyond); \
        ivfflat.probes (PGVECTOR_IVFFLAT_PROBES; auto: the square root of the lists, rounded up), \
        or hnsw.ef_search with PGVECTOR_INDEX=hnsw, is set for the database; the suite's \
        tables whose rows changed beyond PG_ANALYZE_FRACTION (+50) since their last ANALYZE \
        are analyzed, as the owner.
        """
    public static var needs: [any StepDefinition.Type] { [MigrationsStep.self] }

    public static func build(_ context: StepContext, flags: NoStepFlags) throws -> Step {
        VectorIndexStep.make(context)
    }
}
