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
#if canImport(Glibc)
import Glibc
#endif

/// `backup`: the cluster's memories kept elsewhere, continuously, with pgBackRest: the package,
/// a repository that is the postgres account's and no one else's, the stanza's configuration
/// (root's, readable by the postgres group: no secret in it), the stanza, WAL archiving that
/// works (the postgres step sets archive_mode, archive_command and archive_timeout), a first full
/// backup, a newest backup younger than BACKUP_MAX_AGE, and the schedule's systemd timers.
/// BACKUP=off: nothing but a warning (verify warns too).
public enum BackupStep {
    public static let name = StepName.backup

    public static func make(_ config: HearthConfig) -> Step {
        guard let backup = config.backup else {
            return Step(name, [
                .assertion("BACKUP is off: no backups are taken (WARNING: a lost disk loses every memory)") { true }
            ])
        }
        let paths = ClusterPaths(config)
        let session = ClusterSession(paths)
        let tool = PgBackRest(backup)
        let files = BackupStep.files(config, backup)
        let info = Box<BackupInfo>()
        let taken = Box<String>()
        func currentInfo(fresh: Bool = false) async throws -> BackupInfo {
            if !fresh, let known = info.value { return known }
            let read = try await tool.info(session.get())
            info.value = read
            return read
        }

        return Step(name, [
            .assertion("cluster \(paths.id) runs with WAL archiving on (archive_mode, set by the postgres step)") {
                let mode = try session.get().query("SELECT pg_catalog.current_setting('archive_mode')").scalar
                guard mode == "on" || mode == "always" else {
                    throw Failure("archive_mode is \(mode ?? "unknown") on cluster \(paths.id): run hm-postgres first", needs: PostgresStep.name)
                }
                return true
            },
        ] + preparation(backup, files: files) + [
            Action(
                "stanza \(backup.stanza) exists in \(backup.repoPath), made for this cluster",
                check: {
                    let read = try await currentInfo(fresh: true)
                    guard read.stanzaExists else { return false }
                    try requireSameSystem(read, session.get(), backup)
                    return true
                },
                apply: { try await tool.run(["stanza-create"], seconds: 300) },
                verify: {
                    let read = try await currentInfo(fresh: true)
                    guard read.stanzaExists else { return false }
                    try requireSameSystem(read, session.get(), backup)
                    return true
                }),
            Action(
                "WAL archiving works (pg_stat_archiver: archived, no failure since)",
                check: { try PgBackRest.archiving(session.get()) == nil },
                apply: {
                    // pgbackrest check switches to a new WAL file and waits until it is archived.
                    try await tool.run(["check"], seconds: 300)
                },
                verify: {
                    for attempt in 0..<50 {
                        if attempt > 0 { usleep(100_000) }
                        if try PgBackRest.archiving(session.get()) == nil { return true }
                    }
                    throw Failure(try PgBackRest.archiving(session.get()) ?? "archiving does not report success")
                }),
            Action(
                "a full backup exists",
                check: { try await currentInfo().backups.contains { $0.type == "full" } },
                apply: {
                    let started = Clock.nowMs()
                    try await tool.run(["--type=full", "backup"], seconds: 86_400)
                    taken.value = "full backup in \(Int((Clock.nowMs() - started) / 1000)) s"
                    info.value = nil
                },
                verify: { try await currentInfo(fresh: true).backups.contains { $0.type == "full" } },
                note: { taken.value ?? "" }),
            Action(
                "the newest backup is younger than \(backup.maxAgeHours) h (BACKUP_MAX_AGE)",
                check: { try await age(currentInfo()).map { $0 < backup.maxAgeHours * 3600 } ?? false },
                apply: {
                    try await tool.run(["--type=diff", "backup"], seconds: 86_400)
                    info.value = nil
                },
                verify: { try await age(currentInfo(fresh: true)).map { $0 < backup.maxAgeHours * 3600 } ?? false },
                note: {
                    guard let newest = info.value?.newest else { return "" }
                    return "newest: \(newest.label) (\(newest.type)), \(Int(time(nil)) - newest.stop) s old"
                }),
        ] + BackupSchedule.actions(files: files) + [
            BackupMetrics.action(config, backup) { try await currentInfo() }
        ])
    }

    /// `hm-backup --write-metrics`: the backup metrics alone (after a backup a timer took).
    public static func metricsOnly(_ config: HearthConfig) throws -> Step {
        guard let backup = config.backup else { throw Failure.configuration(key: "BACKUP", "is off: there are no backup metrics") }
        let session = ClusterSession(ClusterPaths(config))
        let tool = PgBackRest(backup)
        return Step(name, [BackupMetrics.action(config, backup) { try await tool.info(session.get()) }])
    }

    /// What the stanza's configuration says of the cluster: its data directory, port and socket
    /// directory (the cluster need not run: a restore reads it too).
    static func files(_ config: HearthConfig, _ backup: BackupConfig) -> Once<BackupFiles> {
        let paths = ClusterPaths(config)
        return Once { () throws -> BackupFiles in
            guard let cluster = try DebianClusters.find(paths) else {
                throw Failure("there is no cluster \(paths.id)", needs: PostgresStep.name)
            }
            guard let data = cluster.dataDirectory else { throw Failure("cluster \(paths.id) has no data directory") }
            return BackupFiles(backup, dataDirectory: data, port: config.port, socketDirectory: PGTarget.debianSocketDirectory)
        }
    }

    /// pgBackRest, the repository, its log directory and the stanza's configuration: what a
    /// backup and a restore both need.
    static func preparation(_ backup: BackupConfig, files: Once<BackupFiles>) -> [Action] {
        [
            Action(
                "package \(PgBackRest.package) installed",
                check: { DpkgStatus.installed([PgBackRest.package])?.contains(PgBackRest.package) == true },
                apply: { try await Apt.install([PgBackRest.package]) }),
            BackupRepository.action(backup.repoPath),
            BackupRepository.logDirectoryAction(),
            configAction(tool: PgBackRest(backup), files: files),
        ]
    }

    /// The stanza is this cluster's: its newest system identifier is the server's.
    static func requireSameSystem(_ info: BackupInfo, _ connection: PGConnection, _ backup: BackupConfig) throws {
        let system = try connection.query("SELECT system_identifier::text FROM pg_catalog.pg_control_system()").scalar ?? ""
        guard let last = info.systemIDs.last, last != system else { return }
        throw Failure.hostWrong(
            "stanza \(backup.stanza) in \(backup.repoPath) holds the backups of another cluster (system identifier \(last), "
                + "this one's \(system)): bring that cluster back with hm-restore, or choose another BACKUP_STANZA or "
                + "BACKUP_REPO_PATH")
    }

    /// Seconds since the newest backup ended; nil without one.
    static func age(_ info: BackupInfo) -> Int? {
        info.newest.map { Int(time(nil)) - $0.stop }
    }

    /// The stanza's configuration directory (root's, group postgres, 0750) and pgbackrest.conf
    /// (0640) in it.
    static func configAction(tool: PgBackRest, files: Once<BackupFiles>) -> Action {
        func postgresGroup() throws -> UInt32 {
            try ClusterTools.postgresAccount().gid
        }
        return Action(
            "\(tool.configFile): the stanza's configuration",
            check: {
                guard let directory = try OpenDirectory.openIfPresent(tool.configPath),
                    let entry = try directory.entry(PgBackRest.configFileName), entry.kind == .file
                else { return false }
                let gid = try postgresGroup()
                return try directory.holds(PgBackRest.configFileName, files.get().config)
                    && entry.mode == BackupFiles.configMode && entry.uid == 0 && entry.gid == gid
                    && directory.status.mode == 0o750 && directory.status.gid == gid
            },
            apply: {
                let gid = try postgresGroup()
                let root = try OpenDirectory.makePath(PgBackRest.configRoot, mode: 0o755)
                let directory = try root.makeDirectory(tool.stanza, mode: 0o750, uid: 0, gid: gid)
                try directory.write(PgBackRest.configFileName, files.get().config, mode: BackupFiles.configMode, uid: 0, gid: gid)
            },
            preview: {
                try DryRunPreview.file(
                    tool.configFile, in: OpenDirectory.openIfPresent(tool.configPath), PgBackRest.configFileName,
                    text: files.get().config, mode: BackupFiles.configMode, uid: 0, gid: try postgresGroup())
            })
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<BackupStep>).
extension BackupStep: StepDefinition {
    public typealias Flags = BackupFlags
    public static let abstract = "keep the memories elsewhere: WAL archiving and scheduled backups with pgBackRest"
    public static let discussion = """
        With BACKUP=on (the default): installs pgbackrest, makes the repository BACKUP_REPO_PATH \
        (the postgres account's, 0750; a link, another owner's or a writable one is refused), writes \
        the stanza's configuration to /etc/pgbackrest/hearthminds/<BACKUP_STANZA>/pgbackrest.conf, creates \
        the stanza, checks that WAL archiving works (the postgres step sets archive_command and \
        archive_timeout = BACKUP_LOSS_WINDOW), takes a first full backup, takes a differential one \
        when the newest is older than BACKUP_MAX_AGE hours, and enables the systemd timers of the \
        schedule (BACKUP_FULL_CALENDAR, BACKUP_DIFF_CALENDAR, BACKUP_TEST_RESTORE_CALENDAR). \
        With --test-restore: restores the newest backup into a throwaway cluster on another port, \
        checks it as verify does and counts every AI database's rows against the live ones, logs \
        the result and drops the throwaway cluster. BACKUP=off: nothing, with a warning.
        """
    public static var needs: [any StepDefinition.Type] { [PostgresStep.self] }

    public static func build(_ context: StepContext, flags: BackupFlags) throws -> Step {
        if flags.writeMetrics { return try BackupStep.metricsOnly(context.config) }
        return flags.testRestore ? try BackupTestRestore.make(context) : BackupStep.make(context.config)
    }
}
