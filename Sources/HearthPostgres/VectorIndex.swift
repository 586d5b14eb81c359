import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The vector index on `memory_shards.embedding` (revisions 0003 and 0007) and the rules that
/// keep it good for search (issue 14):
/// - an IVFFlat index is trained (built) on the rows it serves: it is rebuilt, `REINDEX INDEX
///   CONCURRENTLY` by the database's owner, once the table holds at least twice the rows it was
///   last trained on (recorded in the index's comment), so every rebuild at least doubles the
///   rows and all rebuilds together cost at most twice the last one;
/// - its lists are `PGVECTOR_IVFFLAT_LISTS`, or with `auto` pgvector's guidance from the rows
///   at training time: rows / 1000 up to a million rows, sqrt(rows) beyond;
/// - `ivfflat.probes` (or `hnsw.ef_search`) is set per database.
public enum VectorIndex {
    public static let table = "memory_shards"
    public static let column = "embedding"
    public static let ivfflatName = "memory_shards_embedding_ivfflat_idx"
    public static let hnswName = "memory_shards_embedding_hnsw_idx"
    /// The comment the vector-index step puts on an IVFFlat index it trained.
    public static let commentPrefix = "HearthMinds vector-index: trained on "

    // MARK: pgvector's guidance, as numbers

    /// pgvector's default lists: what an IVFFlat index that names none (`WITH (lists = ...)`)
    /// has, as this suite and the exporter's query read it; and the lists a revision file gets
    /// for `PGVECTOR_IVFFLAT_LISTS=auto` (the revisions' values), the seed's 100 too, so that a host
    /// made with 100 and moved to auto renders the same files (no checksum changes). The index
    /// a revision builds has these lists until the vector-index step trains it with lists from
    /// the rows (IvfflatTraining).
    public static let defaultLists = 100

    /// The widest vector a vector-typed IVFFlat or HNSW index takes (pgvector's limit).
    public static let maxDimensions = 2000

    /// Lists for `rows` rows: rows / 1000 up to a million rows, sqrt(rows) beyond; 1 to 32768.
    public static func autoLists(rows: Int) -> Int {
        let lists = rows <= 1_000_000 ? rows / 1000 : ceilSquareRoot(rows)
        return min(32768, max(1, lists))
    }

    /// Probes for an index of `lists` lists: the square root, rounded up.
    public static func autoProbes(lists: Int) -> Int {
        max(1, ceilSquareRoot(lists))
    }

    static func ceilSquareRoot(_ n: Int) -> Int {
        guard n > 0 else { return 0 }
        var r = Int(Double(n).squareRoot())
        while r * r < n { r += 1 }
        while r > 1 && (r - 1) * (r - 1) >= n { r -= 1 }
        return r
    }

    /// The rows (with an embedding) at which an index trained on `trainedOn` rows (nil: never
    /// trained by the step, e.g. built by revision 0003 on an empty table) is rebuilt: twice
    /// that, and at least the configured lists (pgvector needs a row per list to place its
    /// centers; with `auto`, one row).
    public static func retrainAt(trainedOn: Int?, configuredLists: Int?) -> Int {
        max(configuredLists ?? 1, 2 * (trainedOn ?? 0), 1)
    }

    /// The lists the index gets when it is trained on `rows` rows.
    public static func lists(rows: Int, configured: Int?) -> Int {
        configured ?? autoLists(rows: rows)
    }

    public static func comment(rows: Int, lists: Int) -> String {
        "\(commentPrefix)\(rows) rows with an embedding (lists \(lists))"
    }

    /// The rows a comment records; nil for no comment, or one the step did not write (a
    /// tenant's edit counts as never trained: the index is retrained once, and the comment
    /// written again).
    public static func trainedRows(comment: String?) -> Int? {
        guard let comment, comment.hasPrefix(commentPrefix) else { return nil }
        let digits = comment.dropFirst(commentPrefix.count).prefix(while: { $0.isASCIIDigitCharacter })
        guard !digits.isEmpty, digits.count <= 18, let rows = Int(digits) else { return nil }
        return rows
    }

    /// The memory pgvector needs to train `lists` lists of `dimensions` on `rows` rows (its
    /// sample is 50 rows per list, and it refuses to start when maintenance_work_mem is less:
    /// "memory required is N MB"), in MB, with room to spare: the maintenance_work_mem of a
    /// rebuild and of a revision's transaction (at least 64 MB, PostgreSQL's default).
    public static func trainingMemoryMB(rows: Int, lists: Int, dimensions: Int) -> Int {
        let samples = min(rows, 50 * lists)
        let bytes = (samples + 4 * lists) * (4 * dimensions + 16)
        return max(64, bytes / (1024 * 1024) * 3 / 2 + 64)
    }

    // MARK: the index as the catalog has it

    /// The IVFFlat index of revision 0003, as found.
    public struct Found: Sendable, Equatable {
        public let lists: Int
        public let comment: String?
        public let valid: Bool
        /// What makes it another index than the one the suite builds (empty: none).
        public let problems: [String]
        /// Invalid copies a failed `REINDEX CONCURRENTLY` left (`..._ccnew`, `..._ccold`).
        public let leftovers: [String]

        public var trainedOn: Int? { VectorIndex.trainedRows(comment: comment) }
    }

    /// The IVFFlat index in `db` (a connection to the database as its owner; schema-qualified
    /// catalog reads only, so a superuser connection may read it too); nil when there is none.
    /// `opclass`: the operator class it must have (halfvec_cosine_ops with PGVECTOR_STORAGE=halfvec).
    public static func findIvfflat(_ db: PGConnection, opclass: String = "vector_cosine_ops") throws -> Found? {
        guard let found = try db.query(
            """
            SELECT am.amname::text, pg_catalog.left(pg_catalog.array_to_string(c.reloptions, ','), 1024),
                   pg_catalog.left(pg_catalog.obj_description(c.oid, 'pg_class'), 1024), x.indisvalid,
                   t.relname::text = $2 AND tn.nspname::text = 'public', t.relkind::text,
                   x.indnatts, x.indexprs IS NULL AND x.indpred IS NULL,
                   (SELECT a.attname::text FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = x.indrelid AND a.attnum = x.indkey[0]),
                   (SELECT oc.opcname::text = $3 AND oc.opcnamespace = e.extnamespace
                    FROM pg_catalog.pg_opclass oc, pg_catalog.pg_extension e
                    WHERE oc.oid = x.indclass[0] AND e.extname = 'vector')
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_index x ON x.indexrelid = c.oid
            JOIN pg_catalog.pg_am am ON am.oid = c.relam
            JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
            JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
            WHERE n.nspname = 'public' AND c.relname = $1
            """, [ivfflatName, table, opclass]
        ).decodeFirst((String, String?, String?, Bool, Bool, String, Int, Bool, String?, Bool?).self)
        else { return nil }
        let (method, options, comment, valid, onTable, relkind, columns, plain, attribute, opclassOurs) = found
        var problems: [String] = []
        if method != "ivfflat" { problems.append("its access method is \(method), not ivfflat") }
        if !onTable { problems.append("it is not on public.\(table)") }
        if relkind != "r" { problems.append("its table is not a plain table (relkind \(relkind))") }
        if columns != 1 || !plain || attribute != column {
            problems.append("it is not on the column \(column) alone (no expression, no predicate)")
        }
        if opclassOurs != true { problems.append("its operator class is not the vector extension's \(opclass)") }
        var lists = defaultLists  // when the index names none
        for option in (options ?? "").split(separator: ",") where option.hasPrefix("lists=") {
            lists = Int(option.dropFirst(6)) ?? lists
        }
        let leftovers = try db.query(
            """
            SELECT c.relname::text FROM pg_catalog.pg_index x
            JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND NOT x.indisvalid
              AND pg_catalog.starts_with(c.relname::text, $1) AND c.relname::text <> $2
            ORDER BY 1
            """, [ivfflatName + "_cc", ivfflatName]
        ).decode(String.self)
        return Found(lists: lists, comment: comment, valid: valid, problems: problems, leftovers: leftovers)
    }

    /// True when the table holds at least `rows` rows with an embedding: counts at most that
    /// many (the cost is bounded by the threshold, not by the table).
    public static func hasRows(_ db: PGConnection, atLeast rows: Int) throws -> Bool {
        let count = try db.query(
            "SELECT pg_catalog.count(*) FROM (SELECT 1 FROM ONLY public.\(table) WHERE \(column) IS NOT NULL LIMIT $1::bigint) s",
            [String(rows)]).scalar
        return Int(count ?? "") ?? 0 >= rows
    }

    public static func rowCount(_ db: PGConnection) throws -> Int {
        Int(try db.query("SELECT pg_catalog.count(*) FROM ONLY public.\(table) WHERE \(column) IS NOT NULL").scalar ?? "")
            ?? 0
    }

    /// The embedding column's dimensions (its typmod), or `fallback`.
    package static func dimensions(_ db: PGConnection, fallback: Int) throws -> Int {
        let typmod = try db.query(
            """
            SELECT a.atttypmod FROM pg_catalog.pg_attribute a
            WHERE a.attrelid = pg_catalog.to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped
            """, ["public." + table, column]).scalar
        guard let typmod, let value = Int(typmod), value > 0 else { return fallback }
        return value
    }

    // MARK: per-database search settings

    /// The search setting the configuration wants for a database: (name, value), or nil when
    /// there is no vector index to search (PGVECTOR_ENABLE_IVFFLAT false and no HNSW).
    /// `indexLists`: the lists of the database's IVFFlat index (nil: none found).
    public static func wantedSetting(_ config: HearthConfig, indexLists: Int?) -> (name: String, value: Int)? {
        switch config.vectorIndex {
        case .hnsw:
            // binary: enough candidates for memory_search to re-rank (EmbeddingStorage).
            return ("hnsw.ef_search", config.vectorStorage == .binary ? EmbeddingStorage.binaryEfSearch(config) : config.hnswEfSearch)
        case .ivfflat:
            guard config.ivfflat else { return nil }
            let lists = indexLists ?? config.ivfflatLists ?? defaultLists
            return ("ivfflat.probes", config.ivfflatProbes ?? autoProbes(lists: lists))
        }
    }

    /// The database-level value of `name` (`ALTER DATABASE ... SET`), from the shared catalog
    /// (a superuser connection to any database), its first 1024 characters (the database's
    /// owner sets it).
    public static func databaseSetting(_ name: String, database: String, _ db: PGConnection) throws -> String? {
        let rows = try db.query(
            """
            SELECT pg_catalog.left(e, 1024) FROM pg_catalog.pg_db_role_setting s
            JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase, pg_catalog.unnest(s.setconfig) e
            WHERE d.datname = $1 AND s.setrole = 0 AND pg_catalog.starts_with(e, $2)
            LIMIT 1
            """, [database, name + "="]
        ).decode(String.self)
        return rows.first { $0.hasPrefix(name + "=") }.map { String($0.dropFirst(name.count + 1)) }
    }

    /// `ALTER DATABASE ... SET name = value` by the superuser (from the `postgres` database:
    /// nothing of the tenant runs). The value is a validated number.
    public static func setDatabaseSetting(_ name: String, _ value: Int, database: String, _ db: PGConnection) throws {
        try setDatabaseSettingPlan(name, value, database: database, db).run(db)
    }

    /// The statement of `setDatabaseSetting`: what apply runs and a dry run shows (SQLPlan).
    public static func setDatabaseSettingPlan(_ name: String, _ value: Int, database: String, _ db: PGConnection) throws
        -> SQLPlan
    {
        precondition(name == "ivfflat.probes" || name == "hnsw.ef_search")
        var plan = SQLPlan()
        plan.add("ALTER DATABASE \(try db.identifier(database)) SET \(name) = \(value)")
        return plan
    }
}
