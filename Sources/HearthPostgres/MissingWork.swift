import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
extension PGServer {
    /// A superuser connection that could not be made, as the error a check reports, saying
    /// which step's work is missing when that is why (a dry run on a new host reports the check
    /// as unknown, needing that step): the server does not answer on its socket (the postgres
    /// step), or it answers but has no database `database` (the databases step).
    func unreachable(_ error: any Error, database: String) -> Failure {
        if PGConnection.ping(host: socketDirectory, port: port, connectTimeout: 2) == .noResponse {
            return Failure("\(error)", needs: StepName.postgres)
        }
        if database != "postgres", let db = try? PGConnection(adminTarget()),
            (try? db.query("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", [database]).rows.isEmpty) == true
        {
            return Failure("\(error)", needs: StepName.databases)
        }
        return Failure("\(error)")
    }
}
