import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The cluster-wide catalogs the databases step checks, read once for every role and database
/// it names (one query each for roles, databases and the server's SCRAM iteration count),
/// instead of once per role or database. A converged run reads each once; an apply makes the
/// next read fresh (`invalidate`, under the same lock as a read: a read that began before an
/// apply committed is never kept after it).
///
/// Read as the superuser from the `postgres` database (pg_authid, pg_database: shared catalogs,
/// schema-qualified, with the session's search_path pinned), by whichever worker asks first.
public final class ClusterCatalog: @unchecked Sendable {
    private let roleNames: [String]
    private let databaseNames: [String]
    private let connection: () throws -> PGConnection
    private let mutex = Mutex()
    private var roles: [String: RoleSpec.State]?
    private var databases: [String: DatabaseSpec.Found]?
    private var iterations: Int?

    /// `connection`: the superuser's connection to `postgres` of the calling worker.
    public init(roles: [String], databases: [String], connection: @escaping () throws -> PGConnection) {
        roleNames = roles
        databaseNames = databases
        self.connection = connection
    }

    /// Forgets what was read: the next question reads again.
    public func invalidate() {
        mutex.locked {
            roles = nil
            databases = nil
        }
    }

    /// The role as the server has it; nil when there is none.
    package func role(_ name: String) throws -> RoleSpec.State? {
        try mutex.locked {
            if roles == nil { roles = try RoleSpec.states(roleNames, try connection()) }
            return roles?[name]
        }
    }

    /// The database as the catalog has it; nil when there is none.
    package func database(_ name: String) throws -> DatabaseSpec.Found? {
        try mutex.locked {
            if databases == nil { databases = try DatabaseSpec.findAll(databaseNames, try connection()) }
            return databases?[name]
        }
    }

    /// The iteration count the server gives new SCRAM verifiers (read once: a setting).
    package func serverIterations() throws -> Int {
        try mutex.locked {
            if let iterations { return iterations }
            let value = try SCRAMVerifier.serverIterations(try connection())
            iterations = value
            return value
        }
    }
}
