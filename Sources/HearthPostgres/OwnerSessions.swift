import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// Connections to databases as their owners (PGServer.ownerConnection), shared by the actions of
/// one step. A connection is taken out while an action uses it (one worker at a time) and put
/// back when the action ended without an error.
///
/// verify: a database's owner logs in once for its login check, its extensions and its
/// revision; a check that needs the owner's connection while another check of that database
/// holds or is making one waits for it instead of logging in again (a password login is the
/// costly part: SCRAM). Only connections made as `ownerConnection` makes them (the owner itself,
/// search_path pinned, over loopback or its peer socket) are kept.
///
/// At most `maxIdle` idle sessions are kept (the least recently given back closes first): verify
/// goes database by database, and 200 AIs' logins kept open took every connection slot.
///
/// vector-index (`Work.maintenance`): notices collected, `statement_timeout` at the lock timeout,
/// and one database's connection kept at a time (the actions go database by database, so that
/// 200 AIs do not hold 200 sessions).
public final class OwnerSessions: @unchecked Sendable {
    /// What the sessions are for.
    public enum Work: Sendable {
        /// Read-only checks: sessions as `ownerConnection` makes them, every idle one kept.
        case checks
        /// Work in the owner's tables (vector-index): notices collected, each statement bounded
        /// by the lock timeout, at most one idle session (the last database's).
        case maintenance
    }

    public let server: PGServer
    public let credentials: Credentials
    /// The sessions' lock_timeout (and, for maintenance, statement_timeout).
    public let lockTimeout: String
    public let work: Work
    /// The owner of each database as the configuration says.
    private let expected: [String: String]
    private var lock = pthread_mutex_t()
    private var changed = pthread_cond_t()
    private var idle: [String: [(PGConnection, String)]] = [:]
    /// The databases of the idle sessions, one entry per session, least recently given back first.
    private var idleOrder: [String] = []
    /// How many idle sessions are kept at most (checks; maintenance keeps one database's).
    public let maxIdle: Int
    /// Checks holding, or logging in for, an owner's connection, by database.
    private var busy: [String: Int] = [:]
    /// Why the owner's login to a database failed in this step, if it did (checks only): the
    /// checks that need it fail with that at once instead of logging in again (a tenant's
    /// verifier with a huge iteration count would cost each of them the login deadline).
    private var failed: [String: String] = [:]

    public init(
        _ server: PGServer, _ credentials: Credentials, expected: [String: String], work: Work = .checks,
        lockTimeout: String = PGServer.lockTimeout, maxIdle: Int = Workers.defaultWidth
    ) {
        self.maxIdle = max(1, maxIdle)
        self.server = server
        self.credentials = credentials
        self.expected = expected
        self.work = work
        self.lockTimeout = lockTimeout
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
        if let reason = failed[database] {
            pthread_mutex_unlock(&lock)
            throw Failure("\(database): the owner's login failed already in this step: \(reason)")
        }
        busy[database, default: 0] += 1
        let found = idle[database]?.popLast()
        if found != nil, let at = idleOrder.lastIndex(of: database) { idleOrder.remove(at: at) }
        // Maintenance keeps one database's session: another database's closes before a new login.
        var closing = work == .maintenance && found == nil ? closeIdle(except: database) : []
        pthread_mutex_unlock(&lock)
        closing.removeAll()
        if let found { return found }
        do {
            let (connection, owner) = try server.ownerConnection(
                database, credentials, lockTimeout: lockTimeout, expected: expected[database])
            if work == .maintenance {
                connection.collectNotices()
                // (its notices are collected and shown as notes: asked for, as the Migrator asks;
                // every connection asks for none below ERROR otherwise)
                try connection.execute(
                    "SET client_min_messages TO notice; SET statement_timeout TO \(try connection.literal(lockTimeout))")
            }
            return (connection, owner)
        } catch {
            fail(database, error)
            done(database, keeping: nil)
            throw error
        }
    }

    /// Records that the owner's login to `database` failed (see `failed`; checks only).
    public func fail(_ database: String, _ error: any Error) {
        guard work == .checks else { return }
        pthread_mutex_lock(&lock)
        if failed[database] == nil { failed[database] = "\(error)" }
        pthread_mutex_unlock(&lock)
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
                """).decodeScalar(Bool.self)) == true
        else {
            done(database, keeping: nil)
            return
        }
        done(database, keeping: (connection, user))
    }

    private func done(_ database: String, keeping: (PGConnection, String)?) {
        pthread_mutex_lock(&lock)
        busy[database, default: 1] -= 1
        var closing: [PGConnection] = []
        if let keeping {
            idle[database, default: []].append(keeping)
            idleOrder.append(database)
            if work == .maintenance { closing = closeIdle(except: database) }
            // Past the bound, the least recently given back closes.
            while idleOrder.count > maxIdle {
                let oldest = idleOrder.removeFirst()
                if var sessions = idle[oldest], !sessions.isEmpty {
                    closing.append(sessions.removeFirst().0)
                    idle[oldest] = sessions.isEmpty ? nil : sessions
                }
            }
        }
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&lock)
        closing.removeAll()
    }

    /// Takes the idle connections of every database but `database` out of the pool (under the
    /// lock); they close when the caller lets go of them, after unlocking.
    private func closeIdle(except database: String) -> [PGConnection] {
        var closing: [PGConnection] = []
        for other in Array(idle.keys) where other != database {
            closing += (idle.removeValue(forKey: other) ?? []).map(\.0)
        }
        idleOrder.removeAll { $0 != database }
        return closing
    }
}
