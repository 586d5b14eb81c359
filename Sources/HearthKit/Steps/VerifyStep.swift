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
/// `verify`: a read-only check of the whole host. Every check is an assertion (a boolean in
/// the log); any false fails the step. Runs last in install.sh and on its own as hm-verify.
public enum VerifyStep {
    public static let name = StepName.verify
    /// How many other AI databases each AI tries to log in to, to be refused (besides the
    /// catalog's word for all of them).
    static let refusedLogins = 2

    /// `migrations`: the revisions every database must be at the head of (nil: Migrations/
    /// beside the executables); `clientDirectory`: where generated passwords are kept.
    ///
    /// The checks after the cluster's own (each login, each database) run side by side (an
    /// ActionGroup of `jobs`, by default Workers.defaultWidth bounded by the server's free
    /// connections): they are read-only and independent.
    public static func make(
        _ config: HearthConfig, server: PGServer? = nil, migrations: String? = nil,
        clientDirectory: String = ClientFiles.defaultDirectory, console: Console = Console(), jobs: Int? = nil
    ) -> Step {
        make(
            StepContext(
                config, server: server, clientDirectory: clientDirectory,
                migrations: migrations ?? MigrationSet.defaultDirectory(), jobs: jobs, console: console))
    }

    public static func make(_ context: StepContext) -> Step {
        DatabasesStep.warnAboutNamedPasswords(context.config, console: context.console, step: "hm-verify")
        // A database's owner logs in once for its login check, its extensions and its revision.
        let sessions = OwnerSessions(context.server, context.credentials, expected: DatabaseSpec.owners(context.config))
        let serial = systemUser(context.config) + clusterChecks(context)
            + BackupVerify.actions(context.config, server: context.server)
        let perDatabase = serviceLogin(context, sessions) + aiLogins(context, sessions)
            + extensionChecks(context, sessions) + revisionChecks(context, sessions)
            + storageChecks(context, sessions) + searchSettingChecks(context, sessions)
        let checks = managerLogin(context) + namedPasswords(context) + byDatabase(context.config, perDatabase)
        let connections = context.connections
        return Step(
            name,
            parts: serial.map(Step.Part.action)
                + [.group(ActionGroup(checks, width: context.width(perWorker: 2), finished: { connections.closeWorkers() }))])
    }

    /// A check of one database: the checks of each database follow one another (so its owner's
    /// login serves them all and is closed when they are done: OwnerSessions keeps a few idle
    /// logins, not one per database).
    typealias DatabaseCheck = (database: String, action: Action)

    /// The checks of each database, database by database (in the order of the configuration),
    /// each database's in the order given.
    static func byDatabase(_ config: HearthConfig, _ checks: [DatabaseCheck]) -> [Action] {
        let grouped = Dictionary(grouping: checks, by: \.database)
        var seen: Set<String> = []
        return config.databases.filter { seen.insert($0).inserted }.flatMap { grouped[$0]?.map(\.action) ?? [] }
    }

    /// The service account, as the service-user step makes it.
    private static func systemUser(_ config: HearthConfig) -> [Action] {
        [
            .assertion("system user \(config.serviceUser): system uid, own group, no login shell") {
                guard let account = SystemAccount.lookup(config.serviceUser) else {
                    throw Failure("no system user \(config.serviceUser)", needs: ServiceUserStep.name)
                }
                return account.uid <= SystemAccount.systemUIDMax() && account.gid == SystemAccount.groupID(config.serviceUser)
                    && account.shell == ServiceUserStep.shell
            }
        ]
    }

    /// The cluster: online at the configured version and port, its server the installed one,
    /// its pg_hba.conf without trust.
    private static func clusterChecks(_ context: StepContext) -> [Action] {
        let (config, connections) = (context.config, context.connections)
        return [
            .assertion("cluster \(config.pgVersion)/\(config.clusterName) online on port \(config.port) at version \(config.pgVersion)") {
                let row = try connections.get().query(
                    "SELECT current_setting('server_version_num')::int / 10000, current_setting('port')").first
                guard row?[0] == String(config.pgVersion), row?[1] == String(config.port) else {
                    throw Failure.hostWrong("the server answers with version \(row?[0] ?? "?") on port \(row?[1] ?? "?")")
                }
                return true
            },
            .assertion("the server runs the installed PostgreSQL \(config.pgVersion) (no upgrade under it)") {
                if let why = try InstalledServer.difference(connections.get(), pgVersion: config.pgVersion) {
                    throw Failure.hostWrong("\(why): restart the cluster (the postgres step does)")
                }
                return true
            },
            .assertion("pg_hba.conf parses, with no trust, md5 or clear-text password rule") {
                let row = try connections.get().query(
                    """
                    SELECT count(*) FILTER (WHERE error IS NOT NULL),
                           count(*) FILTER (WHERE auth_method IN ('trust', 'md5', 'password'))
                    FROM pg_hba_file_rules
                    """).first
                guard row?[0] == "0" else { throw Failure.hostWrong("pg_hba.conf has \(row?[0] ?? "?") rules in error") }
                guard row?[1] == "0" else { throw Failure.hostWrong("pg_hba.conf has \(row?[1] ?? "?") trust/md5/password rules") }
                return true
            },
        ]
    }

    /// Logs in to `database` as `user` for the database's owner session, which is kept for the
    /// database's later checks when the login is `user`'s; false when it is someone else's.
    private static func ownerLogin(
        _ sessions: OwnerSessions, _ database: String, user: String, tcp: Bool, _ login: () throws -> PGConnection
    ) throws -> Bool {
        sessions.begin(database)
        var kept: PGConnection?
        defer { sessions.keep(database, kept, user: user, tcp: tcp) }
        let db: PGConnection
        do {
            db = try login()
        } catch {
            sessions.fail(database, error)
            throw error
        }
        guard try db.query("SELECT current_user").scalar == user else { return false }
        kept = db
        return true
    }

    /// The service account logs in by peer to the shared database (its owner's session).
    private static func serviceLogin(_ context: StepContext, _ sessions: OwnerSessions) -> [DatabaseCheck] {
        let (config, server) = (context.config, context.server)
        return [
            (
                config.hearthmindsDB,
                .blockingAssertion("\(config.serviceUser) logs in by peer to \(config.hearthmindsDB)") {
                    guard let account = SystemAccount.lookup(config.serviceUser) else {
                        throw Failure("no system user \(config.serviceUser)", needs: ServiceUserStep.name)
                    }
                    return try ownerLogin(sessions, config.hearthmindsDB, user: config.serviceUser, tcp: false) {
                        try server.peerLogin(config.hearthmindsDB, account: account, pinned: true)
                    }
                }
            )
        ]
    }

    /// The manager logs in with its password over TCP to the shared database.
    private static func managerLogin(_ context: StepContext) -> [Action] {
        let (config, server, passwords) = (context.config, context.server, context.passwords)
        return [
            .blockingAssertion("\(config.hearthmindsUser) logs in with its password over TCP to \(config.hearthmindsDB)") {
                let db = try server.login(
                    config.hearthmindsDB, user: config.hearthmindsUser, password: try passwords.password(config.hearthmindsUser))
                return try db.query("SELECT current_user").scalar == config.hearthmindsUser
            }
        ]
    }

    /// Each AI logs in to its database (its owner's session) and the shared one, and is refused
    /// by the other AIs' databases.
    private static func aiLogins(_ context: StepContext, _ sessions: OwnerSessions) -> [DatabaseCheck] {
        let (config, server, passwords) = (context.config, context.server, context.passwords)
        var checks: [DatabaseCheck] = []
        for ai in config.ais {
            checks.append((
                ai.database,
                .blockingAssertion("\(ai.name) logs in with its password over TCP to \(ai.database) and \(config.hearthmindsDB)") {
                    // Its own database first: that login is kept for the checks of the database.
                    guard try ownerLogin(sessions, ai.database, user: ai.name, tcp: true, {
                        try server.login(ai.database, user: ai.name, password: try passwords.password(ai.name), pinned: true)
                    }) else {
                        throw Failure.hostWrong("\(ai.name)'s login to \(ai.database) is not \(ai.name)")
                    }
                    let shared = try server.login(config.hearthmindsDB, user: ai.name, password: try passwords.password(ai.name))
                    return try shared.query("SELECT current_user").scalar == ai.name
                }))
            if let refused = refusedElsewhere(context, ai) { checks.append((ai.database, refused)) }
        }
        return checks
    }

    /// Every other AI's database refuses `ai`: none grants it CONNECT (the catalog, for all of
    /// them), and a login to the next ones (up to `refusedLogins`) is refused for real. A login
    /// to each would cost n² password logins: 39,800 for 200 AIs. Nil when it is the only AI.
    private static func refusedElsewhere(_ context: StepContext, _ ai: HearthConfig.AI) -> Action? {
        let (config, server, connections, passwords) = (context.config, context.server, context.connections, context.passwords)
        let others = config.ais.filter { $0.name != ai.name }
        guard !others.isEmpty else { return nil }
        let index = config.ais.firstIndex { $0.name == ai.name } ?? 0
        let tried = (1...min(refusedLogins, others.count)).map { config.ais[(index + $0) % config.ais.count] }
        let shown = others.count > 4
            ? "\(others.count) other AI databases (\(tried.map(\.database).joined(separator: ", ")) by a login)"
            : others.map(\.database).joined(separator: ", ")
        return .blockingAssertion("\(ai.name) is refused by \(shown)") {
            let granted = try connections.get().query(
                """
                SELECT d.datname FROM pg_catalog.pg_database d
                WHERE d.datname = ANY($1::text[]) AND pg_catalog.has_database_privilege($2, d.oid, 'CONNECT')
                ORDER BY 1
                """, [PGArray.literal(others.map(\.database)), ai.name]).rows.compactMap { $0[0] }
            guard granted.isEmpty else {
                throw Failure.hostWrong("\(ai.name) may connect to \(granted.joined(separator: ", "))")
            }
            for other in tried {
                do {
                    _ = try server.login(other.database, user: ai.name, password: try passwords.password(ai.name))
                    throw Failure.hostWrong("\(ai.name) could connect to \(other.database)")
                } catch let error as Failure where error.kind == .database {
                    guard error.message.contains("permission denied for database")
                        || error.message.contains("no pg_hba.conf entry")
                    else { throw error }
                }
            }
            return true
        }
    }

    /// No role's password is its own name, unless the configuration says so (then a warning).
    private static func namedPasswords(_ context: StepContext) -> [Action] {
        let (config, connections, passwords, console) = (context.config, context.connections, context.passwords, context.console)
        let named = Set(config.namedPasswords.map(\.role))
        return [
            .blockingAssertion("no role's password is its own name, unless configured so (the seed's scheme)") {
                var unconfigured: [String] = []
                // The step's own superuser connection (no other check of the group uses it).
                for role in try SCRAMVerifier.rolesWithNameAsPassword(passwords.roles, connections.step()) {
                    if named.contains(role) {
                        console.err("hm-verify: warning: role \(role) still has its own name as password (configured so)")
                    } else {
                        unconfigured.append(role)
                    }
                }
                guard unconfigured.isEmpty else {
                    throw Failure.hostWrong(
                        "role(s) \(unconfigured.joined(separator: ", ")) have their own name as password, which the "
                            + "configuration does not say: the databases step sets the right one")
                }
                return true
            }
        ]
    }

    /// The configured extensions in every database (pg_extension read as the database's owner,
    /// search_path pinned, names qualified).
    private static func extensionChecks(_ context: StepContext, _ sessions: OwnerSessions) -> [DatabaseCheck] {
        let config = context.config
        guard !config.extensions.isEmpty else { return [] }
        return config.databases.map { database in
            (
                database,
                .blockingAssertion("extensions \(config.extensions.joined(separator: ", ")) in \(database)") {
                    let found = try sessions.with(database) { db, _ in
                        try db.query(
                            "SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = ANY($1::text[])",
                            [PGArray.literal(config.extensions)]).scalar
                    }
                    return found == String(config.extensions.count)
                }
            )
        }
    }

    /// Each database loads its libraries (a new backend does: an upgrade under a running server
    /// fails here, "could not load library .../plpgsql.so: undefined symbol") and is at the
    /// head revision, no applied revision's files changed.
    private static func revisionChecks(_ context: StepContext, _ sessions: OwnerSessions) -> [DatabaseCheck] {
        let (config, server, migrations) = (context.config, context.server, context.migrations)
        let revisions = Once { () throws -> MigrationSet in
            guard let migrations else {
                throw Failure.hostWrong("no Migrations/ directory found beside the executables (set HEARTHMINDS_ROOT)")
            }
            return try MigrationSet.load(directory: migrations, config: config)
        }
        return config.databases.flatMap { database -> [DatabaseCheck] in
            [
                (
                    database,
                    .blockingAssertion("\(database) loads its libraries (a plpgsql DO block, as the owner)") {
                        try sessions.with(database) { db, _ in
                            try db.execute("DO $hm$BEGIN PERFORM 1; END$hm$")
                        }
                        return true
                    }
                ),
                (
                    database,
                    .blockingAssertion("\(database) at the head revision, no applied revision's files changed") {
                        let set = try revisions.get()
                        let status = try sessions.with(database) { db, owner in
                            try Migrator(set: set, database: database, server: server, session: (db, owner)).status()
                        }
                        guard status.converged else {
                            throw Failure.hostWrong(
                                "\(database) is at \(status.current ?? "base"), head is \(status.head ?? "base")"
                                    + (status.changed.isEmpty ? "" : "; changed since applied: \(status.changed.joined(separator: ", "))"))
                        }
                        return true
                    }
                ),
            ]
        }
    }

    /// How the embeddings are stored (PGVECTOR_STORAGE, revision 0008), and memory_search run once.
    private static func storageChecks(_ context: StepContext, _ sessions: OwnerSessions) -> [DatabaseCheck] {
        let config = context.config
        return config.databases.map { database in
            (
                database,
                .blockingAssertion("\(database): embeddings stored as \(config.vectorStorage.rawValue); memory_search runs") {
                    try sessions.with(database) { db, _ in
                        _ = try EmbeddingStorage.require(config, database: database, db)
                        _ = try EmbeddingStorage.searchOnce(db, dimensions: config.embeddingDim)
                        return true
                    }
                }
            )
        }
    }

    /// The vector search setting of every database (the vector-index step's); with auto probes,
    /// from the lists of its IVFFlat index, read as the database's owner.
    private static func searchSettingChecks(_ context: StepContext, _ sessions: OwnerSessions) -> [DatabaseCheck] {
        let (config, connections) = (context.config, context.connections)
        guard let described = VectorIndexStep.describeSetting(config) else { return [] }
        let fromLists = config.vectorIndex == .ivfflat && config.ivfflat && config.ivfflatProbes == nil
        return config.databases.map { database in
            (
                database,
                .blockingAssertion("\(database): \(described)") {
                    let lists = fromLists
                        ? try sessions.with(database) { db, _ in
                            try VectorIndex.findIvfflat(db, opclass: EmbeddingStorage.ivfflatOpclass(config))?.lists
                        } : nil
                    guard let wanted = VectorIndex.wantedSetting(config, indexLists: lists) else { return true }
                    let found = try VectorIndex.databaseSetting(wanted.name, database: database, connections.get())
                    guard found == String(wanted.value) else {
                        throw Failure.hostWrong(
                            "\(database): \(wanted.name) is \(found ?? "not set"), not \(wanted.value) "
                                + "(the vector-index step sets it)")
                    }
                    return true
                }
            )
        }
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<VerifyStep>).
extension VerifyStep: StepDefinition {
    public static let abstract = "check the whole host, read-only"
    public static let discussion = """
        The service user; the cluster online at the configured version and port; pg_hba.conf \
        parses with no trust/md5; the service user logs in by peer to HEARTHMINDS_DB; the manager \
        and each AI log in with their passwords over TCP to their databases and HEARTHMINDS_DB, \
        and each AI is refused by the other AIs' databases; the extensions in every database. \
        Changes nothing (--dry-run is the same run).
        """
    public static var needs: [any StepDefinition.Type] { [ServiceUserStep.self, PostgresStep.self, PgHbaStep.self, PgvectorStep.self, DatabasesStep.self, MigrationsStep.self] }

    public static func build(_ context: StepContext, flags: NoStepFlags) throws -> Step {
        VerifyStep.make(context)
    }
}
