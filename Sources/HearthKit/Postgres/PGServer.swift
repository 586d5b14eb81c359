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
    /// which resolve no name): not read-only, not cut short, not ended while idle. (Every
    /// connection also gets client_min_messages=error: see PGConnection.)
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

    /// The owners of many databases, read at once (one query of pg_database): what `owner(of:)`
    /// says for each, without a connection per database. A database that does not exist is not
    /// in it.
    public func owners(of databases: [String]) throws -> [String: (name: String, superuser: Bool)] {
        let db = try admin()
        var out: [String: (name: String, superuser: Bool)] = [:]
        for row in try db.query(
            """
            SELECT d.datname, r.rolname, r.rolsuper FROM pg_catalog.pg_database d
            JOIN pg_catalog.pg_roles r ON r.oid = d.datdba WHERE d.datname = ANY($1::text[])
            """, [PGArray.literal(databases)]).rows
        {
            out[row[0] ?? ""] = (row[1] ?? "", row[2] == "t")
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
        var failedLogin: PGError?
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
            throw HearthError("there is no database \(database)")
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
            throw HearthError(
                "database \(database) is owned by role \(owner), and the suite works in a database only as its "
                    + "owner: \(owner) is not a configured AI (with a password), the service account or a superuser")
        }
        target.settings = PGServer.ownerSettings(lockTimeout: lockTimeout) + [("role", isSuperuser ? superuser : owner)]
        let connection = try PGConnection(target)
        if isSuperuser && owner != superuser {
            try connection.execute("SET ROLE \(try connection.identifier(owner))")
        }
        guard try connection.query("SELECT current_user").scalar == owner else {
            throw HearthError("the connection to \(database) is not its owner \(owner)")
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
    /// statement timeout) cannot make its checks fail or wait. `pinned`: with the settings of an
    /// owner connection too, so that OwnerSessions may keep it for other checks.
    public func login(_ database: String, user: String, password: Secret, pinned: Bool = false) throws(PGError)
        -> PGConnection
    {
        var target = PGTarget(host: tcpHost, port: port, database: database, user: user, password: password)
        target.settings = (pinned ? PGServer.ownerSettings() : PGServer.guardSettings) + [("role", user)]
        return try PGConnection(target)
    }

    /// A peer login over the socket as a system account of the same name, likewise.
    public func peerLogin(_ database: String, account: SystemAccount, pinned: Bool = false) throws(PGError) -> PGConnection {
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

/// Owners' connections shared by the read-only checks of one step (verify): a database's owner
/// logs in once for its login check, its extensions and its revision. A connection is taken out
/// while a check uses it (one worker at a time) and put back when the check ended without an
/// error; a check that needs the owner's connection while another check of that database holds
/// or is making one waits for it instead of logging in again (a password login is the costly
/// part: SCRAM). Only connections made as `ownerConnection` makes them (the owner itself,
/// search_path pinned, over loopback or its peer socket) are kept.
public final class OwnerSessions: @unchecked Sendable {
    public let server: PGServer
    public let credentials: Credentials
    /// The owner of each database as the configuration says.
    private let expected: [String: String]
    private var lock = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var idle: [String: [(PGConnection, String)]] = [:]
    /// Checks holding, or logging in for, an owner's connection, by database.
    private var busy: [String: Int] = [:]

    public init(_ server: PGServer, _ credentials: Credentials, expected: [String: String]) {
        self.server = server
        self.credentials = credentials
        self.expected = expected
        pthread_mutex_init(&lock, nil)
        pthread_cond_init(&changed, nil)
    }

    deinit {
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&lock)
    }

    /// Runs `body` with an owner connection to `database` (an idle one, one another check is
    /// about to give back, or a new login).
    public func with<T>(_ database: String, _ body: (PGConnection, String) throws -> T) throws -> T {
        let (connection, owner) = try take(database)
        let result: T
        do {
            result = try body(connection, owner)
        } catch {
            done(database, keeping: nil)
            throw error
        }
        done(database, keeping: (connection, owner))
        return result
    }

    func take(_ database: String) throws -> (PGConnection, String) {
        pthread_mutex_lock(&lock)
        while idle[database, default: []].isEmpty && busy[database, default: 0] > 0 {
            pthread_cond_wait(&changed, &lock)
        }
        busy[database, default: 0] += 1
        let found = idle[database]?.popLast()
        pthread_mutex_unlock(&lock)
        if let found { return found }
        do {
            return try server.ownerConnection(database, credentials, expected: expected[database])
        } catch {
            done(database, keeping: nil)
            throw error
        }
    }

    /// A check that logs in as `database`'s configured owner itself begins: the checks that
    /// need that owner's connection wait for it (`keep` ends it).
    public func begin(_ database: String) {
        pthread_mutex_lock(&lock)
        busy[database, default: 0] += 1
        pthread_mutex_unlock(&lock)
    }

    /// Ends what `begin` began, keeping `connection` (a login as `user` by `server.login` or
    /// `peerLogin` with `pinned`; nil: none) when it is what `ownerConnection` would make: the
    /// configured owner, which owns the database (asked in that session), logged in over
    /// loopback or its peer socket.
    public func keep(_ database: String, _ connection: PGConnection?, user: String, tcp: Bool) {
        guard let connection, expected[database] == user,
            tcp ? server.tcpHost == PGServer.loopback : credentials.peerAccounts.contains(user),
            (try? connection.query(
                """
                SELECT current_user = pg_catalog.pg_get_userbyid(d.datdba)
                FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
                """).scalar) == "t"
        else {
            done(database, keeping: nil)
            return
        }
        done(database, keeping: (connection, user))
    }

    private func done(_ database: String, keeping: (PGConnection, String)?) {
        pthread_mutex_lock(&lock)
        busy[database, default: 1] -= 1
        if let keeping { idle[database, default: []].append(keeping) }
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&lock)
    }
}

/// Superuser connections by database, opened on first use and reused by the actions of one
/// step (a converged run then costs one connection per database). Each worker thread of an
/// ActionGroup has its own (a libpq connection serves one thread at a time): one connection per
/// database per worker. At most `limit` stay open for the step itself and `workerLimit` for each
/// worker: past it the least recently used one other than `postgres` closes, so that a step
/// over many databases (200 AI names) stays well below the server's max_connections (100 by
/// default) instead of failing with "too many clients".
public final class AdminConnections: @unchecked Sendable {
    public let server: PGServer
    public let limit: Int
    public let workerLimit: Int
    private let mutex = Mutex()
    /// By worker (0: the step itself), then by database.
    private var open: [Int: [String: PGConnection]] = [:]
    /// Database names by worker, least recently used first.
    private var order: [Int: [String]] = [:]

    public init(_ server: PGServer, limit: Int = 8, workerLimit: Int = 3) {
        self.server = server
        self.limit = max(2, limit)
        self.workerLimit = max(2, workerLimit)
    }

    /// How many connections are open now (all workers).
    public var openCount: Int { mutex.locked { open.values.map(\.count).reduce(0, +) } }

    /// The connection to `database` of the worker this runs on (0: the step itself).
    public func get(_ database: String = "postgres") throws -> PGConnection {
        try get(database, worker: Workers.current)
    }

    /// The step's own connection to `database` (worker 0), for work a worker does under a lock
    /// of its own while the step waits for its workers (ClusterCatalog's reads): no connection
    /// more for it.
    public func step(_ database: String = "postgres") throws -> PGConnection {
        try get(database, worker: 0)
    }

    private func get(_ database: String, worker: Int) throws -> PGConnection {
        if let connection = mutex.locked({ () -> PGConnection? in
            guard let connection = open[worker]?[database] else { return nil }
            touch(worker, database)
            return connection
        }) {
            return connection
        }
        // Connecting takes a while: not under the lock (other workers connect meanwhile).
        let connection = try server.admin(database)
        var closing: [PGConnection] = []
        mutex.locked {
            let cap = worker == 0 ? limit : workerLimit
            while open[worker, default: [:]].count >= cap, let victim = order[worker]?.first(where: { $0 != "postgres" }) {
                if let old = open[worker]?.removeValue(forKey: victim) { closing.append(old) }
                order[worker]?.removeAll { $0 == victim }
            }
            open[worker, default: [:]][database] = connection
            touch(worker, database)
        }
        closing.removeAll()
        return connection
    }

    private func touch(_ worker: Int, _ database: String) {
        order[worker, default: []].removeAll { $0 == database }
        order[worker, default: []].append(database)
    }

    /// Closes the workers' connections (an ActionGroup has ended; the step's own stay).
    public func closeWorkers() {
        let closing = mutex.locked { () -> [Int: [String: PGConnection]] in
            let workers = open.filter { $0.key != 0 }
            for key in workers.keys {
                open[key] = nil
                order[key] = nil
            }
            return workers
        }
        _ = closing
    }

    /// Forgets every connection (they close), e.g. after the server restarted.
    public func reset() {
        mutex.locked {
            open.removeAll()
            order.removeAll()
        }
    }
}

/// How many workers side by side against the server: `cap` (Workers.defaultWidth: the cores)
/// bounded by the connections the server has free, `perWorker` each, a few kept for others.
public enum Parallelism {
    public static let keptFree = 5

    public static func width(cap: Int = Workers.defaultWidth, perWorker: Int, _ db: PGConnection) -> Int {
        guard cap > 1,
            let row = try? db.query(
                """
                SELECT pg_catalog.current_setting('max_connections')::int
                       - pg_catalog.current_setting('superuser_reserved_connections')::int
                       - (SELECT count(*) FROM pg_catalog.pg_stat_activity WHERE backend_type = 'client backend')::int
                """).scalar,
            let free = Int(row)
        else { return max(1, min(cap, 1)) }
        return max(1, min(cap, (free - keptFree) / max(1, perWorker)))
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
