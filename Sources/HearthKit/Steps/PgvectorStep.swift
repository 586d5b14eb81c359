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
/// `pgvector`: the vector extension's files installed into PostgreSQL PG_VERSION (see
/// PgvectorInstaller for the methods), then proved on the configured cluster: the server
/// offers `vector` at the installed version (pg_available_extensions), and CREATE EXTENSION
/// vector works: in a transaction of the `postgres` database that is rolled back, or, where
/// `postgres` has vector already, in a scratch database that is dropped after.
///
/// A converged host costs two file reads and two short connections: no apt-get update, no
/// download, no build.
public enum PgvectorStep {
    public static let name = StepName.pgvector
    /// The scratch database of the CREATE EXTENSION check (dropped before and after).
    public static let scratchDatabase = "hm_pgvector_check"

    /// - Parameters:
    ///   - installOnly: install the extension's files only, without the cluster checks (build
    ///     and test hosts, whose clusters are throwaway ones).
    ///   - server: where the cluster checks connect (as its superuser, PGServer.admin); the
    ///     configured cluster (Debian's socket directory, POSTGRES_PORT) by default.
    public static func make(
        _ config: HearthConfig, installOnly: Bool = false, server: PGServer? = nil,
        installer: PgvectorInstaller? = nil
    ) -> Step {
        make(StepContext(config, server: server), installOnly: installOnly, installer: installer)
    }

    public static func make(
        _ context: StepContext, installOnly: Bool = false, installer: PgvectorInstaller? = nil
    ) -> Step {
        let config = context.config
        let installer = installer ?? PgvectorInstaller(config)
        let server = context.server
        let version = config.pgVersion
        // The version an apply installed in this run (the check of a converged host reads the
        // installed control file instead).
        let installed = Box<PgvectorInstaller.Installed>()
        // The superuser's connection to `postgres` the cluster checks share.
        let connections = context.connections

        /// The version the server must offer: what this run installed, else what is installed.
        func expectedVersion() throws -> String {
            if let value = installed.value { return value.version }
            guard let found = installer.installedVersion() else {
                throw Failure("pgvector is not installed for PostgreSQL \(version) (\(installer.controlFile))")
            }
            return found
        }

        var actions: [Action] = [
            .assertion("PostgreSQL \(version) server is installed") {
                guard FileSystem.exists(installer.serverBinary) else {
                    // Not a hostWrong failure: in a dry run the postgres step may be about to install it.
                    throw Failure("\(installer.serverBinary) is missing: install postgresql-\(version) (the postgres step)")
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
                        throw Failure("\(installer.controlFile) states \(have), but \(want) was installed")
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
            // apt may have upgraded the server for the package (its Depends): not under a
            // running server of the old version
            InstalledServer.action(
                ClusterPaths(config), pgVersion: version, connection: { try connections.get() },
                reset: { connections.reset() }),
            .assertion("server on port \(server.port) offers vector at the installed version") {
                let want = try expectedVersion()
                let connection = try connections.get()
                let offered = try connection.query(
                    "SELECT default_version FROM pg_available_extensions WHERE name = $1", ["vector"]
                ).scalar
                guard let offered else {
                    throw Failure("pg_available_extensions has no vector on port \(server.port)")
                }
                guard offered == want else {
                    throw Failure.hostWrong("the server offers vector \(offered), but \(want) is installed")
                }
                return true
            },
            .assertion("CREATE EXTENSION vector works (rolled back)") {
                try createExtensionInScratchDatabase(server, expecting: try expectedVersion(), admin: try connections.get())
            },
            upgradeAction(config, server: server, connections: connections),
        ]
        return Step(name, actions)
    }

    /// A host with an older pgvector (issue 24): `vector` in each of our databases that has it
    /// at an older version than the server now offers is updated (`ALTER EXTENSION vector
    /// UPDATE`, as the role that owns the extension, the update script away from the tenant's
    /// public: TenantExtensions.update), reported as a change naming each database and version.
    static func upgradeAction(_ config: HearthConfig, server: PGServer, connections: AdminConnections) -> Action {
        let updated = Box<[String]>()
        /// Our databases that exist, with vector older than offered: (database, version, owner).
        func behind() throws -> [(String, String, String)] {
            let existing = Set(
                try connections.get().query(
                    "SELECT datname::text FROM pg_catalog.pg_database WHERE datname = ANY($1::text[]) AND datallowconn",
                    [PGArray.literal(config.databases)]
                ).rows.compactMap { $0[0] })
            var found: [(String, String, String)] = []
            for database in config.databases where existing.contains(database) {
                let db = try server.admin(database)
                if let row = try TenantExtensions.installed("vector", db), row.version != row.offered {
                    found.append((database, row.version, row.owner))
                }
            }
            return found
        }
        return Action(
            "vector at the installed version in every database (ALTER EXTENSION vector UPDATE, as its owner)",
            check: { try behind().isEmpty },
            apply: {
                var done: [String] = []
                for (database, version, owner) in try behind() {
                    let db = try server.admin(database)
                    try TenantExtensions.update("vector", in: db, as: owner)
                    let now = try TenantExtensions.installed("vector", db)?.version ?? "?"
                    done.append("\(database) \(version) → \(now)")
                }
                updated.value = done
            },
            note: { (updated.value ?? []).isEmpty ? "" : "updated: " + (updated.value ?? []).joined(separator: ", ") })
    }

    /// Creates the extension, checks its version and a cosine distance, and leaves nothing
    /// behind (also when a check fails). Where the `postgres` database has no vector (the usual
    /// case) that is one transaction there, rolled back: no database is made, which on a
    /// converged host saves ~0.3 s of the step's ~0.4 s (bench/RESULTS.md). Otherwise it
    /// creates `scratchDatabase` (from template0) and drops it again. The extension goes to
    /// `public`, the proof finds it there (a superuser session searches only pg_catalog:
    /// PGServer.pinnedSettings); neither database is a tenant's.
    static func createExtensionInScratchDatabase(
        _ server: PGServer, expecting version: String, admin: PGConnection? = nil
    ) throws -> Bool {
        let admin = try admin ?? server.admin()
        // No "does not exist, skipping" notice on the console.
        try admin.execute("SET client_min_messages = warning")
        if try admin.query("SELECT count(*) FROM pg_extension WHERE extname = $1", ["vector"]).scalar == "0" {
            try admin.execute("BEGIN")
            defer { _ = try? admin.execute("ROLLBACK") }
            try admin.execute("SET LOCAL search_path TO public")
            try admin.execute("CREATE EXTENSION vector")
            return try proveExtension(admin, expecting: version)
        }
        // A dry run makes and drops nothing: the proof needs a database, so it stays unknown.
        if StepRunner.dryRunning {
            throw Failure(
                "not proved in a dry run: `postgres` has vector already, and the proof needs the scratch database "
                    + "\(scratchDatabase), which a dry run does not make")
        }
        let scratch = try admin.identifier(scratchDatabase)
        try requireScratchOrNone(admin)
        try admin.execute("DROP DATABASE IF EXISTS \(scratch) WITH (FORCE)")
        // (its connection limit is the signature that survives a cut before the comment)
        try admin.execute("CREATE DATABASE \(scratch) TEMPLATE template0 CONNECTION LIMIT \(scratchConnectionLimit)")
        try admin.execute("COMMENT ON DATABASE \(scratch) IS \(try admin.literal(scratchMark))")
        defer { try? admin.execute("DROP DATABASE IF EXISTS \(scratch) WITH (FORCE)") }
        return try { () throws -> Bool in  // the connection closes before the database is dropped
            let connection = try server.admin(scratchDatabase)
            try connection.execute("SET search_path TO public")
            try connection.execute("CREATE EXTENSION vector")
            return try proveExtension(connection, expecting: version)
        }()
    }

    /// The scratch database's comment, and its connection limit (the check's one session): what
    /// tells a database of that name as the suite's own, also when a cut came between its
    /// CREATE and its COMMENT.
    static let scratchMark = "HearthMinds bootstrap (hm-pgvector): scratch database of the CREATE EXTENSION check; dropped after it."
    static let scratchConnectionLimit = 2

    /// A database named `scratchDatabase` that is not the suite's scratch (another owner than the
    /// session's superuser, another comment and connection limit) is never dropped: a false
    /// result naming it.
    static func requireScratchOrNone(_ admin: PGConnection) throws {
        guard
            let (ownerIsUs, comment, connectionLimit) = try admin.query(
                """
                SELECT pg_catalog.pg_get_userbyid(d.datdba) = current_user,
                       pg_catalog.shobj_description(d.oid, 'pg_database'), d.datconnlimit
                FROM pg_catalog.pg_database d WHERE d.datname = $1
                """, [scratchDatabase]
            ).decodeFirst((Bool, String?, Int).self)
        else { return }
        let marked = comment == scratchMark
        let cutBeforeComment = comment == nil && connectionLimit == scratchConnectionLimit
        guard ownerIsUs && (marked || cutBeforeComment) else {
            throw Failure.hostWrong(
                "a database \(scratchDatabase) exists that is not the suite's scratch database (owner, comment or "
                    + "connection limit differ): the pgvector check would drop it; rename it, or drop it if it is "
                    + "not needed, and rerun")
        }
    }

    /// The extension just created in `db` is at `version` and computes a cosine distance.
    private static func proveExtension(_ db: PGConnection, expecting version: String) throws -> Bool {
        let extversion = try db.query("SELECT extversion FROM pg_extension WHERE extname = $1", ["vector"]).scalar
        let distance = try db.query("SELECT round(('[1,0,0]'::vector(3) <=> '[0,1,0]'::vector(3))::numeric, 6)").scalar
        guard extversion == version else {
            throw Failure.hostWrong("CREATE EXTENSION vector made version \(extversion ?? "none"), not \(version)")
        }
        guard distance == "1.000000" else {
            throw Failure.hostWrong("cosine distance of orthogonal vectors is \(distance ?? "NULL"), not 1")
        }
        return true
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<PgvectorStep>).
extension PgvectorStep: StepDefinition {
    public typealias Flags = PgvectorFlags
    public static let abstract = "install pgvector into PostgreSQL and prove CREATE EXTENSION vector on the cluster"
    public static let discussion = """
        Debian 12 has no pgvector package. PGVECTOR_INSTALL_METHOD=auto tries, in order: \
        apt (postgresql-<PG_VERSION>-pgvector, when the host's apt sources offer it), \
        shipped (the release tarball's packages/postgresql-<PG_VERSION>-pgvector_*_<arch>.deb, \
        installed by apt-get from the file), debian-source (Debian's pgvector source package of \
        PGVECTOR_DEBIAN_SUITE, fetched from the host's own Debian mirror through a temporary apt \
        configuration and checked by apt against the archive's signed index), then tarball \
        (PGVECTOR_SOURCE, a path or URL, which must match PGVECTOR_SHA256; only when set). \
        Sources are built portably against /usr/lib/postgresql/<PG_VERSION>/bin/pg_config, and \
        the packages installed for the build are removed again afterwards: no compiler stays. \
        The install action says which method ran and why. Then the cluster on POSTGRES_PORT \
        (socket /var/run/postgresql, peer as postgres) must offer vector at the installed \
        version and CREATE EXTENSION vector must work (in a transaction that is rolled back); \
        vector in each of our databases at an older version is updated (ALTER EXTENSION vector \
        UPDATE, as its owner, the script away from the tenant's public schema). \
        A host where pgvector is installed downloads and builds nothing.
        """
    public static var needs: [any StepDefinition.Type] { [PostgresStep.self] }

    public static func build(_ context: StepContext, flags: PgvectorFlags) throws -> Step {
        PgvectorStep.make(context, installOnly: flags.installOnly)
    }
}
