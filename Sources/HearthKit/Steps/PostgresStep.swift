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

/// `postgres`: PostgreSQL PG_VERSION installed with apt, the cluster PG_VERSION/PG_CLUSTER_NAME
/// (UTF-8, POSTGRES_PORT) made with pg_createcluster, our settings in the one file we own
/// (conf.d/hearthminds.conf: listen_addresses, port, password_encryption), the cluster
/// running with them, and answering as PostgreSQL PG_VERSION.
///
/// postgresql-common would create a "main" cluster of its own when the package is installed;
/// a createcluster.d drop-in stops that, so the cluster is always the one we create with our
/// port and encoding, whatever its name (an existing cluster of our version and name, "main"
/// included, is adopted as it is; its settings then come from our conf.d file).
public enum PostgresStep {
    public static let name = StepName.postgres
    public static let settingsMode: UInt32 = 0o644

    static let dropInText = """
        # Managed by HearthMinds bootstrap (hm-postgres): installing a postgresql-<version>
        # package creates no "main" cluster; hm-postgres creates the cluster it is configured for.
        create_main_cluster = false

        """

    static let startConfText = "# Managed by HearthMinds bootstrap (hm-postgres): start this cluster with the host.\nauto\n"

    public static func make(_ config: HearthConfig) -> Step {
        let paths = ClusterPaths(config)
        let settings = ServerSettings(config)
        let session = ClusterSession(paths)
        return Step(
            name,
            preconditions(config) + installation(config, paths: paths)
                + configuration(config, paths: paths, settings: settings)
                + server(config, paths: paths, settings: settings, session: session))
    }

    /// What must hold before anything is installed or written: POSTGRES_HOST is an address of
    /// this host, and neither the cluster's name (at another version) nor its port is another
    /// cluster's.
    static func preconditions(_ config: HearthConfig) -> [Action] {
        let version = config.pgVersion
        let port = config.port
        // Every cluster of the host, read once for the two conflict checks (nothing is changed
        // before both have run).
        let clusters = Once { try DebianClusters.list() }

        return (ClusterRestore.guardAction(config).map { [$0] } ?? []) + [
            .assertion("POSTGRES_HOST \(config.host) is an address of this host") {
                try requireLocalAddress(config.host)
                return true
            },
            .assertion("no cluster named \(config.clusterName) of another PostgreSQL version") {
                let others = try clusters.get().filter {
                    $0.name == config.clusterName && $0.version != version
                }
                if let other = others.first {
                    throw Failure.hostWrong(
                        "cluster \(other.id) exists: PG_CLUSTER_NAME \(config.clusterName) is taken by PostgreSQL "
                            + "\(other.version), not \(version); upgrade it (pg_upgradecluster) or choose another "
                            + "PG_CLUSTER_NAME")
                }
                return true
            },
            .assertion("port \(port) is not another cluster's") {
                let others = try clusters.get().filter {
                    $0.port == port && !($0.version == version && $0.name == config.clusterName)
                }
                if let other = others.first {
                    throw Failure.hostWrong(
                        "POSTGRES_PORT \(port) is the port of cluster \(other.id) (pg_lsclusters); choose another "
                            + "POSTGRES_PORT or move that cluster")
                }
                return true
            },
        ]
    }

    /// PostgreSQL's packages, installed without a cluster of postgresql-common's own, and the
    /// cluster.
    static func installation(_ config: HearthConfig, paths: ClusterPaths) -> [Action] {
        let version = config.pgVersion
        let port = config.port
        let packages = ["postgresql-\(version)", "postgresql-client-\(version)"]
        let halfMade = Box<[String]>()

        return [
            Action(
                "postgresql-common creates no cluster by itself (\(DebianClusters.createClusterDropIn))",
                check: {
                    let (directory, file) = try OpenDirectory.split(DebianClusters.createClusterDropIn)
                    return try OpenDirectory.openIfPresent(directory)?.textIfFile(file) == dropInText
                },
                apply: {
                    let (directory, file) = try OpenDirectory.split(DebianClusters.createClusterDropIn)
                    try OpenDirectory.makePath(directory).write(file, dropInText, mode: 0o644, uid: 0, gid: 0)
                },
                preview: {
                    let (directory, file) = try OpenDirectory.split(DebianClusters.createClusterDropIn)
                    return try DryRunPreview.file(
                        DebianClusters.createClusterDropIn, in: OpenDirectory.openIfPresent(directory), file,
                        text: dropInText, mode: 0o644, uid: 0, gid: 0)
                }),
            Action(
                "dpkg has no interrupted work (as apt asks: dpkg --configure -a)",
                check: {
                    // (once no other dpkg or apt is at work: theirs are not interrupted packages)
                    guard let unfinished = try await Apt.unfinished() else {
                        throw Failure("cannot read dpkg's status file (\(DpkgStatus.defaultDirectory)/status)")
                    }
                    return !unfinished.journal && unfinished.packages.isEmpty
                },
                apply: {
                    // A package whose unpack was cut must be reinstalled, which apt cannot do for the
                    // release's own pgvector package (no apt source has it): from its file.
                    let installer = PgvectorInstaller(config)
                    var files: [String: String] = [:]
                    if case .package(let path)? = try? await installer.shippedPackage() { files[installer.aptPackage] = path }
                    try await Apt.finishInterrupted(reinstallFrom: files)
                }),
            Action(
                "packages \(packages.joined(separator: ", ")) installed",
                check: { try await missingPackages(packages).isEmpty },
                apply: { try await install(packages) }),
            Action(
                "cluster \(paths.id) exists (UTF-8)",
                check: { try DebianClusters.find(paths) != nil },
                apply: {
                    // What a cut pg_createcluster left first (it would be adopted, half made).
                    halfMade.value = try await ClusterTools.removeHalfMade(paths)
                    // As the postgres account (ClusterTools: a configuration directory that account
                    // prepared would have root write through its links).
                    try await ClusterTools.create(paths, port: port)
                },
                note: {
                    guard let removed = halfMade.value, !removed.isEmpty else { return "" }
                    return "an interrupted pg_createcluster's half-made cluster removed first: "
                        + removed.joined(separator: ", ")
                }),
        ]
    }

    /// The cluster's configuration: the TLS pair where logins come from beyond loopback, our
    /// settings file, and start.conf.
    static func configuration(_ config: HearthConfig, paths: ClusterPaths, settings: ServerSettings) -> [Action] {
        let settingsText = settings.render(clusterID: paths.id)
        let port = config.port

        return [
            .assertion("TLS certificate and key for logins beyond loopback are in place (when there are such logins)") {
                guard let tls = settings.tls else { return true }
                for (key, path) in [("PG_SSL_CERT_FILE", tls.cert), ("PG_SSL_KEY_FILE", tls.key)]
                where !FileSystem.exists(path) {
                    // Not a hostWrong failure: on a fresh host (a dry run) the packages that make the
                    // snakeoil pair are not installed yet.
                    throw Failure(
                        "\(path) is missing: password logins from beyond loopback (POSTGRES_HOST, PG_ALLOWED_NETWORKS) "
                            + "need TLS; set \(key) (with its pair), or make Debian's snakeoil pair "
                            + "(make-ssl-cert generate-default-snakeoil, package ssl-cert)")
                }
                return true
            },
            Action(
                "\(paths.settingsFile): listen_addresses '\(settings.listenAddresses)', port \(port), scram-sha-256",
                check: {
                    // Through handles: the configuration tree is the postgres account's.
                    guard let conf = try paths.configDirectoryIfPresent()?.directory(ClusterPaths.confDirectoryName),
                        let status = try conf.entry(DebianClusters.settingsFileName), status.kind == .file
                    else { return false }
                    return try conf.holds(DebianClusters.settingsFileName, settingsText) && status.mode == settingsMode
                },
                apply: {
                    let directory = try paths.openConfigDirectory()
                    let owner = directory.status
                    let conf = try directory.makeDirectory(
                        ClusterPaths.confDirectoryName, mode: 0o755, uid: owner.uid, gid: owner.gid)
                    try conf.write(
                        DebianClusters.settingsFileName, settingsText, mode: settingsMode, uid: owner.uid, gid: owner.gid)
                },
                preview: {
                    // (a new cluster's configuration directory: the file is new)
                    let directory = try paths.configDirectoryIfPresent()
                    return try DryRunPreview.file(
                        paths.settingsFile, in: directory?.directory(ClusterPaths.confDirectoryName),
                        DebianClusters.settingsFileName, text: settingsText, mode: settingsMode, uid: directory?.status.uid,
                        gid: directory?.status.gid)
                }),
            Action(
                "cluster \(paths.id) starts with the host (start.conf: auto)",
                check: { try startMode(paths) == "auto" },
                apply: {
                    let directory = try paths.openConfigDirectory()
                    try directory.write(
                        ClusterPaths.startConfName, startConfText, mode: 0o644, uid: directory.status.uid,
                        gid: directory.status.gid)
                },
                preview: {
                    let directory = try paths.openConfigDirectory()
                    return try DryRunPreview.file(
                        paths.startConf, in: directory, ClusterPaths.startConfName, text: startConfText, mode: 0o644,
                        uid: directory.status.uid, gid: directory.status.gid)
                }),
        ]
    }

    /// The server: running, with our settings (restarted or reloaded when they changed), and
    /// answering as PostgreSQL PG_VERSION with UTF-8 databases.
    static func server(_ config: HearthConfig, paths: ClusterPaths, settings: ServerSettings, session: ClusterSession)
        -> [Action]
    {
        let version = config.pgVersion
        let staleRemoved = Box<Bool>()
        let reloaded = Box<String>()

        return [
            Action(
                "cluster \(paths.id) is running",
                check: {
                    guard let dataDirectory = try DebianClusters.find(paths)?.dataDirectory else { return false }
                    return PostmasterStatus.read(dataDirectory: dataDirectory) != nil
                },
                apply: {
                    session.reset()
                    if let dataDirectory = try DebianClusters.find(paths)?.dataDirectory {
                        staleRemoved.value = try await ClusterTools.removeStalePidFile(dataDirectory)
                    }
                    try await start(paths)
                },
                note: {
                    staleRemoved.value == true
                        ? "a stale postmaster.pid (a power cut's, its pid now another process's) removed first" : ""
                }),
            InstalledServer.action(
                paths, pgVersion: version, connection: { try session.get() }, reset: { session.reset() }),
            Action(
                "the server runs with our settings (restarted or reloaded when they changed)",
                check: { try settingsDifferences(session.get(), settings, ownFile: paths.settingsFile).isEmpty },
                apply: {
                    let differences = try settingsDifferences(session.get(), settings, ownFile: paths.settingsFile)
                    let needRestart = differences.filter { ServerSettings.restartSettings.contains($0.name) }.map(\.name)
                    reloaded.value = needRestart.isEmpty
                        ? "reloaded (" + differences.map(\.name).joined(separator: ", ") + " changed)"
                        : "restarted: " + needRestart.joined(separator: ", ") + " take a restart"
                    session.reset()
                    try await ClusterTools.control(paths, needRestart.isEmpty ? "reload" : "restart")
                },
                verify: {
                    // A reload is a signal: the server takes a moment to read the files again.
                    var differences: [SettingDifference] = []
                    for attempt in 0..<50 {
                        if attempt > 0 { usleep(100_000) }
                        session.reset()
                        differences = try settingsDifferences(session.get(), settings, ownFile: paths.settingsFile)
                        if differences.isEmpty { return true }
                    }
                    throw Failure(
                        "the server still runs with other settings:\n"
                            + differences.map(\.description).joined(separator: "\n"))
                },
                note: { reloaded.value ?? "" }),
            .assertion("cluster \(paths.id) answers (pg_isready) as PostgreSQL \(version), UTF-8") {
                let (_, status) = try DebianClusters.running(paths)
                // What pg_isready asks, through libpq in this process (PQpingParams).
                let ready = PGConnection.ping(host: status.socketDirectory, port: status.port)
                guard ready == .ok else {
                    throw Failure("pg_isready on \(status.socketDirectory) port \(status.port): \(ready)")
                }
                let connection = try session.get()
                let shown = try connection.query("SHOW server_version").scalar ?? ""
                let major = Int(shown.prefix(while: { $0.isNumber }))
                guard major == version else {
                    throw Failure.hostWrong("cluster \(paths.id) runs PostgreSQL \(shown), not \(version)")
                }
                // New databases take template1's encoding.
                let encoding = try connection.query(
                    "SELECT pg_encoding_to_char(encoding) FROM pg_database WHERE datname = 'template1'"
                ).scalar ?? ""
                guard encoding == "UTF8" else {
                    throw Failure.hostWrong(
                        "cluster \(paths.id) has encoding \(encoding), not UTF8: its databases could not hold "
                            + "every text; recreate it (pg_dropcluster, then rerun) or choose another PG_CLUSTER_NAME")
                }
                return true
            },
        ]
    }

    /// A non-local POSTGRES_HOST is an error: the server could not listen there.
    static func requireLocalAddress(_ host: String) throws {
        if HostAddresses.isWildcard(host) {
            throw Failure.hostWrong(
                "POSTGRES_HOST \(host) is the wildcard address, not one address of this host; name the address to "
                    + "listen on (PG_ALLOWED_NETWORKS says who may connect)")
        }
        switch HostAddresses.locality(host) {
        case .local: return
        case .notLocal:
            throw Failure.hostWrong(
                "POSTGRES_HOST \(host) is not an address of this host (no interface has it); use one of its "
                    + "addresses (ip -br addr) or 127.0.0.1")
        case .unusable(let why):
            throw Failure.hostWrong("POSTGRES_HOST \(host): \(why)")
        }
    }

    /// The packages dpkg has not installed: from its status file (DpkgStatus), or dpkg-query
    /// when that cannot answer.
    static func missingPackages(_ packages: [String]) async throws -> [String] {
        if let installed = DpkgStatus.installed(Set(packages)) {
            return packages.filter { !installed.contains($0) }
        }
        var missing: [String] = []
        for package in packages {
            let result = try await Command.run(["dpkg-query", "--show", "--showformat=${Status}", package])
            if !(result.succeeded && result.stdout.hasSuffix("install ok installed")) { missing.append(package) }
        }
        return missing
    }

    /// From fresh lists (apt-get update first): an image's or a stale host's lists would install
    /// an older PostgreSQL that the next package needing a newer one upgrades under the running
    /// server (InstalledServer).
    static func install(_ packages: [String]) async throws {
        try await Apt.install(try await missingPackages(packages), updateFirst: true)
    }

    /// `pg_ctlcluster start`. Where systemd runs, that is `systemctl start` of the cluster's unit,
    /// whose failure says only "Job ... failed": the cause (a port in use, say) is in the
    /// cluster's log, so the end of that log is part of the error. The log is read as the
    /// cluster's owner (its path and the file are that account's to choose: root reads nothing
    /// through them that the owner could not).
    static func start(_ paths: ClusterPaths) async throws {
        var message: String
        do {
            try await ClusterTools.control(paths, "start")
            return
        } catch {
            message = "\(error)"
        }
        // (with a deadline: the file may be a FIFO, or endless, of the owner's choosing)
        if let cluster = try? DebianClusters.find(paths), let logFile = await DebianClusters.logFile(paths),
            // (never as root: the owner is the data directory's, which the configuration names)
            let owner = cluster.owner.flatMap(SystemAccount.lookup), owner.uid != 0,
            let tail = try? await Command.run(["tail", "-n", "12", "--", logFile], asUser: owner, timeout: 10),
            tail.succeeded
        {
            let lines = lastStartLines(tail.stdout)
            // (without systemd, pg_ctlcluster shows those lines itself)
            if let last = lines.last, !message.contains(last) {
                message += "\nthe end of the cluster's log \(logFile):\n" + lines.joined(separator: "\n")
            }
        }
        throw Failure(message)
    }

    /// The lines of a cluster's log from its last start (the server's "starting PostgreSQL",
    /// then pg_ctl's own lines), at most 12; without such a line, the last 12.
    static func lastStartLines(_ log: String) -> [Substring] {
        let lines = log.split(separator: "\n").suffix(12)
        if let start = lines.lastIndex(where: { $0.contains("starting PostgreSQL") }) {
            return Array(lines[start...])
        }
        return Array(lines)
    }

    /// The first word of start.conf (auto, manual or disabled); "" when it is no file (missing,
    /// or a link in its place, which is not followed).
    static func startMode(_ paths: ClusterPaths) throws -> String {
        // (a file larger than any start.conf is not read: it is not ours, and is replaced)
        let text: String?
        do { text = try paths.openConfigDirectory().textIfFile(ClusterPaths.startConfName, limit: 64 << 10) } catch let error as Failure where error.kind == .tooLarge {
            return ""
        }
        guard let text else { return "" }
        for line in text.split(separator: "\n") {
            let word = String(line.prefix(while: { $0 != "#" })).trimmingCharacters(in: " \t")
            if !word.isEmpty { return word }
        }
        return ""
    }

    struct SettingDifference: CustomStringConvertible {
        let name: String
        let running: String
        let wanted: String
        let source: String

        var description: String { "\(name) is '\(running)'\(source), not '\(wanted)'" }
    }

    /// Our settings whose running values differ from what we want, with where they come from;
    /// and the tuned settings we no longer set (PG_TUNE=false) that the server still holds from
    /// our file `ownFile`, or whose change waits for a restart.
    static func settingsDifferences(_ connection: PGConnection, _ settings: ServerSettings, ownFile: String? = nil)
        throws -> [SettingDifference]
    {
        let released = ServerTuning.settings.map(\.name).filter { name in !settings.values.contains { $0.name == name } }
        let rows = try connection.query(
            "SELECT name, setting, coalesce(sourcefile || ':' || sourceline, source), pending_restart, sourcefile "
                + "FROM pg_catalog.pg_settings WHERE name = ANY($1::text[])",
            [PGArray.literal(settings.values.map(\.name) + released)]
        ).decode((String, String, String, Bool, String?).self)
        var running: [String: (String, String, Bool, String?)] = [:]
        for (name, setting, source, pendingRestart, file) in rows { running[name] = (setting, source, pendingRestart, file) }
        var differences: [SettingDifference] = []
        for (name, wanted) in settings.values {
            guard let (value, source, pending, _) = running[name] else {
                throw Failure("the server has no setting \(name)")
            }
            if value != wanted || pending {
                differences.append(
                    SettingDifference(
                        name: name, running: value, wanted: wanted,
                        source: " (from \(source)\(pending ? "; a restart is pending" : ""))"))
            }
        }
        for name in released {
            guard let (value, source, pending, file) = running[name] else { continue }
            if pending || (ownFile != nil && file == ownFile) {
                differences.append(
                    SettingDifference(
                        name: name, running: value, wanted: "PostgreSQL's own (PG_TUNE=false)",
                        source: " (from \(source)\(pending ? "; a restart is pending" : ""))"))
            }
        }
        return differences
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<PostgresStep>).
extension PostgresStep: StepDefinition {
    public static let abstract = "install PostgreSQL and run the cluster with our settings"
    public static let discussion = """
        Installs postgresql-<PG_VERSION> and its client with apt-get when missing (postgresql-common \
        is told to create no cluster of its own), creates the cluster with pg_createcluster (UTF-8, \
        POSTGRES_PORT), writes our settings to its conf.d/hearthminds.conf (listen_addresses from \
        POSTGRES_HOST, port, password_encryption = scram-sha-256, and memory, parallelism, costs, \
        WAL and checkpoints sized to the machine's RAM and cores unless PG_TUNE=false; each \
        overridable by its key, PG_SHARED_BUFFERS and the others), starts it (restarting or reloading \
        when a setting changed) and checks that it answers as PostgreSQL PG_VERSION. A cluster of that \
        name of another version, or another cluster on POSTGRES_PORT, is a false result.
        """

    public static func build(_ context: StepContext, flags: NoStepFlags) throws -> Step {
        PostgresStep.make(context.config)
    }
}
