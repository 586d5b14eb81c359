import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// HNSW upkeep (issue 24, pgvector's advice: "Vacuuming can take a while for HNSW indexes.
/// Speed it up by reindexing first": `REINDEX INDEX CONCURRENTLY`, then `VACUUM`): when
/// memory_shards holds many dead rows (deleted or updated: more than 20% of its live rows plus 50,
/// autovacuum's own default thresholds), the suite's HNSW indexes on it (0007's, 0008's halfvec
/// or binary one) are rebuilt, then the table vacuumed, by the vector-index step as the
/// database's owner (OwnerSessions: search_path pinned, names qualified; the owner's own index
/// expressions run as the owner, never as a superuser).
public enum HnswUpkeep {
    /// autovacuum_vacuum_scale_factor's and autovacuum_vacuum_threshold's defaults.
    public static let scaleFactor = 0.2
    public static let threshold = 50

    public struct State: Sendable, Equatable {
        public let deadRows: Int
        public let liveRows: Int
        /// The suite's valid HNSW indexes on public.memory_shards.
        public let indexes: [String]
        /// Invalid copies an interrupted `REINDEX CONCURRENTLY` left (`..._ccnew`, `..._ccold`).
        public let leftovers: [String]

        public var isDue: Bool {
            !leftovers.isEmpty
                || (!indexes.isEmpty && Double(deadRows) > Double(HnswUpkeep.threshold) + HnswUpkeep.scaleFactor * Double(liveRows))
        }
    }

    static let names = [VectorIndex.hnswName, EmbeddingStorage.binaryName]

    public static func read(_ db: PGConnection) throws -> State {
        let counts = try db.query(
            """
            SELECT coalesce(s.n_dead_tup, 0), coalesce(s.n_live_tup, 0)
            FROM pg_catalog.pg_stat_all_tables s WHERE s.relid = pg_catalog.to_regclass('public.memory_shards')
            """
        ).decodeFirst((Int, Int).self)
        let indexes = try db.query(
            """
            SELECT c.relname::text, x.indisvalid
            FROM pg_catalog.pg_index x
            JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_am am ON am.oid = c.relam
            WHERE n.nspname = 'public' AND x.indrelid = pg_catalog.to_regclass('public.memory_shards')
              AND am.amname = 'hnsw'
              AND (c.relname::text = ANY($1::text[])
                   OR (NOT x.indisvalid AND (pg_catalog.starts_with(c.relname::text, $2)
                                             OR pg_catalog.starts_with(c.relname::text, $3))))
            ORDER BY 1
            """, [PGArray.literal(names), names[0] + "_cc", names[1] + "_cc"]
        ).decode((String, Bool).self)
        return State(
            deadRows: counts?.0 ?? 0, liveRows: counts?.1 ?? 0,
            indexes: indexes.filter { $0.1 && names.contains($0.0) }.map(\.0),
            leftovers: indexes.filter { !names.contains($0.0) }.map(\.0))
    }

    /// The leftovers dropped, each index rebuilt (`REINDEX INDEX CONCURRENTLY`: searches and
    /// writes go on), then `VACUUM public.memory_shards`; their time is the data's (no statement
    /// timeout; waits for locks stay bounded by the session's lock_timeout). The caller has
    /// checked the indexes are the suite's own (EmbeddingStorage: no predicate, no function of the
    /// owner's), so that no code of the owner's runs without a bound; then `ANALYZE`, which runs
    /// the owner's expression statistics, under the session's statement timeout again.
    public static func run(_ db: PGConnection, _ state: State, restoreTimeout: String) throws {
        let restore = "SET statement_timeout TO \((try? db.literal(restoreTimeout)) ?? "'0'")"
        try db.execute("SET statement_timeout TO 0")
        do {
            for leftover in state.leftovers {
                try db.execute("DROP INDEX CONCURRENTLY IF EXISTS public.\(try db.identifier(leftover))")
            }
            for index in state.indexes {
                try db.execute("REINDEX INDEX CONCURRENTLY public.\(try db.identifier(index))")
            }
            try db.execute("VACUUM public.memory_shards")
        } catch {
            try? db.execute(restore)
            throw error
        }
        try db.execute(restore)
        try db.execute("ANALYZE public.memory_shards")
    }
}
