/// `pgvector`: the vector extension's files installed into PostgreSQL PG_VERSION (see
/// PgvectorInstaller for the methods), then proved on the configured cluster: the server
/// offers `vector` at the installed version (pg_available_extensions), and CREATE EXTENSION
/// vector works: in a transaction of the `postgres` database that is rolled back, or, where
/// `postgres` has vector already, in a scratch database that is dropped after.
///
/// A converged host costs two file reads and two short connections: no apt-get update, no
/// download, no build.
public enum PgvectorStep {
    public static let name = "pgvector"
    /// The scratch database of the CREATE EXTENSION check (dropped before and after).
    public static let scratchDatabase = "hm_pgvector_check"

    /// Where the cluster checks connect: a socket directory and port, by peer authentication
    /// as a system account that is a superuser of the cluster (postgres).
    public struct Cluster: Sendable {
        public var socketDirectory: String
        public var port: Int
        public var systemUser: String

        public init(socketDirectory: String = PGTarget.debianSocketDirectory, port: Int, systemUser: String = "postgres") {
            self.socketDirectory = socketDirectory
            self.port = port
            self.systemUser = systemUser
        }

        func connect(_ database: String) throws -> PGConnection {
            guard let account = SystemAccount.lookup(systemUser) else {
                throw HearthError("no system account \(systemUser): is PostgreSQL installed?")
            }
            return try PGConnection(
                PGTarget(host: socketDirectory, port: port, database: database, user: systemUser, asSystemUser: account))
        }
    }

    /// The superuser's connection to `postgres` the cluster checks share.
    final class Session: @unchecked Sendable {
        let cluster: Cluster
        var connection: PGConnection?

        init(_ cluster: Cluster) { self.cluster = cluster }

        func get() throws -> PGConnection {
            if let connection { return connection }
            let made = try cluster.connect("postgres")
            connection = made
            return made
        }
    }

    /// The version an apply installed in this run (the check of a converged host reads the
    /// installed control file instead).
    final class Installed: @unchecked Sendable {
        var value: PgvectorInstaller.Installed?
    }

    /// - Parameters:
    ///   - installOnly: install the extension's files only, without the cluster checks (build
    ///     and test hosts, whose clusters are throwaway ones).
    ///   - cluster: where the cluster checks connect; the configured cluster (Debian's socket
    ///     directory, POSTGRES_PORT) by default.
    public static func make(
        _ config: HearthConfig, installOnly: Bool = false, cluster: Cluster? = nil,
        installer: PgvectorInstaller? = nil
    ) -> Step {
        let installer = installer ?? PgvectorInstaller(config)
        let cluster = cluster ?? Cluster(port: config.port)
        let version = config.pgVersion
        let installed = Installed()
        let session = Session(cluster)

        /// The version the server must offer: what this run installed, else what is installed.
        func expectedVersion() throws -> String {
            if let value = installed.value { return value.version }
            guard let found = installer.installedVersion() else {
                throw HearthError("pgvector is not installed for PostgreSQL \(version) (\(installer.controlFile))")
            }
            return found
        }

        var actions: [Action] = [
            .assertion("PostgreSQL \(version) server is installed") {
                guard FileSystem.exists(installer.serverBinary) else {
                    // Not CheckFailed: in a dry run the postgres step may be about to install it.
                    throw HearthError("\(installer.serverBinary) is missing: install postgresql-\(version) (the postgres step)")
                }
                return true
            },
            Action(
                "pgvector installed for PostgreSQL \(version) (method \(config.pgvectorMethod.rawValue))",
                check: { installer.installedVersion() != nil },
                apply: { installed.value = try await installer.install() },
                verify: {
                    guard let want = installed.value?.version, let have = installer.installedVersion() else { return false }
                    guard have == want else {
                        throw HearthError("\(installer.controlFile) states \(have), but \(want) was installed")
                    }
                    return true
                },
                note: {
                    // which method ran and why; or, on a host that has pgvector, what it has
                    if let value = installed.value { return value.summary }
                    return await installer.installedNote()
                }),
        ]
        guard !installOnly else { return Step(name, actions) }

        actions += [
            .assertion("server on port \(cluster.port) offers vector at the installed version") {
                let want = try expectedVersion()
                let connection = try session.get()
                let offered = try connection.query(
                    "SELECT default_version FROM pg_available_extensions WHERE name = $1", ["vector"]
                ).scalar
                guard let offered else {
                    throw HearthError("pg_available_extensions has no vector on port \(cluster.port)")
                }
                guard offered == want else {
                    throw CheckFailed("the server offers vector \(offered), but \(want) is installed")
                }
                return true
            },
            .assertion("CREATE EXTENSION vector works (rolled back)") {
                try createExtensionInScratchDatabase(cluster, expecting: try expectedVersion(), admin: try session.get())
            },
        ]
        return Step(name, actions)
    }

    /// Creates the extension, checks its version and a cosine distance, and leaves nothing
    /// behind (also when a check fails). Where the `postgres` database has no vector (the usual
    /// case) that is one transaction there, rolled back: no database is made, which on a
    /// converged host saves ~0.3 s of the step's ~0.4 s (bench/RESULTS.md). Otherwise it
    /// creates `scratchDatabase` (from template0) and drops it again.
    static func createExtensionInScratchDatabase(
        _ cluster: Cluster, expecting version: String, admin: PGConnection? = nil
    ) throws -> Bool {
        let admin = try admin ?? cluster.connect("postgres")
        // No "does not exist, skipping" notice on the console.
        try admin.execute("SET client_min_messages = warning")
        if try admin.query("SELECT count(*) FROM pg_extension WHERE extname = $1", ["vector"]).scalar == "0" {
            try admin.execute("BEGIN")
            defer { _ = try? admin.execute("ROLLBACK") }
            try admin.execute("CREATE EXTENSION vector")
            return try proveExtension(admin, expecting: version)
        }
        let scratch = try admin.identifier(scratchDatabase)
        try admin.execute("DROP DATABASE IF EXISTS \(scratch) WITH (FORCE)")
        try admin.execute("CREATE DATABASE \(scratch) TEMPLATE template0")
        defer { try? admin.execute("DROP DATABASE IF EXISTS \(scratch) WITH (FORCE)") }
        return try { () throws -> Bool in  // the connection closes before the database is dropped
            let connection = try cluster.connect(scratchDatabase)
            try connection.execute("CREATE EXTENSION vector")
            return try proveExtension(connection, expecting: version)
        }()
    }

    /// The extension just created in `db` is at `version` and computes a cosine distance.
    private static func proveExtension(_ db: PGConnection, expecting version: String) throws -> Bool {
        let extversion = try db.query("SELECT extversion FROM pg_extension WHERE extname = $1", ["vector"]).scalar
        let distance = try db.query("SELECT round(('[1,0,0]'::vector(3) <=> '[0,1,0]'::vector(3))::numeric, 6)").scalar
        guard extversion == version else {
            throw CheckFailed("CREATE EXTENSION vector made version \(extversion ?? "none"), not \(version)")
        }
        guard distance == "1.000000" else {
            throw CheckFailed("cosine distance of orthogonal vectors is \(distance ?? "NULL"), not 1")
        }
        return true
    }
}
