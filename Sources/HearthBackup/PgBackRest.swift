import HearthMonitoring
import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthClient
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// How the suite runs pgBackRest: always as the postgres account (the repository, the WAL and
/// the data directory are that account's; root writes nothing there), always with the
/// configuration the backup step writes and nothing else of the host's (`--config-path`: its
/// pgbackrest.conf and conf.d/, never /etc/pgbackrest.conf), always with a deadline.
public struct PgBackRest: Sendable {
    public let stanza: String
    /// The directory of this stanza's configuration, root's and readable by the postgres group.
    public var configPath: String { Self.configRoot + "/" + stanza }
    public var configFile: String { configPath + "/" + Self.configFileName }

    /// Where the suite keeps every stanza's pgBackRest configuration: beside pgBackRest's own
    /// (/etc/pgbackrest, which pgBackRest reads only as pgbackrest.conf and conf.d/), not under
    /// /etc/hearthminds, which an operator may well keep 0700 (the archiver, as postgres, must
    /// reach the file).
    public static let configRoot = "/etc/pgbackrest/hearthminds"
    public static let configFileName = "pgbackrest.conf"
    public static let executable = "/usr/bin/pgbackrest"
    public static let package = "pgbackrest"
    /// pgBackRest's logs (Debian's package makes it, the postgres account's).
    public static let logPath = "/var/log/pgbackrest"

    public init(stanza: String) {
        self.stanza = stanza
    }

    public init(_ backup: BackupConfig) {
        self.init(stanza: backup.stanza)
    }

    /// The options every command of this stanza starts with.
    public var baseArguments: [String] { [Self.executable, "--config-path=\(configPath)", "--stanza=\(stanza)"] }

    /// The server's archive_command: `%p` is the WAL file's path (PostgreSQL fills it in).
    public var archiveCommand: String { (baseArguments + ["archive-push", "%p"]).joined(separator: " ") }

    /// `pgbackrest <options> <arguments>` as the postgres account; its output, or an error with
    /// its message. `seconds`: the deadline (a backup's is long).
    @discardableResult
    public func run(_ arguments: [String], seconds: Int) async throws -> String {
        let postgres = try ClusterTools.postgresAccount()
        let result = try await Command.run(baseArguments + arguments, asUser: postgres, timeout: seconds)
        guard result.succeeded else { throw Self.failure(result) }
        return result.stdout
    }

    /// pgBackRest's error, without its log prefix noise: "ERROR: [055]: ..." lines are kept.
    static func failure(_ result: CommandResult) -> Failure {
        let text = (result.stderr + "\n" + result.stdout).split(separator: "\n").filter {
            $0.contains("ERROR") || $0.contains("WARN") || $0.hasPrefix("HINT")
        }
        guard !text.isEmpty else { return Command.failure(result) }
        return Failure("`\(result.command)` exited \(result.status):\n" + text.suffix(10).joined(separator: "\n"))
    }

    /// `info --output=json`, decoded (by the server the caller connects to: PostgreSQL reads JSON).
    public func info(_ connection: PGConnection, seconds: Int = 120) async throws -> BackupInfo {
        let json = try await run(["--output=json", "info"], seconds: seconds)
        return try BackupInfo.decode(json, stanza: stanza, connection)
    }
}

/// What pgBackRest's `info` says of a stanza.
public struct BackupInfo: Sendable {
    public struct Backup: Sendable {
        public let label: String
        public let type: String
        /// Epoch seconds.
        public let start: Int
        public let stop: Int
        /// Bytes of the database (size) and in the repository (repository size).
        public let size: Int
        public let repositorySize: Int
        /// The WAL range the backup needs: a restore to its end needs through `walStop`.
        public let walStart: String
        public let walStop: String
    }

    /// pgBackRest's status: 0 ok, 1 missing stanza path, 2 no valid backups, 3 missing stanza
    /// data, ...; its message.
    public let statusCode: Int
    public let statusMessage: String
    /// The system identifiers the stanza was made for (the newest last).
    public let systemIDs: [String]
    /// Oldest first.
    public let backups: [Backup]
    public let cipher: String
    /// The WAL the archive holds (nil: none).
    public let archiveMax: String?

    public var newest: Backup? { backups.last }
    /// The stanza exists in the repository (with or without a backup).
    public var stanzaExists: Bool { statusCode == 0 || statusCode == 2 }

    /// Decodes `info --output=json` of `stanza`, with the server's JSON functions (no JSON
    /// parser of our own): the text goes in as a parameter, never into the statement.
    static func decode(_ json: String, stanza: String, _ connection: PGConnection) throws -> BackupInfo {
        guard json.utf8.count <= 16 << 20 else { throw Failure("pgbackrest info: its output is over 16 MiB") }
        let head = try connection.query(
            """
            SELECT (s->'status'->>'code'), (s->'status'->>'message'), coalesce(s->>'cipher', ''),
                   (SELECT pg_catalog.string_agg(d->>'system-id', ',' ORDER BY (d->>'id')::int)
                      FROM pg_catalog.json_array_elements(s->'db') d),
                   (SELECT pg_catalog.max(a->>'max') FROM pg_catalog.json_array_elements(s->'archive') a)
              FROM pg_catalog.json_array_elements($1::pg_catalog.json) s WHERE s->>'name' = $2
            """, [json, stanza]
        ).decodeFirst((Int?, String?, String, String?, String?).self)
        guard let (statusCode, statusMessage, cipher, systemIDs, archiveMax) = head else {
            throw Failure("pgbackrest info says nothing of stanza \(stanza)")
        }
        let backups = try connection.query(
            """
            SELECT b->>'label', b->>'type', b->'timestamp'->>'start', b->'timestamp'->>'stop',
                   coalesce(b->'info'->>'size', '0'), coalesce(b->'info'->'repository'->>'size', '0'),
                   coalesce(b->'archive'->>'start', ''), coalesce(b->'archive'->>'stop', '')
              FROM pg_catalog.json_array_elements($1::pg_catalog.json) s,
                   pg_catalog.json_array_elements(s->'backup') b
             WHERE s->>'name' = $2 AND coalesce(b->>'error', 'false') <> 'true'
             ORDER BY (b->'timestamp'->>'stop')::bigint, b->>'label'
            """, [json, stanza]
        ).decode((String, String, Int, Int, Int, Int, String, String).self).map {
            (label, type, start, stop, size, repositorySize, walStart, walStop) in
            Backup(
                label: label, type: type, start: start, stop: stop, size: size, repositorySize: repositorySize,
                walStart: walStart, walStop: walStop)
        }
        return BackupInfo(
            statusCode: statusCode ?? -1, statusMessage: statusMessage ?? "",
            systemIDs: (systemIDs ?? "").split(separator: ",").map(String.init), backups: backups, cipher: cipher,
            archiveMax: archiveMax)
    }

}

extension PgBackRest {
    /// Why archiving is not working (nil: it is): nothing archived yet, or a failure after the
    /// last success.
    package static func archiving(_ connection: PGConnection) throws -> String? {
        let archiver = try connection.query(
            """
            SELECT archived_count, coalesce(last_failed_wal, ''),
                   last_failed_time IS NOT NULL AND (last_archived_time IS NULL OR last_failed_time > last_archived_time)
              FROM pg_catalog.pg_stat_archiver
            """
        ).decodeFirst((Int, String, Bool).self)
        guard let (archived, failedWAL, failing) = archiver else { return "pg_stat_archiver is empty" }
        if failing { return "the last archive_command failed (WAL \(failedWAL)): see the server's log" }
        if archived == 0 { return "nothing archived yet" }
        return nil
    }
}
