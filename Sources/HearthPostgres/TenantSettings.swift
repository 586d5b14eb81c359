import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Settings a tenant may put on its own database or role (`ALTER DATABASE ... SET`,
/// `ALTER ROLE ... [IN DATABASE ...] SET`) that the suite does not allow there: libraries loaded
/// into every session. One that does not exist fails every login to the database (or as the
/// role) — the operator's psql and pg_dump included — and one that does runs its code in every
/// session. The suite's own sessions override them at their start (PGServer.guardSettings); the
/// databases step removes them, a change it reports, so the host converges without the
/// operator. Every other setting of a tenant's stays its own: the suite's sessions override
/// what would break or slow them (search_path, role, timeouts, read-only, ...).
public enum TenantSettings {
    public static let disallowed = ["local_preload_libraries", "session_preload_libraries"]

    /// One disallowed setting as pg_db_role_setting has it: for a database (role nil), a role
    /// (database nil), or a role in a database.
    package struct Found: Equatable, CustomStringConvertible {
        package let database: String?
        package let role: String?
        package let name: String

        package var description: String {
            switch (database, role) {
            case (let d?, let r?): "\(name) of role \(r) in database \(d)"
            case (let d?, nil): "\(name) of database \(d)"
            default: "\(name) of role \(role ?? "?")"
            }
        }
    }

    /// The disallowed settings on `databases` (for anyone in them) and on `roles` (anywhere).
    /// pg_db_role_setting is a shared catalog: read from the `postgres` database.
    package static func find(databases: [String], roles: [String], _ db: PGConnection) throws -> [Found] {
        try db.query(
            """
            SELECT d.datname, r.rolname, pg_catalog.split_part(c.setting, '=', 1)
            FROM pg_catalog.pg_db_role_setting s
            LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
            LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
            CROSS JOIN LATERAL pg_catalog.unnest(s.setconfig) AS c(setting)
            WHERE (d.datname = ANY($1::text[]) OR r.rolname = ANY($2::text[]))
              AND pg_catalog.lower(pg_catalog.split_part(c.setting, '=', 1)) = ANY($3::text[])
            ORDER BY 1, 2, 3
            """, [PGArray.literal(databases), PGArray.literal(roles), PGArray.literal(disallowed)]
        ).rows.map { Found(database: $0[0], role: $0[1], name: $0[2] ?? "") }
    }

    /// The statements that remove them (as the superuser, from the `postgres` database).
    package static func removalPlan(_ found: [Found], _ db: PGConnection) throws -> SQLPlan {
        var plan = SQLPlan()
        for setting in found {
            let name = try db.identifier(setting.name)
            switch (setting.database, setting.role) {
            case (let d?, let r?):
                plan.add("ALTER ROLE \(try db.identifier(r)) IN DATABASE \(try db.identifier(d)) RESET \(name)")
            case (let d?, nil):
                plan.add("ALTER DATABASE \(try db.identifier(d)) RESET \(name)")
            case (nil, let r?):
                plan.add("ALTER ROLE \(try db.identifier(r)) RESET \(name)")
            case (nil, nil):
                continue
            }
        }
        return plan
    }
}
