import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Statistics kept fresh (issue 24, the seed's "always ANALYZE after big ingests or index
/// builds"): the suite's tables of a database whose planner statistics are stale: more rows
/// changed since the last ANALYZE (every row, for a table never analyzed) than PG_ANALYZE_FRACTION
/// of them plus autovacuum's own threshold of 50, analyzed by the vector-index step as the
/// database's owner (OwnerSessions: search_path pinned; the owner's own index expressions run
/// as the owner, never as a superuser). Autovacuum does the same in time; this makes it so
/// right after a load, before the next searches are planned.
public enum TableStatistics {
    /// The tables of the revisions that hold data (memory_shards: the embeddings).
    public static let tables = ["memory_shards", "eng_patterns", "raw_conversations"]
    /// Modifications always tolerated (autovacuum_analyze_threshold's default).
    public static let threshold = 50

    public struct Table: Sendable, Equatable {
        public let name: String
        public let rows: Int
        public let modified: Int
        public let analyzed: Bool

        /// More rows changed than the threshold and the fraction of the rows, as autovacuum
        /// counts (a table never analyzed: every row it holds is a change; a few rows are no load).
        public func isStale(fraction: Double) -> Bool {
            let changed = analyzed ? modified : max(modified, rows)
            return Double(changed) > Double(threshold) + fraction * Double(rows)
        }

        public var reason: String {
            analyzed ? "\(modified) row(s) modified of \(rows) since its last ANALYZE" : "\(rows) row(s), never analyzed"
        }
    }

    /// The suite's tables in schema public (plain tables only), with their statistics, read from
    /// the catalog schema-qualified.
    public static func read(_ db: PGConnection) throws -> [Table] {
        let rows = try db.query(
            """
            SELECT c.relname::text,
                   greatest(c.reltuples::bigint, coalesce(s.n_live_tup, 0), 0)::text,
                   coalesce(s.n_mod_since_analyze, 0)::text,
                   (s.last_analyze IS NOT NULL OR s.last_autoanalyze IS NOT NULL)::text
            FROM pg_catalog.pg_class c
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
            WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname = ANY($1::text[])
            ORDER BY c.relname
            """, [PGArray.literal(tables)]
        ).rows
        return rows.map {
            Table(
                name: $0[0] ?? "", rows: Int($0[1] ?? "") ?? 0, modified: Int($0[2] ?? "") ?? 0,
                analyzed: $0[3] == "true")
        }
    }

    public static func stale(_ db: PGConnection, fraction: Double) throws -> [Table] {
        try read(db).filter { $0.isStale(fraction: fraction) }
    }

    /// ANALYZE each of `tables` (its time is the data's: no statement timeout for it; waits for
    /// locks stay bounded by the session's lock_timeout).
    public static func analyze(_ db: PGConnection, _ tables: [Table], restoreTimeout: String) throws {
        guard !tables.isEmpty else { return }
        try db.execute("SET statement_timeout TO 0")
        defer { try? db.execute("SET statement_timeout TO \((try? db.literal(restoreTimeout)) ?? "'0'")") }
        for table in tables {
            try db.execute("ANALYZE public.\(try db.identifier(table.name))")
        }
    }
}
