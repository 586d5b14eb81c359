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

/// The backups as node_exporter textfile metrics (`hearthminds_backup_<stanza>.prom`, issue 23's
/// directory): when the newest backup ended (the rule HearthMindsBackupLate reads it), its
/// type, sizes, and the last test restore. Written by the backup step, and after each backup a
/// timer takes (`hm-backup --write-metrics`, the units' ExecStartPost).
public enum BackupMetrics {
    /// One file per stanza (its metrics carry the stanza as a label too).
    public static func file(_ stanza: String) -> String { "hearthminds_backup_\(stanza.replacing("-", with: "_")).prom" }

    public static func render(_ info: BackupInfo, stanza: String, proof: (at: Double, ok: Bool)?) -> TextfileMetrics {
        let labels = [("stanza", stanza)]
        var families: [TextfileMetrics.Family] = [
            .init("hearthminds_backup_sets", help: "Backups the repository holds for the stanza.", [.init(labels, Double(info.backups.count))])
        ]
        if let newest = info.newest {
            families += [
                .init("hearthminds_backup_last_success_timestamp_seconds", help: "When the newest backup ended (Unix time).",
                      [.init(labels + [("type", newest.type)], Double(newest.stop))]),
                .init("hearthminds_backup_last_duration_seconds", help: "How long the newest backup took.",
                      [.init(labels, Double(newest.stop - newest.start))]),
                .init("hearthminds_backup_last_size_bytes", help: "The newest backup's size: the database's bytes.",
                      [.init(labels, Double(newest.size))]),
                .init("hearthminds_backup_last_repository_bytes", help: "The newest backup's bytes in the repository (compressed).",
                      [.init(labels, Double(newest.repositorySize))]),
            ]
        }
        if let proof {
            families += [
                .init("hearthminds_backup_test_restore_timestamp_seconds", help: "When the last test restore ended (Unix time).",
                      [.init(labels, proof.at)]),
                .init("hearthminds_backup_test_restore_success", help: "1 when the last test restore proved its backup, 0 when not.",
                      [.init(labels, proof.ok ? 1 : 0)]),
            ]
        }
        return TextfileMetrics(families)
    }

    /// The last test restore as its result file says (nil: none yet).
    static func proof(_ tool: PgBackRest) -> (at: Double, ok: Bool)? {
        guard let text = try? OpenDirectory.openIfPresent(tool.configPath)?.textIfFile(BackupFiles.testRestoreResultFileName) else {
            return nil
        }
        let fields = text.split(separator: " ")
        guard fields.count >= 2, let at = Double(fields[0]) else { return nil }
        return (at, fields[1] == "true")
    }

    /// The action that keeps the file as the repository is (nothing when no directory is configured).
    public static func action(_ config: HearthConfig, _ backup: BackupConfig, info: @escaping () async throws -> BackupInfo) -> Action {
        let tool = PgBackRest(backup)
        let file = Self.file(backup.stanza)
        let text = Box<String>()
        func wanted() async throws -> String {
            if let known = text.value { return known }
            let rendered = render(try await info(), stanza: backup.stanza, proof: proof(tool)).render()
            text.value = rendered
            return rendered
        }
        return Action(
            "the backup metrics (\(file) in the textfile directory)",
            check: {
                guard config.monitoring.textfileDirectory != nil else { return true }
                return try await TextfileMetrics.read(file, config) == wanted()
            },
            apply: {
                let rendered = try await wanted()
                guard let directory = try TextfileMetrics.directory(config) else { return }
                try directory.write(file, rendered, mode: 0o644, uid: 0, gid: 0)
            })
    }
}
