import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// How the suite runs postgresql-common's tools (pg_lsclusters, pg_ctlcluster, pg_createcluster,
/// pg_dropcluster). They read the cluster's configuration, which the postgres account owns
/// (/etc/postgresql/<version>/<cluster>: postgresql.conf and what it includes, start.conf,
/// pg_ctl.conf, environment, the `log` link), and as root two of them act on the paths it names:
///
/// - pg_dropcluster unlinks the file the configuration directory's `log` link points to: a link
///   to /etc/shadow there, and root removes /etc/shadow (the tests show it);
/// - pg_createcluster, in a configuration directory that exists already, writes start.conf,
///   pg_ctl.conf and environment by their names and chmods them, following links the postgres
///   account planted there (and chmods the log file in /var/log/postgresql through a link).
///
/// So those two run as the postgres account, with its own groups (what they make and remove is
/// that account's; a link it planted is followed with its rights, not root's), and root does
/// after them only what needs root and takes nothing from that account's files:
/// `systemctl daemon-reload` (and the unit disables pg_dropcluster makes) where systemd runs,
/// postgresql-common's apt list (pg_updateaptconfig), and the log file's group `adm`, set on
/// its descriptor. pg_ctlcluster, which postgresql-common hardened for root (it drops to the
/// owner before it writes the log), stays root's: under systemd only root may start the unit.
/// (It still makes a missing socket directory postgresql.conf names with mkdir, then chown by
/// name: a race the postgres account could run where that directory's parent is its own.)
///
/// And every tool runs with a deadline: a FIFO the postgres account puts in place of a file the
/// tool reads (start.conf, postgresql.conf, the external pid file) holds it forever otherwise
/// (the tests show pg_lsclusters and pg_ctlcluster held so).
public enum ClusterTools {
    /// Deadlines in seconds: listing (pg_lsclusters takes 0.1 s), starting or stopping (pg_ctl
    /// waits up to 60 s itself), creating (initdb), dropping (removing the data directory).
    static let listSeconds = 60
    static let controlSeconds = 300
    static let createSeconds = 300
    static let dropSeconds = 900

    /// An environment variable that caps every deadline (seconds): the tests use a few.
    public static let timeoutVariable = "HEARTHMINDS_TOOL_TIMEOUT"

    static func deadline(_ seconds: Int) -> Int {
        guard let text = getenv(timeoutVariable).map({ String(cString: $0) }), let cap = Int(text), cap > 0 else {
            return seconds
        }
        return min(seconds, cap)
    }

    /// The account the cluster tools run as where root need not: the cluster's owner on Debian.
    package static func postgresAccount() throws -> SystemAccount {
        guard let account = SystemAccount.lookup("postgres") else {
            throw Failure("no system account postgres: is postgresql-common installed?")
        }
        return account
    }

    /// `pg_lsclusters --no-header`.
    static func list() async throws -> String {
        try await Command.check(["pg_lsclusters", "--no-header"], timeout: deadline(listSeconds))
    }

    /// `pg_ctlcluster <version> <cluster> <action>` (start, stop, restart, reload), as root.
    public static func control(_ paths: ClusterPaths, _ action: String) async throws {
        try await Command.check(
            ["pg_ctlcluster", String(paths.version), paths.name, action], timeout: deadline(controlSeconds))
    }

    /// `pg_createcluster` as the postgres account (UTF-8, C.UTF-8, `port`); then root's part.
    public static func create(_ paths: ClusterPaths, port: Int) async throws {
        let postgres = try postgresAccount()
        try ensureSocketDirectory(postgres)
        try await Command.check(
            [
                "pg_createcluster", "--encoding", "UTF8", "--locale", "C.UTF-8", "--port", String(port),
                String(paths.version), paths.name,
            ], asUser: postgres, groups: .accounts, timeout: deadline(createSeconds))
        setLogGroup(paths, postgres)
        try await afterwards(units: [])
    }

    /// What an interrupted `pg_createcluster` leaves (a power cut in its initdb): a data directory
    /// at pg_createcluster's default place, `/var/lib/postgresql/<version>/<name>`, that initdb did
    /// not finish (no `global/pg_control`, or no template1, template0 or postgres database) and
    /// that no server ever started (no `postmaster.opts`), and the configuration directory it had
    /// begun (no `postgresql.conf`). A rerun's pg_createcluster would adopt that directory as an
    /// existing cluster, which then never works. Such a directory holds no data: it is removed,
    /// as the postgres account, whose it is, so that pg_createcluster starts again. Returns what
    /// was removed (nothing: []).
    public static func removeHalfMade(_ paths: ClusterPaths) async throws -> [String] {
        let data = "/var/lib/postgresql/\(paths.version)/\(paths.name)"
        guard let directory = try OpenDirectory.openIfPresent(data, trust: .reading) else { return [] }
        if try directory.entry("postmaster.opts") != nil { return [] }
        func has(_ parts: [String]) throws -> Bool {
            var at: OpenDirectory? = directory
            for part in parts.dropLast() { at = try at?.directory(part) }
            return try at?.entry(parts.last!) != nil
        }
        let complete =
            try has(["global", "pg_control"]) && has(["base", "1", "PG_VERSION"]) && has(["base", "4", "PG_VERSION"])
            && has(["base", "5", "PG_VERSION"])
        guard !complete else { return [] }
        let postgres = try postgresAccount()
        var removed: [String] = []
        // (the configuration directory only when it is pg_createcluster's beginning, no cluster yet)
        if let config = try paths.configDirectoryIfPresent(), try config.entry("postgresql.conf") == nil {
            try await Command.check(["rm", "-rf", "--one-file-system", "--", paths.configDirectory], asUser: postgres)
            removed.append(paths.configDirectory)
        }
        try await Command.check(["rm", "-rf", "--one-file-system", "--", data], asUser: postgres)
        removed.append(data)
        return removed
    }

    /// Removes the data directory's postmaster.pid when no server runs there (PostmasterStatus:
    /// its pid is no server's): after a power cut and a reboot the file stays, and its pid is
    /// often another process's whose command line names postgres (our own hm-postgres, a
    /// `su - postgres`), which pg_ctlcluster and the server itself take for a running server
    /// ("Cluster is already running", "lock file postmaster.pid already exists"). Removed as the
    /// postgres account, whose directory it is. True when there was one to remove.
    public static func removeStalePidFile(_ dataDirectory: String) async throws -> Bool {
        guard let directory = try OpenDirectory.openIfPresent(dataDirectory, trust: .reading),
            try directory.entry("postmaster.pid") != nil,
            PostmasterStatus.read(dataDirectory: dataDirectory) == nil
        else { return false }
        try await Command.check(["rm", "-f", "--", dataDirectory + "/postmaster.pid"], asUser: try postgresAccount())
        return true
    }

    /// Stops the cluster (as root, when it runs), then `pg_dropcluster` as the postgres account;
    /// then root's part.
    public static func drop(_ paths: ClusterPaths, running: Bool) async throws {
        let postgres = try postgresAccount()
        if running { try await control(paths, "stop") }
        try await Command.check(
            ["pg_dropcluster", String(paths.version), paths.name], asUser: postgres, groups: .accounts,
            timeout: deadline(dropSeconds))
        let instance = "\(paths.version)-\(paths.name)"
        try await afterwards(units: [
            ["disable", "postgresql@\(instance)"], ["disable", "--now", "pg_receivewal@\(instance)"],
            ["disable", "--now", "pg_basebackup@\(instance).timer"], ["disable", "--now", "pg_dump@\(instance).timer"],
        ])
    }

    /// What pg_createcluster and pg_dropcluster do as root at their end, none of it reading the
    /// postgres account's files: systemd told (the units disabled first, failures ignored as
    /// pg_dropcluster ignores them), then apt's list of the versions that have clusters.
    static func afterwards(units: [[String]]) async throws {
        if FileSystem.isDirectory("/run/systemd/system"), Command.resolve("systemctl") != nil {
            for unit in units { _ = try? await Command.run(["systemctl"] + unit, timeout: deadline(controlSeconds)) }
            try await Command.check(["systemctl", "daemon-reload"], timeout: deadline(controlSeconds))
        }
        let apt = "/usr/share/postgresql-common/pg_updateaptconfig"
        if FileSystem.exists(apt) { try await Command.check([apt], timeout: deadline(listSeconds)) }
    }

    /// /var/run/postgresql, the postgres account's (2775), when it is missing (a /run that is a
    /// fresh tmpfs): pg_createcluster as that account could not make it in /run, and would put the
    /// socket in /tmp instead. An existing one is left as it is.
    static func ensureSocketDirectory(_ postgres: SystemAccount) throws {
        let socket = PGTarget.debianSocketDirectory
        let (parentPath, name) = try OpenDirectory.split(socket)
        let parent = try OpenDirectory.open(parentPath)
        guard try parent.entry(name) == nil else { return }
        _ = try OpenDirectory.open(parentPath, trust: .account(postgres.uid, from: parent.resolvedPath + "/" + name))
            .makeDirectory(name, mode: 0o2775, uid: postgres.uid, gid: postgres.gid)
    }

    /// The cluster's log file gets the group `adm`, as pg_createcluster gives it as root (so that
    /// administrators read it): on its descriptor, and only while it is a regular file of the
    /// postgres account's. Anything else there is left alone.
    static func setLogGroup(_ paths: ClusterPaths, _ postgres: SystemAccount) {
        guard postgres.uid < 500, let adm = SystemAccount.groupID("adm"),
            let directory = try? OpenDirectory.openIfPresent("/var/log/postgresql"),
            let name = Optional("postgresql-\(paths.version)-\(paths.name).log"),
            let entry = try? directory.entry(name), entry.kind == .file, entry.uid == postgres.uid
        else { return }
        try? directory.setOwner(name, uid: postgres.uid, gid: adm, mode: entry.mode & 0o777, owner: postgres.uid)
    }
}
