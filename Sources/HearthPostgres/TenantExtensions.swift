import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Creating an extension in a database a tenant owns.
///
/// `CREATE EXTENSION ... SCHEMA public` runs the extension's script as the superuser who
/// creates it, with `public` on the script's search_path. In PostgreSQL 15 a database's owner
/// owns its `public` schema (`pg_database_owner`), so a tenant may have planted there a
/// function or operator that is a better match for an unqualified call in the script (a
/// `public.lower(varchar)` for `lower('x'::varchar)`, say), which would then run as the
/// superuser: the tests show an AI making itself superuser so.
///
/// So the extension is created in a new, empty schema of the creating superuser's, where
/// nothing of the tenant's is on the path (pg_catalog, then that schema), and then moved to
/// `public` (`ALTER EXTENSION ... SET SCHEMA` runs no script, only renames), all in one
/// transaction: no one sees the schema. An extension that cannot be moved (its control file
/// says `relocatable = false`) is not created by a superuser in a tenant's database at all: a
/// false result naming it.
public enum TenantExtensions {
    /// The prefix of the schema an extension is created in before it is moved to public.
    public static let schemaPrefix = "hm_ext_"

    /// Creates `name` in schema public of the database `db` is connected to (a superuser
    /// connection with the pinned search_path), as `role` (SET LOCAL ROLE, so that it owns the
    /// extension) or as the session's user. Nothing when it exists already.
    public static func create(_ name: String, in db: PGConnection, as role: String? = nil) throws {
        if try db.query("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = $1", [name]).first != nil { return }
        try requireRelocatable(name, db)
        let schema = schemaPrefix + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try db.execute("BEGIN")
        do {
            if let role { try db.execute("SET LOCAL ROLE \(try db.identifier(role))") }
            for statement in try statements(name, schema: schema, db) { try db.execute(statement) }
            try db.execute("COMMIT")
        } catch {
            _ = try? db.execute("ROLLBACK")
            throw error
        }
    }

    /// The statements, in order, for the SQL an operator is shown (`hm-migrate --sql`).
    public static func statements(_ name: String, schema: String, _ db: PGConnection) throws -> [String] {
        let ext = try db.identifier(name)
        let temporary = try db.identifier(schema)
        return [
            "CREATE SCHEMA \(temporary)",
            "CREATE EXTENSION \(ext) SCHEMA \(temporary)",
            "ALTER EXTENSION \(ext) SET SCHEMA public",
            "DROP SCHEMA \(temporary)",
        ]
    }

    /// What `create` runs, as a dry run shows it (the schema's name is random when it runs).
    public static func plan(_ name: String, in db: PGConnection, as role: String? = nil) throws -> SQLPlan {
        var plan = SQLPlan()
        plan.add("BEGIN")
        if let role { plan.add("SET LOCAL ROLE \(try db.identifier(role))") }
        for statement in try statements(name, schema: schemaPrefix + "<random>", db) { plan.add(statement) }
        plan.add("COMMIT")
        return plan
    }

    /// Updates `name` in the database `db` is connected to (a superuser connection) to the
    /// version the server offers (issue 24: a host with an older pgvector), as `role` (the
    /// extension's owner): like `create`, the update script runs in a new, empty schema of the
    /// owner's, with nothing of the tenant's on its path (the extension moved there, updated,
    /// moved back to public), in one transaction. The version before; nil when nothing was to do.
    @discardableResult
    public static func update(_ name: String, in db: PGConnection, as role: String) throws -> String? {
        guard let row = try installed(name, db), row.version != row.offered else { return nil }
        guard row.schema == "public" else {
            throw Failure.hostWrong("extension \(name) is in schema \(row.schema), not public: the suite does not update it")
        }
        try requireRelocatable(name, db)
        let schema = schemaPrefix + String(UInt64.random(in: 0...UInt64.max), radix: 16)
        try db.execute("BEGIN")
        do {
            try db.execute("SET LOCAL ROLE \(try db.identifier(role))")
            for statement in try updateStatements(name, schema: schema, db) { try db.execute(statement) }
            try db.execute("COMMIT")
        } catch {
            _ = try? db.execute("ROLLBACK")
            throw error
        }
        return row.version
    }

    public static func updateStatements(_ name: String, schema: String, _ db: PGConnection) throws -> [String] {
        let ext = try db.identifier(name)
        let temporary = try db.identifier(schema)
        return [
            "CREATE SCHEMA \(temporary)",
            "ALTER EXTENSION \(ext) SET SCHEMA \(temporary)",
            "ALTER EXTENSION \(ext) UPDATE",
            "ALTER EXTENSION \(ext) SET SCHEMA public",
            "DROP SCHEMA \(temporary)",
        ]
    }

    /// The extension as created here (its version, schema and owner) and the version the server
    /// offers; nil when it is not created.
    public static func installed(_ name: String, _ db: PGConnection) throws
        -> (version: String, schema: String, owner: String, offered: String)?
    {
        guard
            let (version, schema, owner, offered) = try db.query(
                """
                SELECT e.extversion, n.nspname::text, pg_catalog.pg_get_userbyid(e.extowner)::text, a.default_version
                FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
                JOIN pg_catalog.pg_available_extensions a ON a.name = e.extname
                WHERE e.extname = $1
                """, [name]
            ).decodeFirst((String, String, String, String).self)
        else { return nil }
        return (version, schema, owner, offered)
    }

    /// A hostWrong Failure unless the version CREATE EXTENSION would install may be moved.
    static func requireRelocatable(_ name: String, _ db: PGConnection) throws {
        let relocatable = try db.query(
            """
            SELECT v.relocatable FROM pg_catalog.pg_available_extensions a
            JOIN pg_catalog.pg_available_extension_versions v ON v.name = a.name AND v.version = a.default_version
            WHERE a.name = $1
            """, [name]).decodeScalar(Bool.self)
        guard let relocatable else {
            throw Failure.hostWrong("extension \(name) is not available on this server (no \(name).control in its extension directory)")
        }
        guard relocatable else {
            throw Failure.hostWrong(
                "extension \(name) is not relocatable (its control file), so it can only be created with public on its "
                    + "script's search_path, where the database's owner may have planted a function its script would "
                    + "call as the superuser: the suite does not create it in \(try currentDatabase(db)); create it by "
                    + "hand after checking public, or leave it out of AI_DEFAULT_EXTENSIONS and the revisions")
        }
    }

    private static func currentDatabase(_ db: PGConnection) throws -> String {
        try db.query("SELECT pg_catalog.current_database()").scalar ?? "this database"
    }
}
