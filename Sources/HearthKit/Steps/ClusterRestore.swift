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

/// `hm-restore`: the cluster brought back from the repository — the newest state (the archive's
/// end) or the state at `--to TIME` — in place of the cluster's data directory, which is moved
/// aside, never deleted (`<data>.before-restore-<time>`, the postgres account's: remove it once
/// the restored host is right). Then install.sh's steps converge the host around the restored
/// data. A rerun after an interruption finishes the restore: a marker (root's, beside the
/// stanza's configuration) names the restore under way and where the data was moved; a
/// half-restored data directory is then removed (the data it replaced is aside) and the restore
/// starts again.
public enum ClusterRestore {
    public static let name = StepName.restore
    static let markerName = "restore-in-progress"

    /// The marker of a restore under way (hm-restore was interrupted): its path, or nil.
    public static func underWay(_ backup: BackupConfig) -> String? {
        let tool = PgBackRest(backup)
        guard (try? OpenDirectory.openIfPresent(tool.configPath)?.textIfFile(markerName)) != nil else { return nil }
        return tool.configPath + "/" + markerName
    }

    /// The postgres step's guard: a cluster half restored must not be started or changed by
    /// anything but the restore that finishes it.
    public static func guardAction(_ config: HearthConfig) -> Action? {
        guard let backup = config.backup else { return nil }
        return .assertion("no restore of the cluster under way (an interrupted hm-restore)") {
            if let marker = underWay(backup) {
                throw Failure.hostWrong(
                    "a restore of the cluster was interrupted (\(marker)): its data directory is half restored; finish "
                        + "it first: sudo ./install.sh --restore (with the same --restore-to TIME, if one was given)")
            }
            return true
        }
    }

    public static func make(
        _ config: HearthConfig, to target: String?, retired: String? = nil,
        clientDirectory: String = ClientFiles.defaultDirectory
    ) throws -> Step {
        guard let backup = config.backup else {
            throw Failure.configuration(key: "BACKUP", "is off: hm-restore restores from the backup repository (BACKUP=on)")
        }
        if let target, target.isEmpty || target.utf8.count > 64
            || !target.unicodeScalars.allSatisfy({ $0.isASCIIDigit || $0.isASCIILetter || " :-.+/_".unicodeScalars.contains($0) })
        {
            throw Failure.configuration(key: "--to", "'\(target)' is not a time (e.g. '2026-12-06 17:30:00+00')")
        }
        if let retired, !retired.hasPrefix(backup.stanza + RetiredStanza.infix)
            || !retired.unicodeScalars.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == "-" })
        {
            throw Failure.configuration(key: "--retired", "'\(retired)' is not a retired stanza of \(backup.stanza) (\(backup.stanza)\(RetiredStanza.infix)<time>)")
        }
        let paths = ClusterPaths(config)
        let tool = PgBackRest(backup)
        let data = Box<String>()
        let aside = Box<String>()
        let outcome = Box<String>()
        let what = target.map { "to \($0)" } ?? "to the newest state in the archive"

        func postgres() throws -> SystemAccount {
            try ClusterTools.postgresAccount()
        }
        func asPostgres(_ argv: [String], seconds: Int = 900) async throws {
            try await Command.check(argv, asUser: try postgres(), timeout: seconds)
        }

        return Step(name, BackupStep.preparation(backup, files: BackupStep.files(config, backup))
            + (retired.map { [RetiredStanza.bringBackAction(backup, $0)] } ?? []) + [
            .assertion("the stanza's configuration (hm-backup) and a backup in \(backup.repoPath)") {
                guard FileSystem.exists(tool.configFile) else {
                    throw Failure("\(tool.configFile) is missing: run hm-backup's actions first (install.sh --restore does)", needs: BackupStep.name)
                }
                let text = try await tool.run(["info"], seconds: 120)
                guard text.contains("full backup") || text.contains("status: ok") else {
                    throw Failure.hostWrong("stanza \(backup.stanza) in \(backup.repoPath) has no backup to restore:\n" + text)
                }
                guard let cluster = try DebianClusters.find(paths), let directory = cluster.dataDirectory else {
                    throw Failure("there is no cluster \(paths.id) to restore into: run hm-postgres first", needs: PostgresStep.name)
                }
                data.value = directory
                return true
            },
            Action(
                "cluster \(paths.id) restored from stanza \(backup.stanza) \(what) (its data moved aside first)",
                check: { false },
                apply: {
                    guard let directory = data.value else { throw Failure("no data directory") }
                    let configDirectory = try OpenDirectory.open(tool.configPath)
                    let marker = try configDirectory.textIfFile(markerName)
                    // Stopped (a restore under way has no server; pg_ctlcluster stop of a stopped one fails).
                    if PostmasterStatus.read(dataDirectory: directory) != nil {
                        try await ClusterTools.control(paths, "stop")
                    }
                    if let marker, let earlier = marker.split(separator: "\n").first.map(String.init), earlier.hasPrefix(directory + ".before-restore-") {
                        // An interrupted restore: the data it replaced is aside already; what is in
                        // the data directory now is a half restore.
                        aside.value = earlier
                        if FileSystem.exists(earlier) {
                            try await asPostgres(["rm", "-rf", "--one-file-system", "--", directory])
                        } else if FileSystem.exists(directory) {
                            // (cut between the marker and the move: the data is still in place)
                            try await asPostgres(["mv", "-T", "--", directory, earlier])
                        }
                    } else {
                        let moved = directory + ".before-restore-" + Clock.newRunID()
                        try configDirectory.write(markerName, moved + "\n", mode: 0o600, uid: 0, gid: 0)
                        if FileSystem.exists(directory) { try await asPostgres(["mv", "-T", "--", directory, moved]) }
                        aside.value = moved
                    }
                    try await asPostgres(["mkdir", "-m", "0700", "--", directory], seconds: 60)
                    var options = ["--pg1-path=\(directory)"]
                    if let target { options += ["--type=time", "--target=\(target)", "--target-action=promote"] }
                    let started = Clock.nowMs()
                    try await tool.run(options + ["restore"], seconds: 86_400)
                    try await ClusterTools.control(paths, "start")
                    // Until recovery has ended (promoted, or the archive's end reached).
                    let deadline = Clock.nowMs() + 3_600_000
                    while true {
                        if let connection = try? PGServer.running(paths).admin(),
                            try connection.query("SELECT pg_catalog.pg_is_in_recovery()").scalar == "f"
                        {
                            break
                        }
                        guard Clock.nowMs() < deadline else { throw Failure("cluster \(paths.id) did not finish recovery in an hour") }
                        usleep(250_000)
                    }
                    // A checkpoint once promoted: without it the server (15.20) was seen not to switch
                    // WAL files on archive_timeout until the checkpointer's own timer came round (up to
                    // 5 minutes of work not archived; bench/backup.sh).
                    _ = try PGServer.running(paths).admin().execute("CHECKPOINT")
                    try configDirectory.remove(markerName)
                    outcome.value = "restored in \(Int((Clock.nowMs() - started) / 1000)) s; the data it replaced is in "
                        + "\(aside.value ?? "?") (the postgres account's: remove it once the host is right). Now run the "
                        + "steps: sudo ./install.sh"
                },
                verify: {
                    guard let connection = try? PGServer.running(paths).admin() else { return false }
                    return try connection.query("SELECT pg_catalog.pg_is_in_recovery()").scalar == "f"
                },
                note: { outcome.value ?? "" }),
            .assertion("the passwords the AIs log in with are on this host (client files), or configured") {
                let book = PasswordBook(config, directory: clientDirectory)
                let missing = book.missing()
                guard missing.isEmpty else {
                    throw Failure.hostWrong(
                        "no password on this host for \(missing.joined(separator: ", ")): bring \(ClientFiles.defaultDirectory)/"
                            + "\(ClientFiles.passwordDirectory)/ from the old host (root-only) before running the steps, or the "
                            + "databases step gives these roles new passwords and their applications can no longer log in")
                }
                return true
            },
        ])
    }
}
