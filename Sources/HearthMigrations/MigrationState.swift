import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Where a database's migration state lives.
///
/// - `alembic_version`: exactly as Alembic keeps it (one row, the current revision; no row is
///   `base`), so a database that Alembic stamped or upgraded goes on from where it stopped, and
///   Alembic could read ours.
/// - `hearthminds_migration_history`: ours, beside it: one row per revision applied (`up`),
///   undone (`down`) or recorded without running (`stamp`), with the SHA-256 of the rendered
///   files, when, and how long it took.
public enum MigrationState {
    public static let versionTable = "alembic_version"
    public static let historyTable = "hearthminds_migration_history"

    /// The advisory lock key (per database: PostgreSQL's advisory locks are scoped to the
    /// current database) that keeps two runners apart: "HMmig" in ASCII.
    public static let lockKey: Int64 = 0x484D_6D69_67

    /// A revision id's most characters (Alembic's `version_num varchar(32)`): a longer value in
    /// a tenant's state is not read.
    public static let revisionLength = 32
    /// The most rows of the history the suite reads (one per revision run); a tenant's table
    /// with more is not read.
    public static let historyRows = 100_000

    /// Alembic's own DDL for its table (version_num varchar(32), primary key alembic_version_pkc).
    public static let createVersionTable = """
        CREATE TABLE IF NOT EXISTS public.alembic_version (
            version_num varchar(32) NOT NULL,
            CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
        )
        """

    public static let createHistoryTable = """
        CREATE TABLE IF NOT EXISTS public.hearthminds_migration_history (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            revision varchar(32) NOT NULL,
            direction text NOT NULL CHECK (direction IN ('up', 'down', 'stamp')),
            checksum char(64),
            applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
            ms double precision NOT NULL DEFAULT 0
        )
        """
}

/// A database's migration state, as the verify step and `current` see it.
public struct MigrationStatus: Sendable, Equatable {
    public let database: String
    /// The revision in alembic_version; nil is `base` (no row, or no table).
    public let current: String?
    public let head: String?
    /// Applied revisions whose rendered files no longer match the checksum recorded when they
    /// were applied or stamped.
    public let changed: [String]
    /// Applied revisions with no recorded checksum (stamped by Alembic, or before our history).
    public let unrecorded: [String]

    public var atHead: Bool { current == head }
    /// At head, and no applied file changed since.
    public var converged: Bool { atHead && changed.isEmpty }
}

/// One row of hearthminds_migration_history.
public struct MigrationHistoryRow: Sendable, Equatable {
    public let revision: String
    public let direction: String
    public let checksum: String?
    public let appliedAt: String
    public let ms: Double
}
