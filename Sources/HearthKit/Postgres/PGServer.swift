/// How the steps reach the cluster: the superuser by peer authentication (as the `postgres`
/// system account) over the cluster's socket directory, and password roles over TCP.
public struct PGServer: Sendable {
    public var socketDirectory: String
    public var port: Int
    /// The address password logins use (POSTGRES_HOST; `localhost` means 127.0.0.1).
    public var tcpHost: String
    /// The system account and role of the cluster's bootstrap superuser (Debian: postgres).
    public var superuser = "postgres"

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

    /// Where a superuser connection to `database` goes: peer authentication as the
    /// superuser's system account over the socket directory.
    public func adminTarget(_ database: String = "postgres") -> PGTarget {
        PGTarget(
            host: socketDirectory, port: port, database: database, user: superuser,
            asSystemUser: SystemAccount.lookup(superuser))
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

    /// A password login over TCP.
    public func login(_ database: String, user: String, password: Secret) throws(PGError) -> PGConnection {
        try PGConnection(PGTarget(host: tcpHost, port: port, database: database, user: user, password: password))
    }

    /// A peer login over the socket as a system account of the same name.
    public func peerLogin(_ database: String, account: SystemAccount) throws(PGError) -> PGConnection {
        try PGConnection(
            PGTarget(host: socketDirectory, port: port, database: database, user: account.name, asSystemUser: account))
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
