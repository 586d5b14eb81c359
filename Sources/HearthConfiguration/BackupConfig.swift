import HearthSystem
#if canImport(Glibc)
import Glibc
#endif

/// The backup keys (BACKUP, BACKUP_*): continuous WAL archiving and scheduled backups with
/// pgBackRest (the backup step, hm-backup; hm-restore brings them back).
public struct BackupConfig: Sendable, Equatable {
    public enum Compression: String, Sendable, CaseIterable {
        case zst, lz4, gz, bz2, none
    }

    /// pgBackRest's stanza: the name of this cluster's backups in the repository (one per host
    /// where several hosts share a repository).
    public let stanza: String
    /// The repository: a directory of the postgres account's (0750).
    public let repoPath: String
    /// archive_timeout: a quiet server still closes and archives its WAL segment this often, so
    /// at most this many seconds of committed work are not yet in the repository.
    public let lossWindow: Int
    public let compression: Compression
    /// pgBackRest's process-max; nil: auto (half the cores, at least 1).
    public let processMax: Int?
    /// Full backups kept (repo1-retention-full); differential ones go with their full.
    public let retentionFull: Int
    /// systemd calendar events (OnCalendar=) of the timers.
    public let fullCalendar: String
    public let diffCalendar: String
    public let testRestoreCalendar: String
    /// Hours after which the newest backup is late (verify false, the step takes one).
    public let maxAgeHours: Int
    /// The port of hm-backup --test-restore's throwaway cluster; nil: auto (a free one).
    public let scratchPort: Int?

    /// The process count pgBackRest uses: the key, or half the cores (at least 1), at most 8.
    public var processes: Int {
        if let processMax { return processMax }
        let cores = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        return max(1, min(8, cores / 2))
    }

    /// The keys, checked in order (nil: BACKUP is off).
    static func load(_ value: (String) -> RawValue) throws(Failure) -> BackupConfig? {
        typealias V = ConfigValues
        guard try V.bool("BACKUP", value("BACKUP")) else { return nil }
        let stanzaRaw = value("BACKUP_STANZA")
        guard let first = stanzaRaw.value.unicodeScalars.first, first.isASCIILetter || first.isASCIIDigit,
            stanzaRaw.value.utf8.count <= 64,
            stanzaRaw.value.unicodeScalars.allSatisfy({ $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == "-" })
        else {
            throw V.fail("BACKUP_STANZA", stanzaRaw, "not a stanza name: letters, digits, '_' and '-', at most 64")
        }
        let repoPath = try V.absolutePath("BACKUP_REPO_PATH", value("BACKUP_REPO_PATH"))
        if repoPath == "/" || ["/etc", "/usr", "/var", "/var/lib", "/var/lib/postgresql", "/tmp", "/root", "/home"]
            .contains(repoPath)
        {
            throw V.fail("BACKUP_REPO_PATH", value("BACKUP_REPO_PATH"), "is a system directory: name a directory of its own")
        }
        let lossWindow = try V.int("BACKUP_LOSS_WINDOW", value("BACKUP_LOSS_WINDOW"), 1...3600, "a number of seconds")
        let compressionRaw = value("BACKUP_COMPRESS")
        guard let compression = Compression(rawValue: compressionRaw.value) else {
            throw V.fail(
                "BACKUP_COMPRESS", compressionRaw,
                "not one of \(Compression.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let processMax = try V.intOrAuto("BACKUP_PROCESS_MAX", value("BACKUP_PROCESS_MAX"), 1...64, "a process count")
        let retentionFull = try V.int("BACKUP_RETENTION_FULL", value("BACKUP_RETENTION_FULL"), 1...100, "a count of full backups")
        var calendars: [String] = []
        for key in ["BACKUP_FULL_CALENDAR", "BACKUP_DIFF_CALENDAR", "BACKUP_TEST_RESTORE_CALENDAR"] {
            let raw = value(key)
            guard !raw.value.isEmpty, raw.value.utf8.count <= 200,
                raw.value.unicodeScalars.allSatisfy({
                    $0.isASCIILetter || $0.isASCIIDigit || " *:.,/~-".unicodeScalars.contains($0)
                })
            else {
                throw V.fail(key, raw, "not a systemd calendar event (OnCalendar=, e.g. 'Sun *-*-* 01:30:00' or daily)")
            }
            calendars.append(raw.value)
        }
        let maxAge = try V.int("BACKUP_MAX_AGE", value("BACKUP_MAX_AGE"), 1...8760, "a number of hours")
        let scratchPort = try V.intOrAuto("BACKUP_SCRATCH_PORT", value("BACKUP_SCRATCH_PORT"), 1024...65535, "a port number")
        return BackupConfig(
            stanza: stanzaRaw.value, repoPath: repoPath, lossWindow: lossWindow, compression: compression,
            processMax: processMax, retentionFull: retentionFull, fullCalendar: calendars[0], diffCalendar: calendars[1],
            testRestoreCalendar: calendars[2], maxAgeHours: maxAge, scratchPort: scratchPort)
    }
}
