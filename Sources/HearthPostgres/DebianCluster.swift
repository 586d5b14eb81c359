import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// A cluster as Debian's postgresql-common knows it (what `pg_lsclusters` shows), read from
/// the files pg_lsclusters reads (see ClusterProbe).
public struct ClusterInfo: Sendable, Equatable {
    public let version: Int
    public let name: String
    /// The port its configuration names (postgresql.conf, its includes and postgresql.auto.conf;
    /// 5432 when none does); nil when its configuration cannot be read.
    public let port: Int?
    public let online: Bool
    /// The account owning its data directory; nil when that is unknown.
    public let owner: String?
    public let dataDirectory: String?
    /// The server's log file (pg_lsclusters' last column; "" when it shows none or is not asked:
    /// see DebianClusters.logFile).
    public var logFile: String = ""

    public init(version: Int, name: String, port: Int?, online: Bool, owner: String?, dataDirectory: String?) {
        self.version = version
        self.name = name
        self.port = port
        self.online = online
        self.owner = owner
        self.dataDirectory = dataDirectory
    }

    public var id: String { "\(version)/\(name)" }
}

/// Where a Debian cluster's files are: everything derives from PG_VERSION and PG_CLUSTER_NAME,
/// so the tests' clusters and the real host share the code.
public struct ClusterPaths: Sendable, Equatable {
    public let version: Int
    public let name: String

    public init(version: Int, name: String) {
        self.version = version
        self.name = name
    }

    public init(_ config: HearthConfig) {
        self.init(version: config.pgVersion, name: config.clusterName)
    }

    public static let hbaFileName = "pg_hba.conf"
    public static let identFileName = "pg_ident.conf"
    public static let confDirectoryName = "conf.d"
    public static let startConfName = "start.conf"

    public var configDirectory: String { "/etc/postgresql/\(version)/\(name)" }
    public var hbaFile: String { configDirectory + "/" + Self.hbaFileName }
    public var identFile: String { configDirectory + "/" + Self.identFileName }
    public var confDirectory: String { configDirectory + "/" + Self.confDirectoryName }
    /// The one settings file we own.
    public var settingsFile: String { confDirectory + "/" + DebianClusters.settingsFileName }
    public var startConf: String { configDirectory + "/" + Self.startConfName }
    public var binDirectory: String { "/usr/lib/postgresql/\(version)/bin" }
    public var id: String { "\(version)/\(name)" }
    /// The systemd unit of the cluster (postgresql-common's template unit; its generator starts
    /// it at boot when start.conf is auto).
    public var systemdUnit: String { "postgresql@\(version)-\(name).service" }

    /// Where the cluster owner's tree starts: postgresql-common makes /etc/postgresql and
    /// everything below it the postgres account's.
    public static let configRoot = "/etc/postgresql"

    /// The trust rule for the configuration tree: root's directories, and below /etc/postgresql
    /// the postgres account's too (the cluster owner, whose superuser reaches it).
    public static var configTrust: DirectoryTrust {
        guard let postgres = SystemAccount.lookup("postgres") else { return .root }
        return .account(postgres.uid, from: configRoot)
    }

    /// The cluster's configuration directory, reached without following a link the postgres
    /// account could plant (see OpenDirectory); nil when it does not exist.
    public func configDirectoryIfPresent() throws -> OpenDirectory? {
        try OpenDirectory.openIfPresent(configDirectory, trust: Self.configTrust)
    }

    /// The cluster's configuration directory; an error naming it when it does not exist.
    public func openConfigDirectory() throws -> OpenDirectory {
        guard let directory = try configDirectoryIfPresent() else {
            throw Failure("no cluster \(id): \(configDirectory) does not exist (run hm-postgres)", needs: StepName.postgres)
        }
        return directory
    }
}

/// What a running postmaster writes to `<data directory>/postmaster.pid`.
public struct PostmasterStatus: Sendable, Equatable {
    public let pid: Int32
    public let dataDirectory: String
    public let port: Int
    public let socketDirectory: String
    /// The first listen address ("*" for all, "" for none).
    public let listenAddress: String
    /// "starting", "stopping", "ready", "standby" (empty on old servers).
    public let state: String

    /// Parses the file's lines (see PostgreSQL's pidfile.h); nil when it is not one.
    public static func parse(_ text: String) -> PostmasterStatus? {
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map {
            String($0).trimmingCharacters(in: " ")
        }
        guard lines.count >= 5, let pid = Int32(lines[0]), let port = Int(lines[3]) else { return nil }
        return PostmasterStatus(
            pid: pid, dataDirectory: lines[1], port: port, socketDirectory: lines[4],
            listenAddress: lines.count > 5 ? lines[5] : "", state: lines.count > 7 ? lines[7] : "")
    }

    /// The status of the postmaster of `dataDirectory`, when one is running there. The file is
    /// read without following a link (the data directory is the cluster owner's), and only when
    /// it is small, as the server writes it (a few lines).
    public static func read(dataDirectory: String) -> PostmasterStatus? {
        guard let directory = try? OpenDirectory.openIfPresent(dataDirectory, trust: .reading),
            let text = try? directory.textIfFile("postmaster.pid", limit: 64 << 10),
            let status = parse(text), status.pid > 0, kill(status.pid, 0) == 0 || errno == EPERM,
            isPostgres(status.pid)
        else { return nil }
        return status
    }

    /// Whether process `pid` is a PostgreSQL server: its executable is a server binary of
    /// Debian's layout, `/usr/lib/postgresql/<major>/bin/postgres` (with " (deleted)" after an
    /// upgrade replaced it under the running server, which the postgres step then restarts). The
    /// server leaves postmaster.pid behind when it is killed: after a power cut and a reboot the
    /// pid it names is often another process's (pids start again from 1), which `kill 0` took
    /// for the server; postgresql-common asks whether the command line names `postgres`, which
    /// our own `hm-postgres`, or `su - postgres`, do too — and the steps then connected to a
    /// server that was not there instead of starting it.
    static func isPostgres(_ pid: Int32) -> Bool {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = buffer.withUnsafeMutableBufferPointer { readlink("/proc/\(pid)/exe", $0.baseAddress!, 4096) }
        guard n > 0 else { return false }
        return isServerExecutable(String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    /// `/usr/lib/postgresql/<digits>/bin/postgres`, optionally followed by " (deleted)".
    static func isServerExecutable(_ path: String) -> Bool {
        var rest = Substring(path)
        if rest.hasSuffix(" (deleted)") { rest = rest.dropLast(" (deleted)".count) }
        let prefix = "/usr/lib/postgresql/", suffix = "/bin/postgres"
        guard rest.hasPrefix(prefix), rest.hasSuffix(suffix) else { return false }
        let major = rest.dropFirst(prefix.count).dropLast(suffix.count)
        return !major.isEmpty && major.allSatisfy { $0.isASCII && $0.isNumber }
    }
}

/// postgresql-common's view of the host's clusters.
public enum DebianClusters {
    public static let settingsFileName = "hearthminds.conf"
    /// A createcluster.conf drop-in: postgresql-common then creates no "main" cluster when a
    /// postgresql-<version> package is installed, so the cluster is the one we create.
    public static let createClusterDropIn = "/etc/postgresql-common/createcluster.d/hearthminds.conf"

    /// The host's clusters, as `pg_lsclusters` lists them, read from their files in this
    /// process (ClusterProbe): a converged run starts no Perl.
    public static func list(configRoot: String = ClusterPaths.configRoot) throws -> [ClusterInfo] {
        try ClusterProbe(configRoot: configRoot).clusters()
    }

    public static func find(_ paths: ClusterPaths) throws -> ClusterInfo? {
        try ClusterProbe().cluster(version: paths.version, name: paths.name)
    }

    /// Parses `pg_lsclusters --no-header`: Ver Cluster Port Status Owner Datadir Logfile.
    public static func parse(_ text: String) throws(Failure) -> [ClusterInfo] {
        var clusters: [ClusterInfo] = []
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if fields.isEmpty { continue }
            guard fields.count >= 6, let version = Int(fields[0]), let port = Int(fields[2]) else {
                throw Failure("cannot read this line of pg_lsclusters: \(line)")
            }
            var cluster = ClusterInfo(
                version: version, name: fields[1], port: port, online: fields[3].hasPrefix("online"),
                owner: fields[4], dataDirectory: fields[5])
            cluster.logFile = fields.count > 6 ? fields[6] : ""
            clusters.append(cluster)
        }
        return clusters
    }

    /// The cluster's log file as pg_lsclusters tells it (Perl: only after a failed start, to show
    /// the log); nil when pg_lsclusters is missing or does not name one.
    public static func logFile(_ paths: ClusterPaths) async -> String? {
        guard Command.resolve("pg_lsclusters") != nil, let text = try? await ClusterTools.list(),
            let cluster = try? parse(text).first(where: { $0.version == paths.version && $0.name == paths.name }),
            cluster.logFile.hasPrefix("/")
        else { return nil }
        return cluster.logFile
    }

    /// The running server of the cluster, or an error saying why there is none (a dry run
    /// reports it as "cannot check yet").
    public static func running(_ paths: ClusterPaths) throws -> (ClusterInfo, PostmasterStatus) {
        guard let cluster = try find(paths) else { throw Failure("there is no cluster \(paths.id)", needs: StepName.postgres) }
        guard let dataDirectory = cluster.dataDirectory else {
            // A link in place of the configuration directory is not read through: refused, named.
            _ = try paths.openConfigDirectory()
            throw Failure("cluster \(paths.id) has no data directory that its configuration names")
        }
        guard let status = PostmasterStatus.read(dataDirectory: dataDirectory) else {
            throw Failure(
                "cluster \(paths.id) is not running (pg_ctlcluster \(paths.version) \(paths.name) start)", needs: StepName.postgres)
        }
        return (cluster, status)
    }
}

/// One superuser connection (PGServer.admin) to the running cluster (PGServer.running) for the
/// checks of a step, opened on first use and reused (a connection costs a backend: 3-10 ms on a
/// busy host); `reset()` after the server restarted or reloaded, or when a check needs a new
/// session.
public final class ClusterSession: @unchecked Sendable {
    public let paths: ClusterPaths
    private var connection: PGConnection?

    public init(_ paths: ClusterPaths) {
        self.paths = paths
    }

    public func get() throws -> PGConnection {
        if let connection { return connection }
        let made = try PGServer.running(paths).admin()
        connection = made
        return made
    }

    public func reset() {
        connection = nil
    }
}
