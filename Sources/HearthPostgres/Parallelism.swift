import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// How many workers side by side against the server: `cap` (Workers.defaultWidth: the cores)
/// bounded by the connections the server has free, `perWorker` each, a few kept for others.
public enum Parallelism {
    public static let keptFree = 5

    public static func width(cap: Int = Workers.defaultWidth, perWorker: Int, _ db: PGConnection) -> Int {
        guard cap > 1,
            let row = try? db.query(
                """
                SELECT pg_catalog.current_setting('max_connections')::int
                       - pg_catalog.current_setting('superuser_reserved_connections')::int
                       - (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend')::int
                """).scalar,
            let free = Int(row)
        else { return max(1, min(cap, 1)) }
        return max(1, min(cap, (free - keptFree) / max(1, perWorker)))
    }
}
