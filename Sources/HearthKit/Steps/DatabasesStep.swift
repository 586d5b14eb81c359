/// `databases`: the roles, databases, extensions and grants of the seed's section 2, and the
/// client files. Converged on every run; databases of AI names no longer configured are
/// reported, never dropped (only `reset` destroys data).
public enum DatabasesStep {
    public static let name = "databases"

    public static func make(
        _ config: HearthConfig, server: PGServer? = nil, clientDirectory: String = ClientFiles.defaultDirectory,
        console: Console = Console()
    ) -> Step {
        let server = server ?? PGServer(config: config)
        let connections = AdminConnections(server)
        let roles = RoleSpec.all(config)
        let databases = DatabaseSpec.all(config)
        var actions: [Action] = []

        // A password anyone on the network could guess is worth a word.
        if !config.listensOnLoopbackOnly {
            let weak = [(config.hearthmindsUser, config.hearthmindsPassword)]
                + config.ais.map { ($0.name, $0.password) }
            for (user, password) in weak where password.reveal == user {
                console.err(
                    "hm-databases: warning: role \(user) has its own name as password and the server listens on "
                        + "\(config.host); set \(user == config.hearthmindsUser ? "HEARTHMINDS_PASSWORD" : "\(user.uppercased())_PASSWORD")")
            }
        }

        for role in roles {
            let what: String
            if !role.manageAttributes {
                what = "role \(role.name): password \(role.password.isNone ? "none (peer only)" : "set")"
            } else {
                let attributes = role.superuser ? "SUPERUSER LOGIN" : "LOGIN, no other attribute"
                let password = role.password.isNone ? "no password (peer only)" : "password"
                let members = role.memberOf.isEmpty ? "" : ", member of \(role.memberOf.sorted().joined(separator: ", "))"
                what = "role \(role.name): \(attributes), \(password)\(members)"
            }
            actions.append(
                Action(what, check: { try role.isConverged(connections.get()) }, apply: { try role.apply(connections.get()) }))
        }

        for database in databases {
            actions.append(
                Action(
                    "database \(database.name) (UTF8) owned by \(database.owner)",
                    check: { try database.exists(connections.get()) },
                    apply: { try database.create(connections.get()) }))
        }

        for database in databases {
            for ext in config.extensions {
                actions.append(
                    Action(
                        "extension \(ext) in \(database.name), owned by \(config.hearthmindsUser)",
                        check: {
                            guard let owner = try DatabaseSpec.extensionOwner(ext, connections.get(database.name)) else {
                                return false
                            }
                            guard owner == config.hearthmindsUser else {
                                throw CheckFailed(
                                    "extension \(ext) in \(database.name) is owned by \(owner), not \(config.hearthmindsUser); "
                                        + "PostgreSQL cannot change an extension's owner: drop it (and what uses it) to have it recreated")
                            }
                            return true
                        },
                        apply: {
                            let db = try connections.get(database.name)
                            try db.execute(
                                "SET ROLE \(try db.identifier(config.hearthmindsUser)); "
                                    + "CREATE EXTENSION IF NOT EXISTS \(try db.identifier(ext)); RESET ROLE")
                        }))
            }
        }

        for database in databases {
            let who = database.connectors.isEmpty ? "only \(database.owner)" : "\(database.owner), \(database.connectors.joined(separator: ", "))"
            actions.append(
                Action(
                    "database \(database.name): CONNECT for \(who); none for PUBLIC",
                    check: { try database.privilegesConverged(connections.get()) },
                    apply: { try database.convergePrivileges(connections.get()) }))
            if !database.readers.isEmpty {
                actions.append(
                    Action(
                        "database \(database.name): \(database.readers.joined(separator: ", ")) read its tables, now and later",
                        check: { try database.readersConverged(connections.get(database.name)) },
                        apply: { try database.convergeReaders(connections.get(database.name)) }))
            }
        }

        actions.append(
            .assertion("databases of AI names no longer configured are kept (reported, never dropped)") {
                let strays = try orphanDatabases(config, connections.get())
                for (database, owner) in strays {
                    console.err(
                        "hm-databases: note: database \(database) (owner \(owner)) belongs to no configured AI; "
                            + "it is kept — only the reset step drops data")
                }
                return true
            })

        let client = ClientFiles(config: config, server: server, directory: clientDirectory)
        actions.append(
            Action(
                "client files: \(clientDirectory)/pg_service.conf and password files (0600)",
                check: { client.isConverged() }, apply: { try client.write() }))
        return Step(name, actions)
    }

    /// Databases named `<role><AI_DB_SUFFIX>` and owned by that role, for roles that are no
    /// configured AI: what an AI removed from AI_NAMES leaves behind.
    static func orphanDatabases(_ config: HearthConfig, _ db: PGConnection) throws -> [(String, String)] {
        let configured = Set(config.databases)
        let rows = try db.query(
            """
            SELECT d.datname, r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba
            WHERE d.datname = r.rolname || $1 AND NOT r.rolsuper AND NOT d.datistemplate ORDER BY 1
            """, [config.aiDBSuffix])
        return rows.rows.compactMap { row in
            guard let name = row[0], let owner = row[1], !configured.contains(name) else { return nil }
            return (name, owner)
        }
    }
}

extension RoleSpec.Password {
    var isNone: Bool {
        if case .none = self { return true }
        return false
    }
}
