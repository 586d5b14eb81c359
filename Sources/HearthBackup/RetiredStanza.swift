import HearthMonitoring
import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthClient
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// A stanza's backups set aside in the repository, never deleted: `hm-reset --cluster` retires
/// the stanza of the cluster it drops (the new cluster the steps make is another one, which
/// pgBackRest would refuse in the same stanza), and `hm-restore --retired NAME` brings a retired
/// stanza back before it restores. Renamed by the postgres account (the repository is its own):
/// `backup/<stanza>` and `archive/<stanza>` to `<stanza>-retired-<id>`.
public enum RetiredStanza {
    public static let infix = "-retired-"

    /// The repository's `kind` directory (backup, archive), read without following a link.
    static func kindDirectory(_ repoPath: String, _ kind: String) throws -> OpenDirectory? {
        try OpenDirectory.openIfPresent(repoPath, trust: .reading)?.directory(kind)
    }

    static func exists(_ repoPath: String, _ stanza: String) throws -> Bool {
        try ["backup", "archive"].contains { try kindDirectory(repoPath, $0)?.entry(stanza) != nil }
    }

    /// The retired stanzas of `stanza` in the repository, oldest first (their names sort by time).
    public static func list(_ repoPath: String, _ stanza: String) throws -> [String] {
        try (kindDirectory(repoPath, "backup")?.list() ?? []).filter { $0.hasPrefix(stanza + infix) }.sorted()
    }

    /// Renames the stanza's two directories `from` → `to`, as postgres (what is missing is skipped).
    static func rename(_ repoPath: String, from: String, to: String) async throws {
        let postgres = try ClusterTools.postgresAccount()
        for kind in ["backup", "archive"] {
            guard let directory = try kindDirectory(repoPath, kind), try directory.entry(from) != nil else { continue }
            if try directory.entry(to) != nil {
                throw Failure.hostWrong("\(repoPath)/\(kind)/\(to) exists already: not overwritten")
            }
            try await Command.check(
                ["mv", "-T", "--", repoPath + "/" + kind + "/" + from, repoPath + "/" + kind + "/" + to], asUser: postgres,
                timeout: 300)
        }
    }

    /// hm-reset --cluster's item: the stanza retired (when BACKUP is on and it exists).
    public static func resetAction(_ backup: BackupConfig) -> (what: String, action: Action) {
        let retiredAs = Box<String>()
        return (
            "the backups of stanza \(backup.stanza) in \(backup.repoPath): kept, retired (restore them with hm-restore --retired NAME)",
            Action(
                "stanza \(backup.stanza) retired in \(backup.repoPath) (its backups kept)",
                check: { try !exists(backup.repoPath, backup.stanza) },
                apply: {
                    let name = backup.stanza + infix + Clock.timestamp().filter { $0.isNumber }.prefix(14)
                    try await rename(backup.repoPath, from: backup.stanza, to: String(name))
                    retiredAs.value = String(name)
                },
                note: {
                    retiredAs.value.map {
                        "the dropped cluster's backups are kept as stanza \($0): sudo ./install.sh --restore --retired \($0) brings them back"
                    } ?? ""
                }))
    }
}

extension RetiredStanza {
    /// hm-restore --retired NAME's action: the retired stanza NAME is the stanza again; the
    /// current one (the new cluster's, if any) is retired in its place.
    public static func bringBackAction(_ backup: BackupConfig, _ name: String) -> Action {
        Action(
            "retired stanza \(name) is stanza \(backup.stanza) again (the current one retired)",
            check: { try !exists(backup.repoPath, name) },
            apply: {
                if try exists(backup.repoPath, backup.stanza) {
                    let current = backup.stanza + infix + Clock.timestamp().filter { $0.isNumber }.prefix(14)
                    try await rename(backup.repoPath, from: backup.stanza, to: String(current))
                }
                try await rename(backup.repoPath, from: name, to: backup.stanza)
            })
    }
}

extension RetiredStanza {
    /// What a reset keeps of the backups, and how a rebuild comes back to them (hm-reset's
    /// listing): the newest backup of the stanza, as pgBackRest's `info` says it.
    public static func keptLine(_ backup: BackupConfig, cluster: Bool) async -> String {
        let tool = PgBackRest(backup)
        var newest = "no backup yet"
        if let text = try? await tool.run(["info"], seconds: 60),
            let line = text.split(separator: "\n").last(where: { $0.contains(" backup: ") })
        {
            newest = "newest " + String(line).trimmingCharacters(in: " ")
        }
        let how = cluster
            ? "the stanza is retired (kept as \(backup.stanza)\(infix)<time>); after the rebuild, sudo ./install.sh --restore --retired <that name> brings it back"
            : "a rebuild comes back to it with sudo ./install.sh --restore-to TIME (a time before this reset)"
        return "the backups in \(backup.repoPath), stanza \(backup.stanza) (\(newest)): \(how)"
    }
}
