import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
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
