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
/// What a reset destroys besides our databases, our roles and the client files.
public struct ResetScope: Sendable, Equatable {
    /// The whole cluster PG_VERSION/PG_CLUSTER_NAME (`pg_dropcluster --stop`, then its leftover
    /// /etc/postgresql/<version>/<name>): every database in it, ours or not.
    public var cluster: Bool
    /// The system account HEARTHMINDS_SERVICE_USER, its group and its home.
    public var serviceUser: Bool

    public init(cluster: Bool = false, serviceUser: Bool = false) {
        self.cluster = cluster
        self.serviceUser = serviceUser
    }
}

/// `reset`: the nuclear reset. Destroys what the suite made — HEARTHMINDS_DB and the AI
/// databases (`DROP DATABASE ... WITH (FORCE)`), our roles (the manager, the service role, each
/// AI; never postgres or POSTGRES_ADMIN_USER), the client files under /etc/hearthminds — and,
/// by its scope, the whole cluster and the service account. Each thing is an action: check "X
/// is gone", apply "drop X". Nothing that is not ours is touched: a role of ours that owns or
/// holds privileges on anything outside the databases the reset drops is a false result before
/// any change, naming what and where.
///
/// Never in bootstrap/steps: only `hm-reset` (which asks for confirmation) and
/// `install.sh --reset` run it.
public enum ResetStep {
    public static let name = StepName.reset

    /// Names PostgreSQL needs; never dropped whatever the configuration says.
    static let protectedDatabases: Set<String> = ["postgres", "template0", "template1"]
    /// The only place a service home is removed from (the service-user step makes it there).
    public static let homeBase = "/var/lib"

    /// One thing the reset destroys: what it is (for the listing) and its action.
    public struct Item {
        public let what: String
        public let action: Action
        /// More words for the listing (the databases in a cluster), read when it exists.
        let detail: (() async -> String?)?
    }

    /// The reset as a plan: the items in order, and the step made of them.
    public struct Plan {
        public let scope: ResetScope
        /// Runs first: nothing of ours is held outside what is dropped.
        public let precondition: Action?
        public let items: [Item]

        public var step: Step { Step(ResetStep.name, (precondition.map { [$0] } ?? []) + items.map(\.action)) }

        /// What exists now and would be destroyed, one line each; a blocked precondition or a
        /// check that cannot be made is a line too (starting with "cannot" or "blocked").
        public func inventory() async -> [String] {
            var lines: [String] = []
            if let precondition {
                do {
                    _ = try await precondition.check()
                } catch let error as Failure where error.kind == .hostWrong {
                    lines.append("blocked: \(error)")
                } catch {
                    lines.append("cannot check the roles: \(error)")
                }
            }
            for item in items {
                do {
                    if try await item.action.check() { continue }
                    var line = item.what
                    if let more = await item.detail?() { line += " " + more }
                    lines.append(line)
                } catch {
                    lines.append("cannot check \(item.what): \(error)")
                }
            }
            return lines
        }
    }

    /// The roles a reset drops: the manager, the service role and each AI; never the cluster's
    /// superuser or the admin.
    public static func roles(_ config: HearthConfig, superuser: String = "postgres") -> [String] {
        var seen: Set<String> = [superuser, config.adminUser, "postgres"]
        var roles: [String] = []
        for name in [config.hearthmindsUser, config.serviceUser] + config.ais.map(\.name) where seen.insert(name).inserted {
            roles.append(name)
        }
        return roles
    }

    /// The databases a reset drops: HEARTHMINDS_DB and each AI's.
    public static func databases(_ config: HearthConfig) -> [String] {
        config.databases.filter { !protectedDatabases.contains($0) }
    }

    public static func make(
        _ config: HearthConfig, scope: ResetScope = ResetScope(), server: PGServer? = nil,
        cluster: ClusterPaths? = nil, clientDirectory: String = ClientFiles.defaultDirectory
    ) -> Step {
        plan(config, scope: scope, server: server, cluster: cluster, clientDirectory: clientDirectory).step
    }

    /// `server` defaults to the configured cluster's; `cluster` (default: the configured one)
    /// is the Debian cluster the server belongs to: when it does not exist, nothing in it is
    /// left to drop. Tests pass a throwaway server and `cluster: nil` when it is not a Debian one.
    public static func plan(
        _ config: HearthConfig, scope: ResetScope = ResetScope(), server: PGServer? = nil,
        cluster: ClusterPaths? = nil, clientDirectory: String = ClientFiles.defaultDirectory
    ) -> Plan {
        plan(
            StepContext(config, server: server, clientDirectory: clientDirectory), scope: scope,
            debianCluster: cluster ?? (server == nil ? ClusterPaths(config) : nil))
    }

    /// The reset of the context's server, which belongs to the Debian cluster `debianCluster`
    /// (nil: not a Debian cluster's).
    public static func plan(_ context: StepContext, scope: ResetScope, debianCluster: ClusterPaths?) -> Plan {
        let (config, server, clientDirectory) = (context.config, context.server, context.clientDirectory)
        var items: [Item] = []
        var precondition: Action?

        if scope.cluster {
            guard let paths = debianCluster else {
                // Only a Debian cluster can be dropped whole.
                return Plan(scope: scope, precondition: nil, items: [noClusterToDropItem()])
            }
            items.append(clusterItem(paths))
            items.append(clusterDirectoryItem(paths))
            if let backup = config.backup {
                let (what, action) = RetiredStanza.resetAction(backup)
                items.append(Item(what: what, action: action, detail: nil))
            }
        } else {
            let admin = adminConnection(context.connections, debianCluster: debianCluster)
            let databases = databases(config)
            let roles = roles(config, superuser: server.superuser)
            precondition = ownershipPrecondition(config, databases: databases, roles: roles, admin: admin)
            items += databases.map { databaseItem($0, admin: admin) }
            items += roles.map { roleItem($0, admin: admin) }
        }

        items.append(clientFilesItem(clientDirectory))
        if scope.serviceUser { items += serviceAccountItems(config) }
        return Plan(scope: scope, precondition: precondition, items: items)
    }

    /// The superuser connection of the items in a cluster, or nil when the Debian cluster does
    /// not exist (so nothing in it is left); a stopped cluster is a false result.
    typealias Admin = () async throws -> PGConnection?

    static func adminConnection(_ connections: AdminConnections, debianCluster: ClusterPaths?) -> Admin {
        {
            if let debianCluster {
                guard let info = try DebianClusters.find(debianCluster) else { return nil }
                guard let dataDirectory = info.dataDirectory, PostmasterStatus.read(dataDirectory: dataDirectory) != nil
                else {
                    throw Failure.hostWrong(
                        "cluster \(debianCluster.id) is not running: start it (pg_ctlcluster \(debianCluster.version) "
                            + "\(debianCluster.name) start) to reset its databases and roles, or reset the whole cluster "
                            + "(hm-reset --cluster)")
                }
            }
            return try connections.get()
        }
    }

    /// `--cluster` where the server is not a Debian cluster's: a false result.
    static func noClusterToDropItem() -> Item {
        Item(
            what: "the cluster", action: .assertion("--cluster needs a Debian cluster") {
                throw Failure.hostWrong("--cluster: no Debian cluster to drop")
            }, detail: nil)
    }

    /// The whole cluster, dropped by pg_dropcluster --stop with every database in it.
    static func clusterItem(_ paths: ClusterPaths) -> Item {
        Item(
            what: "cluster \(paths.id) (pg_dropcluster --stop), with every database in it",
            action: Action(
                "cluster \(paths.id) is gone (pg_dropcluster --stop)",
                check: { try DebianClusters.find(paths) == nil },
                apply: {
                    // Stopped as root, dropped as the postgres account (ClusterTools: as root,
                    // pg_dropcluster removes what a `log` link in the cluster's directory names).
                    guard let info = try DebianClusters.find(paths) else { return }
                    let running = info.online || info.dataDirectory.map { PostmasterStatus.read(dataDirectory: $0) != nil } ?? false
                    try await ClusterTools.drop(paths, running: running)
                }),
            detail: { await clusterContents(paths) })
    }

    /// Runs first, before anything is dropped: the databases and roles by our names are ours, and
    /// the roles hold nothing outside the databases the reset drops.
    static func ownershipPrecondition(
        _ config: HearthConfig, databases: [String], roles: [String], admin: @escaping Admin
    ) -> Action {
        let owners = Dictionary(uniqueKeysWithValues: DatabaseSpec.all(config).map { ($0.name, $0.owner) })
        return .assertion(
            "roles \(roles.joined(separator: ", ")) hold nothing outside the databases the reset drops; "
                + "those databases and roles are ours (our mark, the configured owner)"
        ) {
            guard let db = try await admin() else { return true }
            let strangers = try notOurs(databases: databases, owners: owners, roles: roles, db)
            guard strangers.isEmpty else {
                throw Failure.hostWrong(
                    strangers.joined(separator: "; ")
                        + ". The reset drops only what the suite made (it carries our mark and the configured owner); "
                        + "drop or rename those by hand, or change the configuration. Nothing was dropped.")
            }
            let held = try foreignHoldings(roles: roles, keeping: databases, db)
            guard held.isEmpty else {
                throw Failure.hostWrong(
                    held.joined(separator: "; ")
                        + ". The reset drops only its own databases, and PostgreSQL cannot drop a role that still "
                        + "owns or may use something: move or remove those first (in that database: ALTER TABLE ... "
                        + "OWNER TO <other> for what to keep, DROP OWNED BY <role> for the rest; a database: ALTER "
                        + "DATABASE ... OWNER TO ...; not REASSIGN OWNED BY <role>, which would hand over the role's own "
                        + "database too), then rerun. Nothing was dropped.")
            }
            return true
        }
    }

    /// One of our databases, dropped with its sessions (WITH (FORCE)).
    static func databaseItem(_ database: String, admin: @escaping Admin) -> Item {
        Item(
            what: "database \(database)",
            action: Action(
                "database \(database) is gone (DROP DATABASE ... WITH (FORCE))",
                check: {
                    guard let db = try await admin() else { return true }
                    return try db.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]).first == nil
                },
                apply: {
                    guard let db = try await admin() else { return }
                    try db.execute("DROP DATABASE IF EXISTS \(try db.identifier(database)) WITH (FORCE)")
                    try MadeRecord.forget(database, db)
                }),
            detail: {
                guard let db = try? await admin(),
                    let (owner, size) = try? db.query(
                        "SELECT pg_get_userbyid(datdba), pg_size_pretty(pg_database_size(oid)) FROM pg_database "
                            + "WHERE datname = $1", [database]).decodeFirst((String, String).self)
                else { return nil }
                return "(owner \(owner), \(size))"
            })
    }

    /// One of our roles.
    static func roleItem(_ role: String, admin: @escaping Admin) -> Item {
        Item(
            what: "role \(role)",
            action: Action(
                "role \(role) is gone (DROP ROLE)",
                check: {
                    guard let db = try await admin() else { return true }
                    return try db.query("SELECT 1 FROM pg_roles WHERE rolname = $1", [role]).first == nil
                },
                apply: {
                    guard let db = try await admin() else { return }
                    try db.execute("DROP ROLE IF EXISTS \(try db.identifier(role))")
                }),
            detail: nil)
    }

    /// The cluster's leftover configuration directory (what pg_dropcluster leaves: our conf.d
    /// file), removed by descriptors from /etc/postgresql/<version> (the postgres account's):
    /// a link in its place is a false result, not followed; a link inside it is removed itself.
    public static func clusterDirectoryItem(_ paths: ClusterPaths) -> Item {
        func parent() throws -> (OpenDirectory?, String) {
            let (parentPath, name) = try OpenDirectory.split(paths.configDirectory)
            return (try OpenDirectory.openIfPresent(parentPath, trust: ClusterPaths.configTrust), name)
        }
        return Item(
            what: "directory \(paths.configDirectory) (what pg_dropcluster leaves: our conf.d file)",
            action: Action(
                "\(paths.configDirectory) is gone",
                check: {
                    let (directory, name) = try parent()
                    guard let found = try directory?.entry(name) else { return true }
                    guard found.kind == .directory else {
                        throw Failure.hostWrong(
                            "\(paths.configDirectory) is \(found.kind == .symlink ? "a symbolic link" : "not a directory"): "
                                + "not followed, not removed; remove it by hand")
                    }
                    return false
                },
                apply: {
                    let (directory, name) = try parent()
                    try directory?.removeTree(name, directoryOnly: true)
                }),
            detail: nil)
    }

    /// The client files: pg_service.conf and the password directory, removed through the
    /// directory's handle (links removed themselves, never followed).
    public static func clientFilesItem(_ clientDirectory: String) -> Item {
        let serviceFile = clientDirectory + "/" + ClientFiles.serviceFile
        let passwordDirectory = clientDirectory + "/" + ClientFiles.passwordDirectory
        return Item(
            what: "client files \(serviceFile) and \(passwordDirectory)/",
            action: Action(
                "client files \(serviceFile) and \(passwordDirectory)/ are gone",
                check: {
                    guard let directory = try OpenDirectory.openIfPresent(clientDirectory) else { return true }
                    return try directory.entry(ClientFiles.serviceFile) == nil
                        && directory.entry(ClientFiles.passwordDirectory) == nil
                },
                apply: {
                    guard let directory = try OpenDirectory.openIfPresent(clientDirectory) else { return }
                    try directory.remove(ClientFiles.serviceFile)
                    try directory.removeTree(ClientFiles.passwordDirectory)
                }),
            detail: nil)
    }

    /// The service account's home, the account and its group, in that order (the home is
    /// shown to be the account's while the account exists). Each goes only when it is ours: the
    /// account a system account with our mark; the home its passwd home, a real directory
    /// under /var/lib that it owns; the group a system group nobody else is in.
    public static func serviceAccountItems(_ config: HearthConfig) -> [Item] {
        let user = config.serviceUser
        let home = config.serviceHome
        let uidMax = SystemAccount.systemUIDMax()
        let gidMax = SystemAccount.systemGIDMax()
        let key = "HEARTHMINDS_SERVICE_USER"
        return [
            Item(
                what: "home \(home)",
                action: Action(
                    "home \(home) is gone",
                    check: { try removableHome(config, uidMax: uidMax) == nil },
                    apply: {
                        guard let (parent, name, account) = try removableHome(config, uidMax: uidMax) else { return }
                        try parent.removeTree(name, owner: account.uid, directoryOnly: true)
                    }),
                detail: nil),
            Item(
                what: "system user \(user)",
                action: Action(
                    "system user \(user) is gone (userdel)",
                    check: {
                        guard let account = SystemAccount.lookup(user) else { return true }
                        try ServiceAccount.requireOurs(account, uidMax: uidMax, key: key)
                        return false
                    },
                    apply: {
                        guard let account = SystemAccount.lookup(user) else { return }
                        try ServiceAccount.requireOurs(account, uidMax: uidMax, key: key)
                        try await Command.check(["userdel", user])
                    }),
                detail: nil),
            Item(
                what: "group \(user)",
                action: Action(
                    "group \(user) is gone (groupdel)",
                    check: {
                        guard let gid = SystemAccount.groupID(user) else { return true }
                        guard gid <= gidMax else {
                            throw Failure.hostWrong(
                                "group \(user) has gid \(gid), an ordinary group's: not the service account's group, not "
                                    + "removed; choose another \(key)")
                        }
                        // The service account itself goes first (the item before).
                        let others = Set((SystemAccount.groupMembers(user) ?? []) + SystemAccount.primaryMembers(gid: gid))
                            .subtracting([user])
                        guard others.isEmpty else {
                            throw Failure.hostWrong(
                                "group \(user) is also the group of \(others.sorted().joined(separator: ", ")): not the "
                                    + "service account's alone, not removed; choose another \(key) or remove it by hand")
                        }
                        return false
                    },
                    apply: { try await Command.check(["groupdel", user]) }),
                detail: nil),
        ]
    }

    /// The service home when it exists and may go: under /var/lib, a real directory (not a
    /// link), the passwd home of the service account (ours: a system account with our mark),
    /// owned by it. nil when there is no home; a hostWrong Failure naming what is wrong otherwise.
    static func removableHome(_ config: HearthConfig, uidMax: UInt32) throws
        -> (OpenDirectory, String, SystemAccount)?
    {
        let home = config.serviceHome
        let (parentPath, name) = try OpenDirectory.split(home)
        let parts = home.split(separator: "/", omittingEmptySubsequences: false)
        let plain = home.hasPrefix("/") && !parts.dropFirst().contains { $0.isEmpty || $0 == "." || $0 == ".." }
        guard plain && home.hasPrefix(homeBase + "/") else {
            // Only a look (nothing is written): is there something at all?
            guard let parent = try? OpenDirectory.openIfPresent(parentPath, trust: .reading),
                try parent.entry(name) != nil
            else { return nil }
            throw Failure.hostWrong(
                "HEARTHMINDS_SERVICE_HOME \(home) is not under \(homeBase)/: the reset removes a home only there; "
                    + "not removed (remove it by hand if it is the service account's)")
        }
        guard let parent = try OpenDirectory.openIfPresent(parentPath), let found = try parent.entry(name) else {
            return nil
        }
        guard found.kind == .directory else {
            throw Failure.hostWrong(
                "HEARTHMINDS_SERVICE_HOME \(home) is \(found.kind == .symlink ? "a symbolic link" : "not a directory"): "
                    + "not followed, not removed")
        }
        let user = config.serviceUser
        guard let account = SystemAccount.lookup(user) else {
            throw Failure.hostWrong(
                "HEARTHMINDS_SERVICE_HOME \(home) exists, but there is no account \(user) to show that it is its home: "
                    + "not removed; remove it by hand if it is")
        }
        try ServiceAccount.requireOurs(account, uidMax: uidMax, key: "HEARTHMINDS_SERVICE_USER")
        guard account.home == home else {
            throw Failure.hostWrong(
                "HEARTHMINDS_SERVICE_HOME \(home) is not the home of \(user) (its passwd home is \(account.home)): "
                    + "not removed")
        }
        guard found.uid == account.uid else {
            throw Failure.hostWrong(
                "HEARTHMINDS_SERVICE_HOME \(home) is owned by \(OpenDirectory.userName(found.uid)), not by \(user): "
                    + "not removed")
        }
        return (parent, name, account)
    }

    /// "(port N; databases a, b, c)" of an existing cluster, for the listing.
    static func clusterContents(_ paths: ClusterPaths) async -> String? {
        guard let info = try? DebianClusters.find(paths) else { return nil }
        var text = "(port \(info.port.map(String.init) ?? "unknown"), data \(info.dataDirectory ?? "unknown")"
        if info.online, let db = try? PGServer.running(paths).admin(),
            let rows = try? db.query("SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")
        {
            text += "; databases: " + rows.rows.compactMap { $0[0] }.joined(separator: ", ")
        }
        return text + ")"
    }

    /// The databases and roles of ours by name that exist but are not ours: a database not in the
    /// record of what the suite made (on a host without the record: without our mark) or with
    /// another owner than the configured one, a role without our mark (which only a role with
    /// CREATEROLE can change). One phrase each.
    static func notOurs(databases: [String], owners: [String: String], roles: [String], _ db: PGConnection) throws
        -> [String]
    {
        var found: [String] = []
        for name in databases {
            guard let database = try DatabaseSpec.find(name, db) else { continue }
            // The record (MadeRecord), which no tenant can write, decides; the comment, which the
            // database's owner may edit, only on a host set up before the record was kept.
            if database.owner != owners[name] {
                found.append("database \(name) is owned by \(database.owner), not \(owners[name] ?? "?")")
            } else if database.recorded == false {
                found.append("database \(name) is not in the record of what the suite made (\(MadeRecord.qualified))")
            } else if database.recorded == nil && database.comment != Marks.database {
                found.append("database \(name) does not carry our mark (its comment; this host has no record yet)")
            }
        }
        for role in roles {
            guard try db.query("SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1", [role]).first != nil else { continue }
            if try Marks.roleComment(role, db) != Marks.role { found.append("role \(role) does not carry our mark (its comment)") }
        }
        return found
    }

    /// What the roles own or may use outside the databases in `keeping` (which the reset drops):
    /// each a phrase naming the role, what and where. pg_shdepend is a shared catalog, so one
    /// connection sees every database.
    static func foreignHoldings(roles: [String], keeping databases: [String], _ db: PGConnection) throws -> [String] {
        let rows = try db.query(
            """
            SELECT r.rolname, s.dbid = 0, coalesce(d.datname, ''), s.classid::regclass::text, coalesce(od.datname, ''),
                   s.deptype::text, count(*)
            FROM pg_shdepend s
            JOIN pg_roles r ON s.refclassid = 'pg_authid'::regclass AND s.refobjid = r.oid
            LEFT JOIN pg_database d ON d.oid = s.dbid
            LEFT JOIN pg_database od ON s.classid = 'pg_database'::regclass AND od.oid = s.objid
            WHERE r.rolname = ANY($1::text[])
              AND NOT (s.dbid <> 0 AND coalesce(d.datname = ANY($2::text[]), false))
              AND NOT (s.classid = 'pg_database'::regclass AND coalesce(od.datname = ANY($2::text[]), false))
            GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 3, 5, 4, 6
            """, [PGArray.literal(roles), PGArray.literal(databases)])
        return try rows.decode((String, Bool, String, String, String, String, Int).self).map {
            (role, shared, database, catalog, objectDatabase, kind, count) in
            let relation: String
            switch kind {
            case "o": relation = "owns"
            case "a": relation = "has privileges on"
            case "r": relation = "is named in policies on"
            default: relation = "is referenced (\(kind)) by"
            }
            if shared {
                if catalog == "pg_database" { return "role \(role) \(relation) database \(objectDatabase)" }
                return "role \(role) \(relation) \(count) shared object(s) of \(catalog)"
            }
            return "role \(role) \(relation) \(count) object(s) in database \(database)"
        }
    }
}
