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

/// The schedule as systemd timers of the suite's own (a full backup, a differential one, a test
/// restore; one set per stanza), enabled by the backup step. On a host where systemd is not
/// running (a container, a chroot) the units are written and enabled for the next boot, and the
/// step says so: until then nothing takes a backup on schedule, and every run of the backup step
/// takes one when the newest is older than BACKUP_MAX_AGE.
public enum BackupSchedule {
    static var systemdRuns: Bool { FileSystem.isDirectory("/run/systemd/system") && Command.resolve("systemctl") != nil }

    /// The path the test restore's unit runs as root each week: this executable, as hm-backup,
    /// only where no account but root could replace it (every directory on its path root's and
    /// not writable by group or others, the file root's and not writable by them): a tarball
    /// unpacked in a user's home would otherwise hand that user root. A hostWrong Failure names it.
    /// Run by install.sh, the path is the one it was run by (HEARTHMINDS_ROOT: a release's
    /// `current` link stays the same when a new release replaces it, so the unit need not change);
    /// else this executable's own.
    static func selfCommand() throws -> String {
        var path: String
        if let root = getenv("HEARTHMINDS_ROOT").map({ String(cString: $0) }), root.hasPrefix("/"),
            FileSystem.exists(root + "/bootstrap/bin/hm-backup")
        {
            path = root + "/bootstrap/bin/hm-backup"
        } else {
            var buffer = [CChar](repeating: 0, count: 4096)
            let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
            guard count > 0 else { throw Failure("cannot read /proc/self/exe") }
            path = String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        let (directory, file) = try OpenDirectory.split(path)
        let refusal = "the test restore's unit would run \(path) as root each week, and "
        let opened: OpenDirectory
        do {
            opened = try OpenDirectory.open(directory)
        } catch {
            throw Failure.hostWrong(refusal + "\(error); unpack the suite where only root may write (/root, /opt) and run it from there")
        }
        guard let entry = try opened.entry(file), entry.kind == .file, entry.uid == 0, entry.mode & 0o022 == 0 else {
            throw Failure.hostWrong(refusal + "the file is not root's alone; unpack the suite where only root may write (/root, /opt)")
        }
        return file.hasPrefix("hm-") ? path : path + " hm-backup"
    }

    public static func actions(files: Once<BackupFiles>) -> [Action] {
        let started = Box<String>()
        func units() throws -> [(name: String, text: String)] {
            let files = try files.get()
            let command = try selfCommand()
            return BackupFiles.Job.allCases.flatMap { job in
                [
                    (files.unitName(job) + ".service", files.service(job, hmBackup: command)),
                    (files.unitName(job) + ".timer", files.timer(job)),
                ]
            }
        }
        func timers() throws -> [String] {
            let files = try files.get()
            return BackupFiles.Job.allCases.map { files.unitName($0) + ".timer" }
        }
        return [
            Action(
                "the schedule's systemd units in \(BackupFiles.unitDirectory)",
                check: {
                    guard let directory = try OpenDirectory.openIfPresent(BackupFiles.unitDirectory) else { return false }
                    for (name, text) in try units() {
                        guard let entry = try directory.entry(name), entry.kind == .file, entry.mode == BackupFiles.unitMode,
                            try directory.holds(name, text)
                        else { return false }
                    }
                    return true
                },
                apply: {
                    let directory = try OpenDirectory.makePath(BackupFiles.unitDirectory, mode: 0o755)
                    for (name, text) in try units() {
                        try directory.write(name, text, mode: BackupFiles.unitMode, uid: 0, gid: 0)
                    }
                    if systemdRuns { try await Command.check(["systemctl", "daemon-reload"], timeout: 120) }
                },
                preview: {
                    let directory = try OpenDirectory.openIfPresent(BackupFiles.unitDirectory)
                    return try units().map {
                        try DryRunPreview.file(
                            BackupFiles.unitDirectory + "/" + $0.name, in: directory, $0.name, text: $0.text,
                            mode: BackupFiles.unitMode, uid: 0, gid: 0)
                    }.joined()
                }),
            Action(
                "the schedule's timers are enabled (and running where systemd runs)",
                check: {
                    // (no systemd at all: nothing can enable them; the note says so)
                    guard Command.resolve("systemctl") != nil else { return true }
                    let names = try timers()
                    for name in names {
                        let link = "/etc/systemd/system/timers.target.wants/" + name
                        guard FileSystem.exists(link) else { return false }
                    }
                    guard systemdRuns else { return true }
                    let result = try await Command.run(["systemctl", "is-active", "--quiet"] + names, timeout: 60)
                    return result.succeeded
                },
                apply: {
                    let names = try timers()
                    if systemdRuns {
                        try await Command.check(["systemctl", "enable", "--now"] + names, timeout: 120)
                    } else {
                        try await Command.check(["systemctl", "enable"] + names, timeout: 120)
                        started.value =
                            "systemd is not running here: the timers start when the host boots with systemd; until then "
                            + "each run of hm-backup takes a backup when the newest is older than BACKUP_MAX_AGE"
                    }
                },
                note: {
                    if Command.resolve("systemctl") == nil {
                        return "WARNING: no systemd on this host: the timers are written but nothing runs them; schedule "
                            + "hm-backup yourself (cron), which takes a backup when the newest is older than BACKUP_MAX_AGE"
                    }
                    return started.value ?? (systemdRuns ? "" : "systemd is not running: the timers wait for the next boot")
                }),
        ]
    }
}
