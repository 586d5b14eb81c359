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

    /// A superuser connection to `database`.
    public func admin(_ database: String = "postgres") throws -> PGConnection {
        guard let account = SystemAccount.lookup(superuser) else {
            throw HearthError("no system account \(superuser): is PostgreSQL installed?")
        }
        do {
            return try PGConnection(
                PGTarget(host: socketDirectory, port: port, database: database, user: superuser, asSystemUser: account))
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
/// step (a converged run then costs one connection per database).
public final class AdminConnections {
    public let server: PGServer
    private var open: [String: PGConnection] = [:]

    public init(_ server: PGServer) {
        self.server = server
    }

    public func get(_ database: String = "postgres") throws -> PGConnection {
        if let connection = open[database] { return connection }
        let connection = try server.admin(database)
        open[database] = connection
        return connection
    }

    /// Forgets every connection (they close), e.g. after the server restarted.
    public func reset() {
        open.removeAll()
    }
}
