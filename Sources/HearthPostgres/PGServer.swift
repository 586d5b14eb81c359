import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

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

    public init(socketDirectory: String, port: Int, tcpHost: String = PGServer.loopback) {
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

    /// The server of a Debian cluster as it runs now: the socket directory and port its postmaster
    /// reports (postmaster.pid), whatever the configuration says yet (the postgres step reaches
    /// the server it has just started, before a restart moves it to POSTGRES_PORT). An error says
    /// why there is none (a dry run reports it as "cannot check yet").
    public static func running(_ paths: ClusterPaths) throws -> PGServer {
        let (_, status) = try DebianClusters.running(paths)
        return PGServer(socketDirectory: status.socketDirectory, port: status.port)
    }

    /// Settings of every connection the suite makes, over whatever the database or the role
    /// sets (a tenant sets its own database's and role's): only pg_catalog is searched, so a
    /// function or operator a tenant planted in `public` never catches an unqualified name; and
    /// the session is not made read-only, cut short or ended while idle by the tenant's settings.
    public static let pinnedSettings: [(String, String)] = [("search_path", "pg_catalog,pg_temp")] + guardSettings

    /// The part of the pinned settings a login keeps besides its own search_path (verify's logins,
    /// which resolve no name): not read-only, not cut short, not ended while idle. (Every
    /// connection also gets client_min_messages=error: see PGConnection.)
    public static let guardSettings: [(String, String)] = [
        ("default_transaction_read_only", "off"), ("statement_timeout", "0"),
        ("idle_in_transaction_session_timeout", "0"), ("idle_session_timeout", "0"),
        // A library the tenant names for its database or role is loaded at every login to it, and
        // one that does not exist fails the login: none (the databases step removes such settings).
        ("local_preload_libraries", ""),
        // An error does not end the session; no query of the suite's is compiled by the JIT (a
        // tenant's jit_above_cost = 0 made each take a tenth of a second).
        ("exit_on_error", "off"), ("jit", "off"),
    ]

    /// What only a superuser session may pin (a tenant cannot set it; a superuser may have, by
    /// GRANT SET): no library loaded at its start either.
    public static let superuserSettings: [(String, String)] = [("session_preload_libraries", "")]

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
        target.settings = PGServer.pinnedSettings + PGServer.superuserSettings
            + [("lock_timeout", adminLockTimeout), ("role", superuser)]
        return target
    }

    /// The loopback address the suite's own password logins use (the server always listens on
    /// localhost).
    public static let loopback = "127.0.0.1"

    /// A database's owner and whether that role is a superuser; nil when there is no such
    /// database. Read from the `postgres` database's shared catalogs.
    public func owner(of database: String) throws -> (name: String, superuser: Bool)? {
        let db = try admin()
        guard let (name, superuser) = try db.query(
            """
            SELECT r.rolname, r.rolsuper FROM pg_catalog.pg_database d
            JOIN pg_catalog.pg_roles r ON r.oid = d.datdba WHERE d.datname = $1
            """, [database]).decodeFirst((String, Bool).self)
        else { return nil }
        return (name, superuser)
    }

    /// The owners of many databases, read at once (one query of pg_database): what `owner(of:)`
    /// says for each, without a connection per database. A database that does not exist is not
    /// in it.
    public func owners(of databases: [String]) throws -> [String: (name: String, superuser: Bool)] {
        let db = try admin()
        var out: [String: (name: String, superuser: Bool)] = [:]
        for (database, name, superuser) in try db.query(
            """
            SELECT d.datname, r.rolname, r.rolsuper FROM pg_catalog.pg_database d
            JOIN pg_catalog.pg_roles r ON r.oid = d.datdba WHERE d.datname = ANY($1::text[])
            """, [PGArray.literal(databases)]).decode((String, String, Bool).self)
        {
            out[database] = (name, superuser)
        }
        return out
    }

    /// A connection to `database` as its owner, which is how the suite works in a database a
    /// tenant owns: whatever the tenant defined there (views, triggers, functions, operators)
    /// runs with the tenant's own rights only. `SET ROLE` from a superuser session would not do:
    /// the tenant's code could `RESET ROLE` back to the superuser. So the owner logs in itself:
    /// by peer as its system account (the service account), or with its password over loopback
    /// (an AI). A superuser owner is trusted: a superuser session with `SET ROLE`.
    ///
    /// `knownOwner`: the owner as read already (`owners(of:)`); nil: read it now. `expected`:
    /// the role the configuration says owns the database: it logs in first and asks whether it
    /// is the owner (one query in its own session, which costs no superuser connection); only
    /// when it is not (or cannot log in) is the owner read and logged in as.
    public func ownerConnection(
        _ database: String, _ credentials: Credentials, lockTimeout: String = PGServer.lockTimeout,
        knownOwner: (name: String, superuser: Bool)? = nil, expected: String? = nil
    ) throws -> (PGConnection, owner: String) {
        var failedLogin: Failure?
        if knownOwner == nil, let expected,
            var target = loginTarget(database, role: expected, credentials)
        {
            // Its own role, whatever the role sets (ALTER ROLE ... SET role = pg_database_owner).
            target.settings = PGServer.ownerSettings(lockTimeout: lockTimeout) + [("role", expected)]
            do {
                let connection = try PGConnection(target)
                if let row = try? connection.query(
                    """
                    SELECT current_user, current_user = pg_catalog.pg_get_userbyid(d.datdba)
                    FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
                    """).first,
                    row == [expected, "t"]
                {
                    return (connection, expected)
                }
            } catch {
                failedLogin = error
            }
        }
        guard let (owner, isSuperuser) = try knownOwner ?? self.owner(of: database) else {
            throw Failure("there is no database \(database)", needs: StepName.databases)
        }
        // The owner is the one that could not log in: its error, without a second try (a login
        // may take its whole deadline).
        if let failedLogin, owner == expected { throw failedLogin }
        var target: PGTarget
        if isSuperuser {
            target = adminTarget(database)
        } else if let login = loginTarget(database, role: owner, credentials) {
            target = login
        } else {
            throw Failure(
                "database \(database) is owned by role \(owner), and the suite works in a database only as its "
                    + "owner: \(owner) is not a configured AI (with a password), the service account or a superuser")
        }
        target.settings = PGServer.ownerSettings(lockTimeout: lockTimeout) + (isSuperuser ? PGServer.superuserSettings : [])
            + [("role", isSuperuser ? superuser : owner)]
        let connection = try PGConnection(target)
        if isSuperuser && owner != superuser {
            try connection.execute("SET ROLE \(try connection.identifier(owner))")
        }
        guard try connection.query("SELECT current_user").scalar == owner else {
            throw Failure("the connection to \(database) is not its owner \(owner)")
        }
        return (connection, owner)
    }

    /// How `role` logs in itself: by peer as its system account (the service account), or with
    /// its password over loopback (an AI, the manager); nil when it has neither.
    func loginTarget(_ database: String, role: String, _ credentials: Credentials) -> PGTarget? {
        if credentials.peerAccounts.contains(role), let account = SystemAccount.lookup(role) {
            return PGTarget(host: socketDirectory, port: port, database: database, user: role, asSystemUser: account)
        }
        if let password = credentials.password(role) {
            return PGTarget(host: PGServer.loopback, port: port, database: database, user: role, password: password)
        }
        return nil
    }

    /// A superuser connection to `database`.
    public func admin(_ database: String = "postgres") throws -> PGConnection {
        guard SystemAccount.lookup(superuser) != nil else {
            throw Failure("no system account \(superuser): is PostgreSQL installed?", needs: StepName.postgres)
        }
        do {
            return try PGConnection(adminTarget(database))
        } catch {
            throw unreachable(error, database: database)
        }
    }

    /// A password login over TCP (verify's), with the guard settings and its own role: the
    /// role's and the database's settings (a database owner's `SET role = <itself>`, a
    /// statement timeout) cannot make its checks fail or wait. `pinned`: with the settings of an
    /// owner connection too, so that OwnerSessions may keep it for other checks.
    public func login(_ database: String, user: String, password: Secret, pinned: Bool = false) throws(Failure)
        -> PGConnection
    {
        var target = PGTarget(host: tcpHost, port: port, database: database, user: user, password: password)
        target.settings = (pinned ? PGServer.ownerSettings() : PGServer.guardSettings) + [("role", user)]
        return try PGConnection(target)
    }

    /// A peer login over the socket as a system account of the same name, likewise.
    public func peerLogin(_ database: String, account: SystemAccount, pinned: Bool = false) throws(Failure) -> PGConnection {
        var target = PGTarget(host: socketDirectory, port: port, database: database, user: account.name, asSystemUser: account)
        target.settings = (pinned ? PGServer.ownerSettings() : PGServer.guardSettings) + [("role", account.name)]
        return try PGConnection(target)
    }

    /// The settings of every connection as a database's owner: search_path pinned, a bounded
    /// lock wait.
    static func ownerSettings(lockTimeout: String = PGServer.lockTimeout) -> [(String, String)] {
        pinnedSettings + [("lock_timeout", lockTimeout)]
    }
}
