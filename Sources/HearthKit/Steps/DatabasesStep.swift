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
/// `databases`: the roles, databases, extensions and grants of the seed's section 2, and the
/// client files (which keep the generated passwords). Converged on every run; databases of AI
/// names no longer configured are reported, never dropped (only `reset` destroys data).
///
/// Who does what: role and database-level changes are made by the superuser from the
/// `postgres` database; in a database a tenant owns, the superuser only reads
/// schema-qualified catalogs and creates the extensions (which need a superuser); the grants
/// on the shared tables are made by the shared database's owner, logged in as itself.
public enum DatabasesStep {
    public static let name = StepName.databases

    /// The step of a context of these parts (tests). `jobs`: at most this many roles or
    /// databases side by side (default: Workers.defaultWidth, bounded by the server's free
    /// connections); 1 runs every action in order.
    public static func make(
        _ config: HearthConfig, server: PGServer? = nil, clientDirectory: String = ClientFiles.defaultDirectory,
        console: Console = Console(), jobs: Int? = nil
    ) -> Step {
        make(StepContext(config, server: server, clientDirectory: clientDirectory, jobs: jobs, console: console))
    }

    public static func make(_ context: StepContext) -> Step {
        let (config, connections) = (context.config, context.connections)
        let roles = RoleSpec.all(config, passwords: context.passwords)
        let databases = DatabaseSpec.all(config)
        // pg_authid and pg_database read once for every role and database (a converged run),
        // again after an apply.
        let catalog = ClusterCatalog(roles: roles.map(\.name), databases: databases.map(\.name)) {
            try connections.step()
        }
        /// Side by side: each worker holds a connection to postgres and one to the database at hand.
        let width = context.width(perWorker: 2)
        func sideBySide(_ actions: [Action]) -> Step.Part {
            .group(ActionGroup(actions, width: width, finished: { connections.closeWorkers() }))
        }
        warnAboutNamedPasswords(config, console: context.console, step: "hm-databases")
        return Step(
            name,
            parts: [
                .action(clientFiles(context)),
                sideBySide(roleActions(context, roles, catalog)),
                .action(madeRecord(context, catalog)),
                sideBySide(databaseActions(context, databases, catalog)),
                .action(tenantLibraries(context, roles, databases)),
                sideBySide(extensionActions(context, databases) + grantActions(context, databases, catalog)),
                .action(strayDatabases(context)),
            ])
    }

    /// First: a password for every password role, configured or generated once; the client
    /// files keep them (root only), and every later run reuses them.
    private static func clientFiles(_ context: StepContext) -> Action {
        let (config, server, passwords, clientDirectory) = (context.config, context.server, context.passwords, context.clientDirectory)
        return Action(
            "client files: \(clientDirectory)/pg_service.conf and password files (0600), a password for every role",
            check: {
                guard passwords.missing().isEmpty else { return false }
                return try ClientFiles(config: config, server: server, passwords: passwords, directory: clientDirectory)
                    .isConverged()
            },
            apply: {
                try passwords.generateMissing()
                try ClientFiles(config: config, server: server, passwords: passwords, directory: clientDirectory)
                    .write()
            },
            preview: { try ClientFiles.preview(config: config, server: server, passwords: passwords, directory: clientDirectory) })
    }

    /// The roles, side by side: their state from the catalog read once, each password
    /// recomputed (PBKDF2) on its worker.
    private static func roleActions(_ context: StepContext, _ roles: [RoleSpec], _ catalog: ClusterCatalog) -> [Action] {
        let connections = context.connections
        return roles.map { role in
            .blocking(
                describe(role),
                check: { try role.isConverged(try catalog.role(role.name), serverIterations: try catalog.serverIterations()) },
                apply: {
                    defer { catalog.invalidate() }
                    try role.apply(connections.get())
                },
                preview: {
                    // (no verifier is made: the password may be one the run is yet to generate)
                    let iterations = try catalog.serverIterations()
                    return try role.plan(try catalog.role(role.name), connections.get()) { _ in
                        SQLPlan.verifierPlaceholder(iterations: iterations)
                    }.shown
                })
        }
    }

    /// A role's action as the console and the log name it.
    private static func describe(_ role: RoleSpec) -> String {
        guard role.manageAttributes else {
            return "role \(role.name): password \(role.password.isNone ? "none (peer only)" : "set")"
        }
        let attributes = role.superuser ? "SUPERUSER LOGIN" : "LOGIN, no other attribute"
        let password = role.password.isNone ? "no password (peer only)" : "password"
        let members = role.memberOf.isEmpty ? "" : ", member of \(role.memberOf.sorted().joined(separator: ", "))"
        return "role \(role.name): \(attributes), \(password)\(members), marked"
    }

    /// The record of what the suite made, which the reset trusts (not the comment, which the
    /// database's owner may edit): made once, in the postgres database.
    private static func madeRecord(_ context: StepContext, _ catalog: ClusterCatalog) -> Action {
        let connections = context.connections
        return Action(
            "the record of the databases the suite made: \(MadeRecord.qualified) in postgres, the superuser's alone",
            check: { try MadeRecord.exists(connections.step()) },
            apply: {
                defer { catalog.invalidate() }
                try MadeRecord.createPlan().run(connections.step())
            },
            preview: { MadeRecord.createPlan().shown })
    }

    /// Each database, owned by its role, recorded and marked.
    private static func databaseActions(
        _ context: StepContext, _ databases: [DatabaseSpec], _ catalog: ClusterCatalog
    ) -> [Action] {
        let connections = context.connections
        return databases.map { database in
            .blocking(
                "database \(database.name) (UTF8) owned by \(database.owner), recorded and marked",
                check: { try database.exists(try catalog.database(database.name)) },
                apply: {
                    defer { catalog.invalidate() }
                    try database.create(connections.get())
                },
                preview: { try database.createPlan(try catalog.database(database.name), connections.get()).shown })
        }
    }

    /// Libraries a tenant had loaded into every session of its database or role: removed (its
    /// sessions are the suite's too, and the operator's). Named on the console.
    private static func tenantLibraries(_ context: StepContext, _ roles: [RoleSpec], _ databases: [DatabaseSpec]) -> Action {
        let (connections, console) = (context.connections, context.console)
        let tenantRoles = roles.filter { !$0.superuser }.map(\.name)
        return Action(
            "no library loaded into the sessions of our databases or roles (\(TenantSettings.disallowed.joined(separator: ", ")))",
            check: {
                try TenantSettings.find(databases: databases.map(\.name), roles: tenantRoles, connections.step()).isEmpty
            },
            apply: {
                let db = try connections.step()
                let found = try TenantSettings.find(databases: databases.map(\.name), roles: tenantRoles, db)
                for setting in found {
                    console.err("hm-databases: removing \(setting) (a tenant's setting the suite does not allow)")
                }
                try TenantSettings.removalPlan(found, db).run(db)
            },
            preview: {
                let db = try connections.step()
                return try TenantSettings.removalPlan(
                    try TenantSettings.find(databases: databases.map(\.name), roles: tenantRoles, db), db).shown
            })
    }

    /// In each database, its extensions, owned by the manager (the superuser reads pg_extension
    /// there).
    private static func extensionActions(_ context: StepContext, _ databases: [DatabaseSpec]) -> [Action] {
        let (config, connections) = (context.config, context.connections)
        return databases.flatMap { database in
            config.extensions.map { ext in
                .blocking(
                    "extension \(ext) in \(database.name), owned by \(config.hearthmindsUser)",
                    check: {
                        guard let owner = try DatabaseSpec.extensionOwner(ext, connections.get(database.name)) else {
                            return false
                        }
                        guard owner == config.hearthmindsUser else {
                            throw Failure.hostWrong(
                                "extension \(ext) in \(database.name) is owned by \(owner), not \(config.hearthmindsUser); "
                                    + "PostgreSQL cannot change an extension's owner: drop it (and what uses it) to have it recreated")
                        }
                        return true
                    },
                    apply: {
                        // A superuser's work (vector is not a trusted extension), in the tenant's
                        // database: made in a schema of its own, then moved to public, so that
                        // nothing the tenant planted in public catches a call of the script.
                        try TenantExtensions.create(ext, in: connections.get(database.name), as: config.hearthmindsUser)
                    },
                    preview: {
                        try TenantExtensions.plan(ext, in: connections.get(database.name), as: config.hearthmindsUser).shown
                    })
            }
        }
    }

    /// In each database: its privileges (from the catalog read once) and, for the shared
    /// database, its readers (granted as its owner).
    private static func grantActions(_ context: StepContext, _ databases: [DatabaseSpec], _ catalog: ClusterCatalog) -> [Action] {
        let (server, connections, credentials) = (context.server, context.connections, context.credentials)
        var actions: [Action] = []
        for database in databases {
            let who = database.connectors.isEmpty ? "only \(database.owner)" : "\(database.owner), \(database.connectors.joined(separator: ", "))"
            actions.append(
                .blocking(
                    "database \(database.name): CONNECT for \(who); none for PUBLIC",
                    check: { database.privilegesConverged(try catalog.database(database.name)) },
                    apply: {
                        defer { catalog.invalidate() }
                        try database.convergePrivileges(connections.get())
                    },
                    preview: {
                        try database.privilegesPlan(try catalog.database(database.name)?.privileges ?? [], connections.get()).shown
                    }))
            if !database.readers.isEmpty {
                actions.append(
                    .blocking(
                        "database \(database.name): \(database.readers.joined(separator: ", ")) read its tables, now and later "
                            + "(granted by its owner \(database.owner))",
                        check: { try database.readersConverged(server.ownerConnection(database.name, credentials).0) },
                        apply: { try database.convergeReaders(server.ownerConnection(database.name, credentials).0) },
                        preview: { try database.readersPlan(connections.get()).shown }))
            }
        }
        return actions
    }

    /// Databases of AI names no longer configured: reported, never dropped.
    private static func strayDatabases(_ context: StepContext) -> Action {
        let (config, connections, console) = (context.config, context.connections, context.console)
        return .assertion("databases of AI names no longer configured are kept (reported, never dropped)") {
            let strays = try orphanDatabases(config, connections.get())
            for (database, owner) in strays {
                console.err(
                    "hm-databases: note: database \(database) (owner \(owner)) belongs to no configured AI; "
                        + "it is kept — only the reset step drops data")
            }
            return true
        }
    }

    /// The warning of every run about passwords that are their role's own name (the seed's
    /// scheme): any local user or AI who knows the role's name can log in as it.
    public static func warnAboutNamedPasswords(_ config: HearthConfig, console: Console, step: String) {
        for named in config.namedPasswords {
            console.err(
                "\(step): warning: role \(named.role)'s password is its own name (\(named.key), \(named.origin)): "
                    + "any local user or AI that knows the name can log in as \(named.role)"
                    + (named.role == config.hearthmindsUser ? ", a superuser" : "")
                    + ". Remove the line to have a strong password generated, or set another one.")
        }
    }

    /// Databases named `<role><AI_DB_SUFFIX>` and owned by that role, for roles that are no
    /// configured AI: what an AI removed from AI_NAMES leaves behind.
    static func orphanDatabases(_ config: HearthConfig, _ db: PGConnection) throws -> [(String, String)] {
        let configured = Set(config.databases)
        let rows = try db.query(
            """
            SELECT d.datname, r.rolname FROM pg_catalog.pg_database d JOIN pg_catalog.pg_roles r ON r.oid = d.datdba
            WHERE d.datname = r.rolname || $1 AND NOT r.rolsuper AND NOT d.datistemplate ORDER BY 1
            """, [config.aiDBSuffix])
        return try rows.decode((String, String).self).filter { !configured.contains($0.0) }
    }
}

extension RoleSpec.Password {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<DatabasesStep>).
extension DatabasesStep: StepDefinition {
    public static let abstract = "create the roles, databases, extensions and grants; write the client files"
    public static let discussion = """
        Roles: HEARTHMINDS_USER (superuser, password, member of pg_monitor), \
        HEARTHMINDS_SERVICE_USER (login by peer only), one per AI name (login, password), and \
        POSTGRES_ADMIN_USER's password. Databases: HEARTHMINDS_DB owned by the service account, \
        <name><AI_DB_SUFFIX> owned by each AI, AI_DEFAULT_EXTENSIONS in each (owned by the \
        manager); CONNECT revoked from PUBLIC; every AI and the manager connect to and read \
        HEARTHMINDS_DB. Writes pg_service.conf and password files under /etc/hearthminds. \
        Databases of AI names no longer configured are reported, never dropped.
        """
    public static var needs: [any StepDefinition.Type] { [PostgresStep.self] }

    public static func build(_ context: StepContext, flags: NoStepFlags) throws -> Step {
        DatabasesStep.make(context)
    }
}
