#if canImport(Glibc)
import Glibc
#endif

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
