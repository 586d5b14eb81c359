/// How the steps reach the cluster: the superuser by peer authentication (as the `postgres`
/// system account) over the cluster's socket directory, and password roles over TCP.
public struct PGServer: Sendable {
    public var socketDirectory: String
    public var port: Int
    /// The address password logins use (POSTGRES_HOST; `localhost` means 127.0.0.1).
    public var tcpHost: String
    /// The system account and role of the cluster's bootstrap superuser (Debian: postgres).
    public var superuser = "postgres"
    /// How long a superuser session waits for a lock (`lock_timeout`): a tenant may hold its own
    /// role's or database's catalog row in an open transaction (ALTER ROLE ... PASSWORD, COMMENT
    /// ON DATABASE, GRANT), which the suite's ALTER ROLE, COMMENT or REVOKE would otherwise wait
    /// for forever.
    public var adminLockTimeout = PGServer.lockTimeout

    public init(socketDirectory: String, port: Int, tcpHost: String) {
        self.socketDirectory = socketDirectory
        self.port = port
        self.tcpHost = tcpHost
    }

    /// The configured cluster on this host.
    public init(config: HearthConfig) {
        self.init(
            socketDirectory: PGTarget.debianSocketDirectory, port: config.port,
            tcpHost: config.host == "localhost" ? "127.0.0.1" : config.host)
    }

    /// Settings of every connection the suite makes, over whatever the database or the role
    /// sets (a tenant sets its own database's and role's): only pg_catalog is searched, so a
    /// function or operator a tenant planted in `public` never catches an unqualified name; and
    /// the session is not made read-only, cut short or ended while idle by the tenant's settings.
    public static let pinnedSettings: [(String, String)] = [("search_path", "pg_catalog,pg_temp")] + guardSettings

    /// The part of the pinned settings a login keeps besides its own search_path (verify's logins,
    /// which resolve no name): not read-only, not cut short, not ended while idle.
    public static let guardSettings: [(String, String)] = [
        ("default_transaction_read_only", "off"), ("statement_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"), ("idle_session_timeout", "0"),
    ]

    /// A lock a tenant holds (on its own tables, or the migration lock key) is waited for this
    /// long, then the action is false: no run waits forever.
    public static let lockTimeout = "60s"

    /// Where a superuser connection to `database` goes: peer authentication as the
    /// superuser's system account over the socket directory. A superuser connection to a
    /// tenant's database reads schema-qualified catalogs and does what needs a superuser
    /// (CREATE EXTENSION), nothing else: see `owner(of:)`. Its lock waits end after
    /// `adminLockTimeout`, and its role is the superuser's whatever the database sets (a
    /// tenant's `ALTER DATABASE ... SET role = <itself>` would make the superuser's session its own).
    public func adminTarget(_ database: String = "postgres") -> PGTarget {
        var target = PGTarget(
            host: socketDirectory, port: port, database: database, user: superuser,
            asSystemUser: SystemAccount.lookup(superuser))
        target.settings = PGServer.pinnedSettings + [("lock_timeout", adminLockTimeout), ("role", superuser)]
        return target
    }

    /// The loopback address the suite's own password logins use (the server always listens on
    /// localhost).
    public static let loopback = "127.0.0.1"

    /// A database's owner and whether that role is a superuser; nil when there is no such
    /// database. Read from the `postgres` database's shared catalogs.
    public func owner(of database: String) throws -> (name: String, superuser: Bool)? {
        let db = try admin()
        guard let row = try db.query(
            """
            SELECT r.rolname, r.rolsuper FROM pg_catalog.pg_database d
            JOIN pg_catalog.pg_roles r ON r.oid = d.datdba WHERE d.datname = $1
            """, [database]).first
        else { return nil }
        return (row[0] ?? "", row[1] == "t")
    }

    /// A connection to `database` as its owner, which is how the suite works in a database a
    /// tenant owns: whatever the tenant defined there (views, triggers, functions, operators)
    /// runs with the tenant's own rights only. `SET ROLE` from a superuser session would not do:
    /// the tenant's code could `RESET ROLE` back to the superuser. So the owner logs in itself:
    /// by peer as its system account (the service account), or with its password over loopback
    /// (an AI). A superuser owner is trusted: a superuser session with `SET ROLE`.
    public func ownerConnection(_ database: String, _ credentials: Credentials, lockTimeout: String = PGServer.lockTimeout)
        throws -> (PGConnection, owner: String)
    {
        guard let (owner, isSuperuser) = try self.owner(of: database) else {
            throw HearthError("there is no database \(database)")
        }
        var target: PGTarget
        if isSuperuser {
            target = adminTarget(database)
        } else if credentials.peerAccounts.contains(owner), let account = SystemAccount.lookup(owner) {
            target = PGTarget(host: socketDirectory, port: port, database: database, user: owner, asSystemUser: account)
        } else if let password = credentials.password(owner) {
            target = PGTarget(host: PGServer.loopback, port: port, database: database, user: owner, password: password)
        } else {
            throw HearthError(
                "database \(database) is owned by role \(owner), and the suite works in a database only as its "
                    + "owner: \(owner) is not a configured AI (with a password), the service account or a superuser")
        }
        target.settings = PGServer.pinnedSettings + [("lock_timeout", lockTimeout)]
        let connection = try PGConnection(target)
        if isSuperuser && owner != superuser {
            try connection.execute("SET ROLE \(try connection.identifier(owner))")
        }
        guard try connection.query("SELECT current_user").scalar == owner else {
            throw HearthError("the connection to \(database) is not its owner \(owner)")
        }
        return (connection, owner)
    }

    /// A superuser connection to `database`.
    public func admin(_ database: String = "postgres") throws -> PGConnection {
        guard SystemAccount.lookup(superuser) != nil else {
            throw HearthError("no system account \(superuser): is PostgreSQL installed?")
        }
        do {
            return try PGConnection(adminTarget(database))
        } catch {
            throw HearthError("\(error)")
        }
    }

    /// A password login over TCP (verify's), with the guard settings and its own role: the
    /// role's and the database's settings (a database owner's `SET role = <itself>`, a
    /// statement timeout) cannot make its checks fail or wait.
    public func login(_ database: String, user: String, password: Secret) throws(PGError) -> PGConnection {
        var target = PGTarget(host: tcpHost, port: port, database: database, user: user, password: password)
        target.settings = PGServer.guardSettings + [("role", user)]
        return try PGConnection(target)
    }

    /// A peer login over the socket as a system account of the same name, likewise.
    public func peerLogin(_ database: String, account: SystemAccount) throws(PGError) -> PGConnection {
        var target = PGTarget(host: socketDirectory, port: port, database: database, user: account.name, asSystemUser: account)
        target.settings = PGServer.guardSettings + [("role", account.name)]
        return try PGConnection(target)
    }
}

/// Superuser connections by database, opened on first use and reused by the actions of one
/// step (a converged run then costs one connection per database). At most `limit` stay open:
/// past it the least recently used one other than `postgres` closes, so that a step over
/// many databases (200 AI names) stays well below the server's max_connections (100 by
/// default) instead of failing with "too many clients".
public final class AdminConnections {
    public let server: PGServer
    public let limit: Int
    private var open: [String: PGConnection] = [:]
    /// Database names, least recently used first.
    private var order: [String] = []

    public init(_ server: PGServer, limit: Int = 8) {
        self.server = server
        self.limit = max(2, limit)
    }

    /// How many connections are open now.
    public var openCount: Int { open.count }

    public func get(_ database: String = "postgres") throws -> PGConnection {
        if let connection = open[database] {
            touch(database)
            return connection
        }
        while open.count >= limit, let victim = order.first(where: { $0 != "postgres" }) {
            open[victim] = nil
            order.removeAll { $0 == victim }
        }
        let connection = try server.admin(database)
        open[database] = connection
        touch(database)
        return connection
    }

    private func touch(_ database: String) {
        order.removeAll { $0 == database }
        order.append(database)
    }

    /// Forgets every connection (they close), e.g. after the server restarted.
    public func reset() {
        open.removeAll()
        order.removeAll()
    }
}

/// How the suite logs in as a database's owner (see PGServer.ownerConnection): the roles that
/// log in by peer as the same-named system account, and the passwords of the others.
public struct Credentials: Sendable {
    public var peerAccounts: Set<String>
    private let passwords: @Sendable (String) -> Secret?

    public init(peerAccounts: Set<String>, passwords: [String: Secret]) {
        self.peerAccounts = peerAccounts
        self.passwords = { passwords[$0] }
    }

    /// The configured host: the service account by peer; the manager and the AIs with their
    /// passwords (configured, or kept in the client files).
    public init(_ config: HearthConfig, book: PasswordBook) {
        peerAccounts = [config.serviceUser]
        passwords = { role in book.roles.contains(role) ? try? book.password(role) : nil }
    }

    public func password(_ role: String) -> Secret? { passwords(role) }
}
