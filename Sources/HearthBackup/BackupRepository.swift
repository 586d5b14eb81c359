import HearthMonitoring
import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthClient
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The repository directory (and pgBackRest's log directory): the postgres account's, 0750,
/// reached through root's directories only. What is not ours is refused, never adopted: a link,
/// another account's directory, one that others may write, a root-owned directory that already
/// holds something. An empty root-owned directory (a new disk's mount point) is handed to postgres.
public enum BackupRepository {
    public static let mode: UInt32 = 0o750

    public static func action(_ path: String) -> Action {
        directoryAction("repository \(path): the postgres account's and no one else's (0750)", path)
    }

    public static func logDirectoryAction() -> Action {
        directoryAction("pgBackRest's log directory \(PgBackRest.logPath): the postgres account's (0750)", PgBackRest.logPath)
    }

    static func postgres() throws -> SystemAccount {
        guard let postgres = SystemAccount.lookup("postgres") else {
            throw Failure("no system account postgres: is postgresql-common installed?", needs: StepName.postgres)
        }
        return postgres
    }

    /// Whether `path` is right (true), missing or fixable (false); a hostWrong Failure when it is not ours.
    static func inspect(_ path: String) throws -> Bool {
        let postgres = try postgres()
        let (parent, name) = try OpenDirectory.split(path)
        guard let directory = try OpenDirectory.openIfPresent(parent), let entry = try directory.entry(name) else {
            return false
        }
        switch entry.kind {
        case .symlink: throw Failure.hostWrong("\(path) is a symbolic link: refused, not followed (name the directory itself)")
        case .file, .other: throw Failure.hostWrong("\(path) is not a directory: refused")
        case .directory: break
        }
        if entry.mode & 0o022 != 0 {
            throw Failure.hostWrong(
                "\(path) is writable by group or others (mode \(OpenDirectory.octal(entry.mode))): not a repository of ours, refused")
        }
        if entry.uid == 0 {
            guard let inside = try directory.directory(name), try inside.list().isEmpty else {
                throw Failure.hostWrong("\(path) is root's and not empty: not a repository of ours, refused")
            }
            return false
        }
        guard entry.uid == postgres.uid else {
            throw Failure.hostWrong(
                "\(path) is owned by \(OpenDirectory.userName(entry.uid)), not postgres: not a repository of ours, refused")
        }
        return entry.gid == postgres.gid && entry.mode == mode
    }

    static func directoryAction(_ label: String, _ path: String) -> Action {
        Action(
            label,
            check: { try inspect(path) },
            apply: {
                let postgres = try postgres()
                let (parent, name) = try OpenDirectory.split(path)
                let directory = try OpenDirectory.makePath(parent, mode: 0o755)
                if let entry = try directory.entry(name) {
                    // (inspect refused what is not ours: postgres's own, or root's and empty)
                    try directory.setOwner(name, uid: postgres.uid, gid: postgres.gid, mode: mode, owner: entry.uid)
                } else {
                    _ = try directory.makeDirectory(name, mode: mode, uid: postgres.uid, gid: postgres.gid)
                }
            })
    }
}
