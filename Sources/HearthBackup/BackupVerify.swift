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

/// What verify says of the backups: the newest backup, its age against BACKUP_MAX_AGE, WAL
/// archiving without failure, and the last proven restore (hm-backup --test-restore: false
/// fails verify; none yet is said, not failed). BACKUP=off: a warning, true.
public enum BackupVerify {
    public static func actions(_ config: HearthConfig, server: PGServer) -> [Action] {
        guard let backup = config.backup else {
            return [
                .assertion("WARNING: BACKUP is off: no backup of the memories is taken (a lost disk loses them all)") { true }
            ]
        }
        let tool = PgBackRest(backup)
        let found = Box<String>()
        let proof = Box<String>()
        return [
            .assertion(
                "backups: stanza \(backup.stanza) has a backup younger than \(backup.maxAgeHours) h, WAL archiving without failure",
                note: { found.value ?? "" }
            ) {
                let connection = try server.admin()
                let info = try await tool.info(connection)
                guard let newest = info.newest else {
                    throw Failure.hostWrong("stanza \(backup.stanza) has no backup (run hm-backup)")
                }
                let age = Int(time(nil)) - newest.stop
                found.value = "newest backup \(newest.label) (\(newest.type)), \(age / 3600) h \(age % 3600 / 60) min old, "
                    + "\(newest.size >> 20) MiB of data, \(newest.repositorySize >> 20) MiB in the repository"
                guard age < backup.maxAgeHours * 3600 else {
                    throw Failure.hostWrong("the newest backup \(newest.label) is \(age / 3600) h old, over BACKUP_MAX_AGE (\(backup.maxAgeHours) h): are the timers running? (systemctl list-timers 'hearthminds-backup-*')")
                }
                if let problem = try PgBackRest.archiving(connection) {
                    throw Failure.hostWrong("WAL archiving: \(problem)")
                }
                return true
            },
            .assertion("backups: the last test restore (hm-backup --test-restore) proved its backup", note: { proof.value ?? "" }) {
                guard let directory = try OpenDirectory.openIfPresent(tool.configPath),
                    let text = try directory.textIfFile(BackupFiles.testRestoreResultFileName)
                else {
                    proof.value = "no test restore yet (its timer runs \(backup.testRestoreCalendar); or run hm-backup --test-restore)"
                    return true
                }
                let fields = text.split(separator: " ", maxSplits: 3).map(String.init)
                guard fields.count >= 3, let at = Int(fields[0]) else { throw Failure.hostWrong("\(tool.configPath)/\(BackupFiles.testRestoreResultFileName) is not ours") }
                let age = (Int(time(nil)) - at) / 3600
                proof.value = "last test restore \(age) h ago: \(fields[1]) for backup \(fields[2])" + (fields.count > 3 ? ", \(fields[3].trimmingCharacters(in: "\n"))" : "")
                guard fields[1] == "true" else {
                    throw Failure.hostWrong("the last test restore failed, for backup \(fields[2]): see the log (hm-backup --test-restore)")
                }
                return true
            },
        ]
    }
}
