import HearthSystem
/// Every configuration key the suite reads: the seed's (its sections 3 and 4) and ours.
/// The shipped `etc/hearthminds.env` documents the same keys with the same defaults (a unit
/// test holds the two together).
public struct ConfigKey: Sendable {
    public let name: String
    public let defaultValue: String
    public let secret: Bool
    public let help: String
}

public enum ConfigKeys {
    public static let all: [ConfigKey] = [
        // The seed, section 3.
        .init(name: "PG_VERSION", defaultValue: "15", secret: false, help: "PostgreSQL major version"),
        .init(name: "PG_CLUSTER_NAME", defaultValue: "main", secret: false, help: "cluster name (pg_createcluster)"),
        .init(name: "POSTGRES_HOST", defaultValue: "127.0.0.1", secret: false,
              help: "address the server listens on (an address of this host, or localhost)"),
        .init(name: "POSTGRES_PORT", defaultValue: "5432", secret: false, help: "server port"),
        .init(name: "HEARTHMINDS_SERVICE_USER", defaultValue: "hearthminds-service", secret: false,
              help: "system account that owns HEARTHMINDS_DB and logs in by peer authentication"),
        .init(name: "POSTGRES_ADMIN_USER", defaultValue: "postgres", secret: false, help: "the cluster's superuser"),
        .init(name: "POSTGRES_ADMIN_PASSWORD", defaultValue: "", secret: true,
              help: "password for POSTGRES_ADMIN_USER; empty keeps the admin peer-only"),
        .init(name: "HEARTHMINDS_DB", defaultValue: "hearthminds_db", secret: false, help: "the shared database"),
        .init(name: "HEARTHMINDS_USER", defaultValue: "hearthminds", secret: false, help: "the manager role (superuser)"),
        .init(name: "HEARTHMINDS_PASSWORD", defaultValue: "", secret: true,
              help: "manager password; empty: generated once and kept root-only in /etc/hearthminds/pgpass/"),
        .init(name: "AI_NAMES", defaultValue: #"["logos", "aletheia"]"#, secret: false,
              help: "AI names: [\"a\", \"b\"] or a,b"),
        .init(name: "AI_DB_SUFFIX", defaultValue: "_db", secret: false, help: "suffix of each AI's database name"),
        .init(name: "AI_DEFAULT_EXTENSIONS", defaultValue: #"["vector"]"#, secret: false,
              help: "extensions created in every database"),
        // The seed, section 4 (migrations).
        .init(name: "EMBEDDING_DIM", defaultValue: "1536", secret: false, help: "dimension of embedding columns"),
        .init(name: "PGVECTOR_ENABLE_IVFFLAT", defaultValue: "true", secret: false,
              help: "build the IVFFlat index on memory_shards.embedding"),
        .init(name: "PGVECTOR_IVFFLAT_LISTS", defaultValue: "100", secret: false,
              help: "IVFFlat lists: auto (from the rows when the index is trained) or 1-32768"),
        // Ours (issue 14): the vector index and its search settings.
        .init(name: "PGVECTOR_IVFFLAT_PROBES", defaultValue: "auto", secret: false,
              help: "ivfflat.probes of every database: auto (the square root of the index's lists, rounded up) or 1-32768"),
        .init(name: "PGVECTOR_INDEX", defaultValue: "ivfflat", secret: false,
              help: "the index on memory_shards.embedding: ivfflat or hnsw (revision 0007)"),
        .init(name: "PGVECTOR_HNSW_M", defaultValue: "16", secret: false, help: "HNSW m (2-100)"),
        .init(name: "PGVECTOR_HNSW_EF_CONSTRUCTION", defaultValue: "64", secret: false,
              help: "HNSW ef_construction (4-1000, at least 2 * m)"),
        .init(name: "PGVECTOR_HNSW_EF_SEARCH", defaultValue: "40", secret: false,
              help: "hnsw.ef_search of every database (1-1000)"),
        // Ours (issue 24): compressed memories (revision 0008).
        .init(name: "PGVECTOR_STORAGE", defaultValue: "vector", secret: false,
              help: "how memory_shards.embedding is stored and indexed: vector (full precision), halfvec (half the bytes, up to 4000 dimensions) or binary (an HNSW index on its binary quantization, re-ranked in full precision; needs PGVECTOR_INDEX=hnsw): revision 0008"),
        .init(name: "PGVECTOR_RERANK", defaultValue: "100", secret: false,
              help: "with PGVECTOR_STORAGE=binary: the candidates memory_search re-ranks in full precision (1-1000)"),
        // Ours.
        .init(name: "PG_ALLOWED_NETWORKS", defaultValue: "", secret: false,
              help: "networks (CIDR) allowed to log in with a password over TCP (hostssl), besides loopback"),
        .init(name: "PG_SSL_CERT_FILE", defaultValue: "", secret: false,
              help: "server certificate for TLS beyond loopback; empty: Debian's snakeoil certificate"),
        .init(name: "PG_SSL_KEY_FILE", defaultValue: "", secret: false,
              help: "its private key (readable by postgres); empty: Debian's snakeoil key"),
        .init(name: "HEARTHMINDS_SERVICE_HOME", defaultValue: "", secret: false,
              help: "home of the service user; empty means /var/lib/<HEARTHMINDS_SERVICE_USER>"),
        .init(name: "HEARTHMINDS_LOG", defaultValue: "/var/log/hearthminds/bootstrap.jsonl", secret: false,
              help: "JSON-lines log of every action"),
        .init(name: "PGVECTOR_INSTALL_METHOD", defaultValue: "auto", secret: false,
              help: "auto, apt, shipped, debian-source or tarball"),
        .init(name: "PGVECTOR_DEBIAN_SUITE", defaultValue: "trixie", secret: false,
              help: "Debian suite whose pgvector source package debian-source builds"),
        .init(name: "PGVECTOR_SOURCE", defaultValue: "", secret: false,
              help: "pgvector source tarball (path or URL) for the tarball method"),
        .init(name: "PGVECTOR_SHA256", defaultValue: "", secret: false, help: "SHA-256 that PGVECTOR_SOURCE must match"),
        // Ours (issue 21): every run bounded in time.
        .init(name: "STEP_TIMEOUT", defaultValue: "auto", secret: false,
              help: "seconds a step may take before it ends false (1-86400); auto: 1800 for postgres and pgvector (packages), 3600 for migrations and vector-index (data), 86400 for backup and hm-restore (the whole cluster copied), 300 for the others"),
        // Ours (issue 22): backups with pgBackRest (the backup step, hm-restore).
        .init(name: "BACKUP", defaultValue: "on", secret: false,
              help: "on: WAL archiving and scheduled backups with pgBackRest (the backup step); off: none (verify warns)"),
        .init(name: "BACKUP_STANZA", defaultValue: "hearthminds", secret: false,
              help: "pgBackRest stanza of this cluster (one per host in a shared repository)"),
        .init(name: "BACKUP_REPO_PATH", defaultValue: "/var/lib/pgbackrest", secret: false,
              help: "the repository: a directory of the postgres account's (0750), better on another disk"),
        .init(name: "BACKUP_LOSS_WINDOW", defaultValue: "60", secret: false,
              help: "archive_timeout in seconds (1-3600): the most committed work a lost host loses"),
        .init(name: "BACKUP_COMPRESS", defaultValue: "zst", secret: false, help: "zst, lz4, gz, bz2 or none"),
        .init(name: "BACKUP_PROCESS_MAX", defaultValue: "auto", secret: false,
              help: "pgBackRest processes (1-64); auto: half the cores, at least 1, at most 8"),
        .init(name: "BACKUP_RETENTION_FULL", defaultValue: "2", secret: false, help: "full backups kept (1-100)"),
        .init(name: "BACKUP_FULL_CALENDAR", defaultValue: "Sun *-*-* 01:30:00", secret: false,
              help: "when the full backup's systemd timer runs (OnCalendar=)"),
        .init(name: "BACKUP_DIFF_CALENDAR", defaultValue: "Mon..Sat *-*-* 01:30:00", secret: false,
              help: "when the differential backup's timer runs (OnCalendar=)"),
        .init(name: "BACKUP_TEST_RESTORE_CALENDAR", defaultValue: "Sun *-*-* 04:30:00", secret: false,
              help: "when hm-backup --test-restore's timer runs (OnCalendar=)"),
        .init(name: "BACKUP_MAX_AGE", defaultValue: "36", secret: false,
              help: "hours after which the newest backup is late (1-8760): verify is false, the step takes one"),
        .init(name: "BACKUP_SCRATCH_PORT", defaultValue: "auto", secret: false,
              help: "port of the throwaway cluster of a test restore or a one-AI restore; auto: a free one"),
        // Ours (issue 23): monitoring (the monitoring step, the textfile metrics of every run).
        .init(name: "MONITORING_USER", defaultValue: "hearthminds-monitor", secret: false,
              help: "system account and role of the postgres exporter: peer login, pg_monitor only, no shell, no password"),
        .init(name: "POSTGRES_EXPORTER_ADDRESS", defaultValue: "127.0.0.1:9187", secret: false,
              help: "address:port the postgres exporter listens on; beyond loopback only with POSTGRES_EXPORTER_TLS_CERT_FILE/KEY_FILE"),
        .init(name: "POSTGRES_EXPORTER_TLS_CERT_FILE", defaultValue: "", secret: false,
              help: "TLS certificate of the exporter's HTTPS listener (needed for an address beyond loopback)"),
        .init(name: "POSTGRES_EXPORTER_TLS_KEY_FILE", defaultValue: "", secret: false,
              help: "its private key (readable by MONITORING_USER)"),
        .init(name: "NODE_EXPORTER_TEXTFILE_DIR", defaultValue: "/var/lib/prometheus/node-exporter", secret: false,
              help: "node_exporter's textfile directory: each step's and each run's metrics (*.prom); empty: none written"),
    ] + tuning

    /// Ours (issue 24): the server sized to its machine (ServerTuning), each setting `auto` or a value.
    static let tuning: [ConfigKey] = [
        .init(name: "PG_TUNE", defaultValue: "true", secret: false,
              help: "size the server to the machine (false: PostgreSQL's defaults for the settings below)"),
        .init(name: "PG_TUNE_MEMORY", defaultValue: "auto", secret: false,
              help: "memory to size for: auto (MemTotal, capped by the cgroup's memory.max) or a size (8GB)"),
        .init(name: "PG_TUNE_CORES", defaultValue: "auto", secret: false,
              help: "cores to size for: auto (the CPUs allowed, capped by the cgroup's cpu.max) or 1-4096"),
        .init(name: "PG_ANALYZE_FRACTION", defaultValue: "0.1", secret: false,
              help: "vector-index ANALYZEs a table of the suite's with more rows changed since its last ANALYZE (all, if never) than this fraction (+50): 0.001-1 or off"),
    ] + ServerTuning.settings.map {
        .init(name: $0.key, defaultValue: "auto", secret: false, help: "\($0.name): auto (\($0.help)) or a value")
    }

    public static let byName: [String: ConfigKey] = Dictionary(uniqueKeysWithValues: all.map { ($0.name, $0) })

    /// The suffix of a per-AI password key (`LOGOS_PASSWORD`, `logos_password`).
    public static let passwordSuffix = "_PASSWORD"
}
