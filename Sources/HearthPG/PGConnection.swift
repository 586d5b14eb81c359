import HearthSystem
#if canImport(Glibc)
import Glibc
#endif
import CLibPQ

/// Where and as whom to connect. Values go to libpq as keyword/value parameters, never as a
/// connection string built by hand; a password never leaves this process except to libpq.
public struct PGTarget: Sendable {
    /// A socket directory (starts with '/') or a host address.
    public var host: String
    public var port: Int
    public var database: String
    public var user: String
    public var password: Secret?
    /// Connect with this system account's uid as the effective uid, so that peer
    /// authentication sees that account (root only).
    public var asSystemUser: SystemAccount?
    public var connectTimeout = 10
    /// Session settings sent with the connection (libpq's `options`), as name → value: they
    /// take precedence over what the database or the role set with ALTER ... SET. Values must
    /// hold no white space.
    public var settings: [(String, String)] = []

    public init(
        host: String, port: Int, database: String, user: String, password: Secret? = nil,
        asSystemUser: SystemAccount? = nil
    ) {
        self.host = host
        self.port = port
        self.database = database
        self.user = user
        self.password = password
        self.asSystemUser = asSystemUser
    }

    /// Debian's socket directory.
    public static let debianSocketDirectory = "/var/run/postgresql"
}

/// Rows of text values (NULL as nil), as libpq returns them; the PGresult is freed at once.
public struct PGRows: Sendable {
    public let columns: [String]
    public let rows: [[String?]]

    public var first: [String?]? { rows.first }
    /// The first column of the first row.
    public var scalar: String? { rows.first?.first ?? nil }
}

public final class PGConnection {
    private let conn: OpaquePointer
    public let target: PGTarget
    /// The server's notices, once `collectNotices()` was called (otherwise libpq's default
    /// processor prints them on stderr).
    private var notices: NoticeBox?

    public init(_ target: PGTarget) throws(Failure) {
        self.target = target
        // gssencmode=disable: libpq's default (prefer) asks the GSSAPI library for Kerberos
        // credentials before every TCP login, which reads the credential cache of the thread's
        // user: /tmp/krb5cc_<uid>, a name any local account can take first in /tmp (a FIFO there
        // held every password login until its deadline). The suite uses no Kerberos.
        var keys = ["host", "port", "dbname", "user", "connect_timeout", "application_name", "client_encoding", "gssencmode"]
        var values = [target.host, String(target.port), target.database, target.user,
                      String(target.connectTimeout), "hearthminds-bootstrap", "UTF8", "disable"]
        // No notice or warning is sent unless the suite asks for them (the Migrator does, with
        // SET): a role's or a database's setting whose value the server rejects at login is a
        // WARNING quoting the value, which the role or the database owner chooses — terminal
        // control sequences included — and libpq prints it on root's standard error before the
        // connection is the suite's. (Startup options come before those settings and win.)
        var settings = target.settings
        if !settings.contains(where: { $0.0 == "client_min_messages" }) { settings.append(("client_min_messages", "error")) }
        keys.append("options")
        values.append(settings.map { "-c \($0.0)=\($0.1)" }.joined(separator: " "))
        if let password = target.password {
            keys.append("password")
            values.append(password.reveal)
        } else {
            keys.append("passfile")
            values.append(PGConnection.noPasswordFile)
        }
        let connect: @Sendable () -> OpaquePointer? = { [keys, values] in
            withCStrings(keys) { keyPointers in
                withCStrings(values) { valuePointers in
                    PQconnectdbParams(keyPointers, valuePointers, 0)
                }
            }
        }
        let connection: OpaquePointer?
        if target.password != nil {
            // A password login computes the role's SCRAM proof with the iteration count the
            // server sends, which the role itself may have set to 2^31: the login gets a
            // deadline, past which it is abandoned (its thread finishes and frees it later).
            connection = try PGConnection.withDeadline(Double(target.connectTimeout) + 5, target, connect)
        } else {
            connection = PGConnection.withSwitchedUser(target.asSystemUser) { connect() }
        }
        guard let connection else { throw Failure.database(message: "libpq could not allocate a connection", sqlState: nil) }
        guard PQstatus(connection) == CONNECTION_OK else {
            let text = String(cString: PQerrorMessage(connection)).trimmingCharacters(in: "\n ")
            PQfinish(connection)
            throw Failure.database(
                message: "cannot connect to database \(target.database) as \(target.user) "
                    + "(\(target.host):\(target.port)): \(text)", sqlState: nil)
        }
        // A notice that still comes (a tenant's function that sets client_min_messages itself)
        // reaches standard error printable, as everything the suite shows.
        PQsetNoticeProcessor(connection, { _, message in
            guard let message else { return }
            Console.write(Console.printable(Bounded.text(String(cString: message))), to: STDERR_FILENO)
        }, nil)
        self.conn = connection
    }

    deinit {
        PQfinish(conn)
    }

    /// Runs `connect` on another thread and waits at most `seconds` for it.
    private static func withDeadline(
        _ seconds: Double, _ target: PGTarget, _ connect: @escaping @Sendable () -> OpaquePointer?
    ) throws(Failure) -> OpaquePointer? {
        final class Box: @unchecked Sendable {
            var lock = pthread_mutex_t()
            var done = pthread_cond_t()
            var finished = false
            var abandoned = false
            var connection: OpaquePointer?
        }
        let box = Box()
        pthread_mutex_init(&box.lock, nil)
        pthread_cond_init(&box.done, nil)
        let context = Unmanaged.passRetained(ConnectJob(box: box, connect: connect)).toOpaque()
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { raw in
            let job = Unmanaged<ConnectJob>.fromOpaque(raw!).takeRetainedValue()
            let connection = job.connect()
            let box = job.box as! Box
            pthread_mutex_lock(&box.lock)
            if box.abandoned {
                if let connection { PQfinish(connection) }
            } else {
                box.connection = connection
            }
            box.finished = true
            pthread_cond_signal(&box.done)
            pthread_mutex_unlock(&box.lock)
            return nil
        }, context) == 0 else {
            Unmanaged<ConnectJob>.fromOpaque(context).release()
            return connect()
        }
        pthread_detach(thread)
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        deadline.tv_sec += Int(seconds)
        pthread_mutex_lock(&box.lock)
        while !box.finished {
            if pthread_cond_timedwait(&box.done, &box.lock, &deadline) == ETIMEDOUT { break }
        }
        let finished = box.finished
        if !finished { box.abandoned = true }
        let connection = box.connection
        pthread_mutex_unlock(&box.lock)
        guard finished else {
            throw Failure.database(
                message: "cannot connect to database \(target.database) as \(target.user) (\(target.host):\(target.port)): "
                    + "the login did not finish within \(Int(seconds)) s (a server that does not answer, or a password "
                    + "verifier of the role's with a huge iteration count); abandoned", sqlState: nil)
        }
        return connection
    }

    /// Runs `body` on this thread with the effective uid of `account` (then the previous one
    /// again), so that the server's peer authentication sees that account. The switch is
    /// per thread and `body` is synchronous, so nothing else runs under that identity.
    private static func withSwitchedUser<T>(_ account: SystemAccount?, _ body: () -> T) -> T {
        guard let account, geteuid() != account.uid else { return body() }
        let previous = geteuid()
        guard hm_thread_set_euid(account.uid) == 0 else { return body() }
        defer { _ = hm_thread_set_euid(previous) }
        return body()
    }

    /// From now on the server's notices (NOTICE, WARNING, ...) are kept for `takeNotices()`
    /// instead of being printed by libpq: the caller shows them where they belong.
    public func collectNotices() {
        guard notices == nil else { return }
        let box = NoticeBox()
        notices = box
        PQsetNoticeReceiver(conn, { context, result in
            guard let context, let result else { return }
            let box = Unmanaged<NoticeBox>.fromOpaque(context).takeUnretainedValue()
            func field(_ code: Character) -> String? {
                PQresultErrorField(result, Int32(code.asciiValue!)).map { String(cString: $0) }
            }
            var text = "\(field("S") ?? "NOTICE"): \(field("M") ?? "")"
            if let detail = field("D") { text += " — \(detail)" }
            if let hint = field("H") { text += " HINT: \(hint)" }
            // Bounded: a tenant's trigger may raise notices of any size and number.
            guard box.messages.count < NoticeBox.limit else { return }
            box.messages.append(Bounded.text(text))
        }, Unmanaged.passUnretained(box).toOpaque())
    }

    /// The notices kept since the last call (see `collectNotices()`).
    public func takeNotices() -> [String] {
        guard let notices else { return [] }
        defer { notices.messages.removeAll() }
        return notices.messages
    }

    /// One statement with its values as parameters ($1, $2, ...).
    @discardableResult
    public func query(_ sql: String, _ params: [String?] = []) throws(Failure) -> PGRows {
        let result: OpaquePointer? = withOptionalCStrings(params) { pointers in
            PQexecParams(conn, sql, Int32(params.count), nil, pointers, nil, nil, 0)
        }
        return try consume(result)
    }

    /// A script of one or more statements without parameters (migrations, DDL built with
    /// escaped identifiers).
    public func execute(_ sql: String) throws(Failure) {
        _ = try consume(PQexec(conn, sql))
    }

    private func consume(_ result: OpaquePointer?) throws(Failure) -> PGRows {
        guard let result else {
            throw Failure.database(message: String(cString: PQerrorMessage(conn)).trimmingCharacters(in: "\n "), sqlState: nil)
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else {
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let text = String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: "\n ")
            throw Failure.database(message: text.isEmpty ? "query failed" : text, sqlState: state)
        }
        let columnCount = PQnfields(result)
        let rowCount = PQntuples(result)
        var columns: [String] = []
        for c in 0..<columnCount { columns.append(String(cString: PQfname(result, c))) }
        var rows: [[String?]] = []
        rows.reserveCapacity(Int(rowCount))
        for r in 0..<rowCount {
            var row: [String?] = []
            for c in 0..<columnCount {
                row.append(PQgetisnull(result, r, c) == 1 ? nil : String(cString: PQgetvalue(result, r, c)))
            }
            rows.append(row)
        }
        return PGRows(columns: columns, rows: rows)
    }

    /// A quoted identifier, by libpq's PQescapeIdentifier.
    public func identifier(_ name: String) throws(Failure) -> String {
        guard let escaped = PQescapeIdentifier(conn, name, name.utf8.count) else {
            throw Failure.database(message: String(cString: PQerrorMessage(conn)).trimmingCharacters(in: "\n "), sqlState: nil)
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// A quoted literal, by libpq's PQescapeLiteral (for the few statements, such as ALTER
    /// ROLE ... PASSWORD, that take no parameters).
    public func literal(_ value: String) throws(Failure) -> String {
        guard let escaped = PQescapeLiteral(conn, value, value.utf8.count) else {
            throw Failure.database(message: String(cString: PQerrorMessage(conn)).trimmingCharacters(in: "\n "), sqlState: nil)
        }
        defer { PQfreemem(escaped) }
        return String(cString: escaped)
    }

    /// A SCRAM-SHA-256 verifier for `password`, made by libpq on this side, so the clear text
    /// never reaches the server or its logs.
    public func scramVerifier(_ password: Secret, user: String) throws(Failure) -> String {
        guard let encrypted = PQencryptPasswordConn(conn, password.reveal, user, "scram-sha-256") else {
            throw Failure.database(message: String(cString: PQerrorMessage(conn)).trimmingCharacters(in: "\n "), sqlState: nil)
        }
        defer { PQfreemem(encrypted) }
        return String(cString: encrypted)
    }

    /// What `pg_isready` reports, asked in this process (libpq's PQpingParams): whether the
    /// server at `host` (a socket directory or an address) and `port` accepts connections.
    public enum Ping: Sendable, Equatable, CustomStringConvertible {
        case ok, rejecting, noResponse, noAttempt

        public var description: String {
            switch self {
            case .ok: "accepting connections"
            case .rejecting: "rejecting connections (starting up or shutting down)"
            case .noResponse: "no response"
            case .noAttempt: "no attempt made (bad parameters)"
            }
        }
    }

    public static func ping(host: String, port: Int, connectTimeout: Int = 10) -> Ping {
        let keys = ["host", "port", "connect_timeout", "dbname", "passfile", "gssencmode"]
        let values = [host, String(port), String(connectTimeout), "postgres", noPasswordFile, "disable"]
        let result = withCStrings(keys) { k in withCStrings(values) { v in PQpingParams(k, v, 0) } }
        switch result {
        case PQPING_OK: return .ok
        case PQPING_REJECT: return .rejecting
        case PQPING_NO_RESPONSE: return .noResponse
        default: return .noAttempt
        }
    }

    /// The password file of every connection the suite gives no password (peer logins, pings):
    /// none. libpq would otherwise answer a server's request for a password from `~/.pgpass`
    /// of the thread's effective user (root's, for a ping) — and the server of a peer login is
    /// reached over the socket directory the postmaster.pid names, which the postgres account
    /// can rewrite to name a fake server of its own. Nobody but the kernel makes files in /proc.
    static let noPasswordFile = "/proc/hearthminds-no-password-file"

    /// libpq's environment variables (PostgreSQL 15's, and 16's), which would give the suite's
    /// connections a password (PGPASSWORD, a password file, a service file's), another server or
    /// other settings from the operator's environment: removed when the process starts
    /// (MultiCall.main), before any thread. Our own keys (PG_VERSION, PGVECTOR_...) stay.
    public static let libpqEnvironment = [
        "PGHOST", "PGHOSTADDR", "PGPORT", "PGDATABASE", "PGUSER", "PGPASSWORD", "PGPASSFILE", "PGCHANNELBINDING",
        "PGSERVICE", "PGSERVICEFILE", "PGOPTIONS", "PGAPPNAME", "PGSSLMODE", "PGREQUIRESSL", "PGSSLCOMPRESSION",
        "PGSSLCERT", "PGSSLKEY", "PGSSLCERTMODE", "PGSSLROOTCERT", "PGSSLCRL", "PGSSLCRLDIR", "PGSSLSNI",
        "PGREQUIREPEER", "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION", "PGGSSENCMODE", "PGKRBSRVNAME",
        "PGGSSLIB", "PGGSSDELEGATION", "PGCONNECT_TIMEOUT", "PGCLIENTENCODING", "PGTARGETSESSIONATTRS",
        "PGLOADBALANCEHOSTS", "PGREQUIREAUTH", "PGDATESTYLE", "PGTZ", "PGGEQO", "PGSYSCONFDIR", "PGLOCALEDIR",
    ]

    public static func scrubEnvironment() {
        for name in libpqEnvironment { unsetenv(name) }
        for name in kerberosEnvironment { unsetenv(name) }
        // No Kerberos credential cache either: were GSSAPI ever asked (a server of the postgres
        // account's at a peer login's socket may ask for GSS authentication), the default cache
        // /tmp/krb5cc_<uid> is a name any local account can plant first.
        setenv("KRB5CCNAME", "FILE:" + noCredentialCache, 1)
    }

    /// The Kerberos library's environment (a configuration, a keytab, a trace file), removed too.
    public static let kerberosEnvironment = ["KRB5_CONFIG", "KRB5_KDC_PROFILE", "KRB5_KTNAME", "KRB5_CLIENT_KTNAME", "KRB5_TRACE", "KRB5RCACHEDIR", "KRB5RCACHETYPE", "KRB5RCACHENAME"]

    /// A credential cache that cannot exist (nobody but the kernel makes files in /proc).
    static let noCredentialCache = "/proc/hearthminds-no-credential-cache"

    /// The server version as a number (150018 for 15.18).
    public var serverVersion: Int { Int(PQserverVersion(conn)) }
}

private func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafePointer<CChar>?>) -> T) -> T {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { pointers.forEach { free($0) } }
    return pointers.withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}

private func withOptionalCStrings<T>(_ strings: [String?], _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> T) -> T {
    let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { $0.map { strdup($0) } ?? nil }
    defer { pointers.forEach { free($0) } }
    if pointers.isEmpty { return body(nil) }
    return pointers.withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) { body($0) }
    }
}

/// What the connecting thread of `withDeadline` runs, and where it leaves the connection.
private final class ConnectJob: @unchecked Sendable {
    let box: AnyObject
    let connect: @Sendable () -> OpaquePointer?

    init(box: AnyObject, connect: @escaping @Sendable () -> OpaquePointer?) {
        self.box = box
        self.connect = connect
    }
}

/// Where a connection's notice receiver leaves the notices (owned by the connection).
private final class NoticeBox {
    var messages: [String] = []
    /// The notices kept between two takes, at most.
    static let limit = 100
}
