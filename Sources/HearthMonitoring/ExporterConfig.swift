import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The postgres exporter's configuration (Debian's prometheus-postgres-exporter 0.11.1), as the
/// monitoring step writes it: the custom queries (`--extend.query-path`), the connection string
/// (peer, as MONITORING_USER, with every session setting pinned), the systemd drop-in that runs
/// the package's unit as our account, and the HTTPS web configuration when one is configured.
/// Pure: rendered from the configuration, so every shape is unit-tested.
public struct ExporterConfig: Sendable {
    public static let directory = "/etc/hearthminds/monitoring"
    public static let queriesName = "postgres-exporter-queries.yaml"
    public static let webConfigName = "postgres-exporter-web.yaml"
    public static let unit = "prometheus-postgres-exporter.service"
    public static let dropInDirectory = "/etc/systemd/system/prometheus-postgres-exporter.service.d"
    public static let dropInName = "hearthminds.conf"
    public static let binary = "/usr/bin/prometheus-postgres-exporter"
    public static let packages = ["prometheus-postgres-exporter", "prometheus-node-exporter"]
    /// Our three tables (the Migrations/ head's): their rows, bytes and upkeep are metrics.
    public static let tables = ["memory_shards", "raw_conversations", "eng_patterns"]
    /// The top statements per role and database that become metrics.
    public static let topStatements = 10

    /// Every session of the exporter, over what a tenant sets for its database (a connection's
    /// own settings win over ALTER DATABASE ... SET): only pg_catalog searched, read-only, no
    /// statement longer than 5 s, no lock waited for longer than 1 s, no library loaded, no
    /// row-level security policy of a tenant's run (an error instead), no JIT.
    public static let sessionSettings: [(String, String)] = [
        ("search_path", "pg_catalog"), ("statement_timeout", "5000"), ("lock_timeout", "1000"),
        ("idle_in_transaction_session_timeout", "10000"), ("default_transaction_read_only", "on"),
        ("row_security", "off"), ("jit", "off"), ("application_name", "hearthminds-monitor"),
    ]

    public let config: HearthConfig

    public init(_ config: HearthConfig) {
        self.config = config
    }

    /// The databases the exporter reads: `postgres` (the server's statistics, pg_stat_statements)
    /// and ours.
    public var databases: [String] { ["postgres"] + config.databases }

    /// lib/pq's key=value connection string: the socket directory, the port, the role (peer:
    /// the account's own name, no password), and the pinned settings, which lib/pq sends to the
    /// server as the session's. The exporter connects to each of `databases` with it
    /// (--auto-discover-databases, --include-databases), changing dbname only.
    public var dataSourceName: String {
        var parts = [
            "host=\(PGTarget.debianSocketDirectory)", "port=\(config.port)", "user=\(config.monitoring.user)",
            "dbname=postgres", "sslmode=disable",
        ]
        parts += Self.sessionSettings.map { "\($0.0)=\($0.1)" }
        return parts.joined(separator: " ")
    }

    /// The exporter's arguments (the drop-in's ExecStart).
    public var arguments: [String] {
        var arguments = [
            "--web.listen-address=\(config.monitoring.listenAddress)",
            "--extend.query-path=\(Self.directory)/\(Self.queriesName)",
            "--auto-discover-databases",
            "--include-databases=\(databases.joined(separator: ","))",
        ]
        if config.monitoring.tls != nil { arguments.append("--web.config.file=\(Self.directory)/\(Self.webConfigName)") }
        return arguments
    }

    /// The systemd drop-in: the package's unit, run as MONITORING_USER (not the `prometheus`
    /// account the package gives it), its /etc/default file not read (ours is the whole
    /// configuration; the file stays the operator's), a few protections.
    public var dropIn: String {
        let user = config.monitoring.user
        return """
            # Managed by HearthMinds bootstrap (hm-monitoring): rewritten whole on every run.
            # The postgres exporter runs as \(user), which logs in to PostgreSQL by peer to the
            # role \(user) (pg_monitor, nothing else). See docs/monitoring.md.
            [Service]
            User=\(user)
            Group=\(user)
            EnvironmentFile=
            Environment="DATA_SOURCE_NAME=\(dataSourceName)"
            ExecStart=
            ExecStart=\(Self.binary) \(arguments.joined(separator: " "))
            NoNewPrivileges=yes
            ProtectHome=yes
            PrivateTmp=yes

            """
    }

    /// The exporter's web configuration: HTTPS with the configured pair; nil without one.
    public var webConfig: String? {
        guard let tls = config.monitoring.tls else { return nil }
        return """
            # Managed by HearthMinds bootstrap (hm-monitoring): POSTGRES_EXPORTER_TLS_CERT_FILE/KEY_FILE.
            tls_server_config:
              cert_file: \(tls.cert)
              key_file: \(tls.key)

            """
    }

    // MARK: the custom queries

    /// A query of the file: its SQL and its columns ((name, usage, description); usage LABEL,
    /// GAUGE or COUNTER). `master`: run on the `postgres` database only (the server's views);
    /// else on each database.
    public struct Query: Sendable {
        public let name: String
        public let master: Bool
        public let sql: String
        public let columns: [(String, String, String)]
    }

    public var queries: [Query] {
        let tableList = Self.tables.map { "'\($0)'" }.joined(separator: ", ")
        let owner = "pg_catalog.pg_get_userbyid(d.datdba)::text"
        let thisDatabase = "JOIN pg_catalog.pg_database d ON d.datname = pg_catalog.current_database()"
        let perDatabase = [("datname", "LABEL", "The database."), ("ai", "LABEL", "Its owner: the AI (or the service account, for the shared database).")]
        return [
            Query(
                name: "hearthminds_memory", master: false,
                sql: """
                    SELECT pg_catalog.current_database()::text AS datname, \(owner) AS ai, c.relname::text AS "table",
                           s.n_live_tup::float8 AS rows,
                           pg_catalog.pg_total_relation_size(c.oid)::float8 AS bytes,
                           s.n_dead_tup::float8 AS dead_rows,
                           s.n_mod_since_analyze::float8 AS rows_changed_since_analyze,
                           pg_catalog.date_part('epoch', GREATEST(s.last_vacuum, s.last_autovacuum))::float8 AS last_vacuum_seconds,
                           pg_catalog.date_part('epoch', GREATEST(s.last_analyze, s.last_autoanalyze))::float8 AS last_analyze_seconds
                    FROM pg_catalog.pg_class c
                    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                    JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
                    \(thisDatabase)
                    WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname IN (\(tableList))
                    """,
                columns: perDatabase + [
                    ("table", "LABEL", "The table (memory_shards, raw_conversations, eng_patterns)."),
                    ("rows", "GAUGE", "Live rows (the statistics' count: exact after inserts and deletes, an estimate after ANALYZE of a large table)."),
                    ("bytes", "GAUGE", "Bytes on disk: the table, its TOAST and its indexes."),
                    ("dead_rows", "GAUGE", "Dead rows not yet vacuumed."),
                    ("rows_changed_since_analyze", "GAUGE", "Rows inserted, updated or deleted since the last ANALYZE."),
                    ("last_vacuum_seconds", "GAUGE", "When the table was last vacuumed, by hand or by autovacuum (Unix time; NaN: never)."),
                    ("last_analyze_seconds", "GAUGE", "When the table was last analyzed, by hand or by autovacuum (Unix time; NaN: never)."),
                ]),
            Query(
                name: "hearthminds_vector_index", master: false,
                sql: """
                    SELECT pg_catalog.current_database()::text AS datname, \(owner) AS ai, i.relname::text AS index,
                           am.amname::text AS kind,
                           pg_catalog.pg_relation_size(i.oid)::float8 AS bytes,
                           CASE WHEN am.amname = 'ivfflat' THEN coalesce((SELECT pg_catalog.substring(o, '^lists=([0-9]{1,9})$')::float8
                               FROM pg_catalog.unnest(i.reloptions) o WHERE pg_catalog.starts_with(o, 'lists=') LIMIT 1), \(VectorIndex.defaultLists)) END AS lists,
                           CASE WHEN am.amname = 'hnsw' THEN coalesce((SELECT pg_catalog.substring(o, '^m=([0-9]{1,9})$')::float8
                               FROM pg_catalog.unnest(i.reloptions) o WHERE pg_catalog.starts_with(o, 'm=') LIMIT 1), 16) END AS hnsw_neighbors,
                           pg_catalog.substring(pg_catalog.left(pg_catalog.obj_description(i.oid, 'pg_class'), 1024),
                               '^\(VectorIndex.commentPrefix)([0-9]{1,18}) rows')::float8 AS trained_rows,
                           s.n_live_tup::float8 AS rows,
                           (SELECT pg_catalog.substring(e, '^ivfflat\\.probes=([0-9]{1,9})$')::float8
                            FROM pg_catalog.pg_db_role_setting r, pg_catalog.unnest(r.setconfig) e
                            WHERE r.setdatabase = d.oid AND r.setrole = 0 AND pg_catalog.starts_with(e, 'ivfflat.probes=') LIMIT 1) AS probes,
                           (SELECT pg_catalog.substring(e, '^hnsw\\.ef_search=([0-9]{1,9})$')::float8
                            FROM pg_catalog.pg_db_role_setting r, pg_catalog.unnest(r.setconfig) e
                            WHERE r.setdatabase = d.oid AND r.setrole = 0 AND pg_catalog.starts_with(e, 'hnsw.ef_search=') LIMIT 1) AS ef_search
                    FROM pg_catalog.pg_index x
                    JOIN pg_catalog.pg_class i ON i.oid = x.indexrelid
                    JOIN pg_catalog.pg_class t ON t.oid = x.indrelid
                    JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
                    JOIN pg_catalog.pg_am am ON am.oid = i.relam
                    JOIN pg_catalog.pg_stat_all_tables s ON s.relid = t.oid
                    \(thisDatabase)
                    WHERE n.nspname = 'public' AND t.relname = 'memory_shards' AND am.amname IN ('ivfflat', 'hnsw')
                    """,
                columns: perDatabase + [
                    ("index", "LABEL", "The vector index on memory_shards."),
                    ("kind", "LABEL", "Its access method: ivfflat or hnsw."),
                    ("bytes", "GAUGE", "Its size on disk."),
                    ("lists", "GAUGE", "IVFFlat lists (NaN for HNSW)."),
                    ("hnsw_neighbors", "GAUGE", "HNSW m, the neighbors per node (NaN for IVFFlat)."),
                    ("trained_rows", "GAUGE", "The rows the vector-index step last trained the IVFFlat index on (NaN: never trained by the step)."),
                    ("rows", "GAUGE", "The rows of memory_shards now (live rows)."),
                    ("probes", "GAUGE", "ivfflat.probes set for the database (NaN: none)."),
                    ("ef_search", "GAUGE", "hnsw.ef_search set for the database (NaN: none)."),
                ]),
            Query(
                name: "hearthminds_connections", master: true,
                sql: """
                    SELECT coalesce(a.datname::text, '') AS datname, coalesce(a.usename::text, '') AS role,
                           pg_catalog.count(*)::float8 AS clients
                    FROM pg_catalog.pg_stat_activity a
                    WHERE a.backend_type = 'client backend'
                    GROUP BY 1, 2
                    """,
                columns: [
                    ("datname", "LABEL", "The database."), ("role", "LABEL", "The role."),
                    ("clients", "GAUGE", "Client connections of the role to the database."),
                ]),
            Query(
                name: "hearthminds_statements", master: true,
                sql: """
                    SELECT q.datname, q.role, q.queryid, q.calls_total, q.exec_seconds_total, q.rows_total, q.mean_exec_seconds
                    FROM (SELECT d.datname::text AS datname, r.rolname::text AS role, s.queryid::text AS queryid,
                                 s.calls::float8 AS calls_total, (s.total_exec_time / 1000)::float8 AS exec_seconds_total,
                                 s.rows::float8 AS rows_total, (s.mean_exec_time / 1000)::float8 AS mean_exec_seconds,
                                 pg_catalog.row_number() OVER (PARTITION BY s.dbid, s.userid ORDER BY s.total_exec_time DESC) AS rank
                          FROM public.pg_stat_statements(false) s
                          JOIN pg_catalog.pg_database d ON d.oid = s.dbid
                          JOIN pg_catalog.pg_roles r ON r.oid = s.userid
                          WHERE s.toplevel AND s.queryid IS NOT NULL) q
                    WHERE q.rank <= \(Self.topStatements)
                    """,
                columns: [
                    ("datname", "LABEL", "The database."), ("role", "LABEL", "The role that ran the statement."),
                    ("queryid", "LABEL", "pg_stat_statements' query id (its text is not exported)."),
                    ("calls_total", "COUNTER", "Times the statement ran."),
                    ("exec_seconds_total", "COUNTER", "Time spent running it."),
                    ("rows_total", "COUNTER", "Rows it returned or changed."),
                    ("mean_exec_seconds", "GAUGE", "Its mean time per call."),
                ]),
        ]
    }

    /// The queries as the exporter's YAML (each query a literal block: nothing in it is
    /// interpreted by YAML).
    public var queriesFile: String {
        var out = """
            # Managed by HearthMinds bootstrap (hm-monitoring): rewritten whole on every run.
            # The custom queries of the postgres exporter (--extend.query-path); docs/monitoring.md.
            # Every name schema-qualified; the sessions run with search_path=pg_catalog, read-only,
            # statement_timeout 5 s and lock_timeout 1 s (the connection string's settings).

            """
        for query in queries {
            out += "\(query.name):\n"
            out += "  master: \(query.master)\n"
            out += "  query: |\n"
            for line in query.sql.split(separator: "\n", omittingEmptySubsequences: false) {
                out += "    \(line)\n"
            }
            out += "  metrics:\n"
            for (column, usage, description) in query.columns {
                out += "    - \(column):\n"
                out += "        usage: \"\(usage)\"\n"
                out += "        description: \"\(description.replacingQuotes)\"\n"
            }
        }
        return out
    }
}

extension String {
    fileprivate var replacingQuotes: String { String(map { $0 == "\"" ? "'" : $0 }) }
}
