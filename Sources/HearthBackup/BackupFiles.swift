import HearthMonitoring
import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthClient
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The files the backup step writes: pgBackRest's configuration of the stanza (no secret in it:
/// pgBackRest logs in to the server by peer authentication as postgres) and the systemd units of
/// the schedule.
public struct BackupFiles: Sendable {
    /// The test restore's result beside the stanza's configuration (BackupTestRestore writes it;
    /// verify and the metrics read it): "<time> <result> <detail>".
    public static let testRestoreResultFileName = "last-test-restore"
    public let backup: BackupConfig
    public let tool: PgBackRest
    public let dataDirectory: String
    public let port: Int
    public let socketDirectory: String

    public init(_ backup: BackupConfig, dataDirectory: String, port: Int, socketDirectory: String = "/var/run/postgresql") {
        self.backup = backup
        self.tool = PgBackRest(backup)
        self.dataDirectory = dataDirectory
        self.port = port
        self.socketDirectory = socketDirectory
    }

    public static let configMode: UInt32 = 0o640
    public static let unitMode: UInt32 = 0o644
    public static let unitDirectory = "/etc/systemd/system"
    /// pgBackRest's lock files: the postgres account's own directory (pgBackRest's default,
    /// /tmp/pgbackrest, is a name any local account could take first).
    public static let lockPath = "/var/lib/postgresql/.pgbackrest-lock"

    /// pgbackrest.conf of the stanza: everything in the stanza's own section, so nothing of
    /// another configuration applies.
    public var config: String {
        """
        # Managed by HearthMinds bootstrap (hm-backup): every run rewrites this file. Set the
        # BACKUP_* keys in /etc/hearthminds/hearthminds.env instead of editing it here.
        # Run pgBackRest with it as the postgres account:
        #   sudo -u postgres pgbackrest --config-path=\(tool.configPath) --stanza=\(backup.stanza) info
        [\(backup.stanza)]
        pg1-path=\(dataDirectory)
        pg1-port=\(port)
        pg1-socket-path=\(socketDirectory)
        repo1-path=\(backup.repoPath)
        repo1-retention-full=\(backup.retentionFull)
        compress-type=\(backup.compression.rawValue)
        process-max=\(backup.processes)
        start-fast=y
        log-path=\(PgBackRest.logPath)
        lock-path=\(Self.lockPath)
        log-level-console=warn
        log-level-stderr=warn
        log-level-file=info

        """
    }

    /// The kinds of scheduled work: a unit pair (service, timer) each.
    public enum Job: String, CaseIterable, Sendable {
        case full, diff
        case testRestore = "test-restore"
    }

    /// The unit's name without its suffix: one per stanza (hosts sharing a repository each run their own).
    public func unitName(_ job: Job) -> String { "hearthminds-backup-\(job.rawValue)-\(backup.stanza)" }

    public func calendar(_ job: Job) -> String {
        switch job {
        case .full: backup.fullCalendar
        case .diff: backup.diffCalendar
        case .testRestore: backup.testRestoreCalendar
        }
    }

    /// The service of `job`: pgBackRest as postgres for the backups; for the test restore, this
    /// executable (`hmBackup`: its path) as root.
    public func service(_ job: Job, hmBackup: String) -> String {
        let exec: String
        let user: String
        switch job {
        case .full, .diff:
            // (pgBackRest as postgres; then, as root, the metrics: "-" so that a run holding the
            // lock at that moment does not fail the backup, "+" for root's rights)
            exec = (tool.baseArguments + ["--type=\(job.rawValue)", "backup"]).joined(separator: " ")
                + "\nExecStartPost=-+\(hmBackup) --write-metrics"
            user = "User=postgres\nGroup=postgres\n"
        case .testRestore:
            exec = "\(hmBackup) --test-restore"
            user = ""
        }
        return """
            # Managed by HearthMinds bootstrap (hm-backup).
            [Unit]
            Description=HearthMinds \(job == .testRestore ? "test restore of the newest backup" : "\(job.rawValue) backup") (stanza \(backup.stanza))
            After=postgresql.service

            [Service]
            Type=oneshot
            \(user)ExecStart=\(exec)
            Nice=10
            IOSchedulingClass=idle

            """
    }

    public func timer(_ job: Job) -> String {
        """
        # Managed by HearthMinds bootstrap (hm-backup).
        [Unit]
        Description=HearthMinds \(job.rawValue) backup schedule (stanza \(backup.stanza))

        [Timer]
        OnCalendar=\(calendar(job))
        Persistent=true
        RandomizedDelaySec=300

        [Install]
        WantedBy=timers.target

        """
    }
}
