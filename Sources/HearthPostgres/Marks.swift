import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The mark of what the suite made, as postgresql-common marks its files: a role carries it as
/// its comment (COMMENT ON ROLE takes CREATEROLE, so a tenant cannot put it on or take it off
/// its own role), a database as its comment, the service account in its passwd comment field.
/// The suite adopts nothing that lacks the mark, and the reset drops only what carries it
/// (and has the configured owner).
public enum Marks {
    public static let role = "Managed by HearthMinds bootstrap (hm-databases): dropped by hm-reset."
    public static let database = "Managed by HearthMinds bootstrap (hm-databases): dropped by hm-reset."

    /// The comment of a role (its first 1024 characters: only the mark matters); nil when the
    /// role has none (or does not exist).
    package static func roleComment(_ name: String, _ db: PGConnection) throws -> String? {
        try db.query(
            """
            SELECT pg_catalog.left(pg_catalog.shobj_description(r.oid, 'pg_authid'), 1024) FROM pg_catalog.pg_roles r WHERE r.rolname = $1
            """, [name]).scalar
    }

    /// The comment of a database (its first 1024 characters: the database's owner writes it, and
    /// only the mark matters); nil when it has none (or does not exist).
    static func databaseComment(_ name: String, _ db: PGConnection) throws -> String? {
        try db.query(
            """
            SELECT pg_catalog.left(pg_catalog.shobj_description(d.oid, 'pg_database'), 1024) FROM pg_catalog.pg_database d WHERE d.datname = $1
            """, [name]).scalar
    }

    /// What an operator runs to hand an existing role to the suite.
    static func adoptRoleHint(_ name: String) -> String {
        "COMMENT ON ROLE \"\(name)\" IS '\(role)'"
    }
}

/// The record of the databases the suite made (or adopted): a table in the `postgres` database,
/// in a schema of the cluster's superuser that no one else may use. A database's comment is its
/// owner's to edit (`COMMENT ON DATABASE` takes ownership only), so a tenant could take our mark
/// off its own database, or put another comment on, and so veto the reset; the record no tenant
/// can write. It lives in the cluster, not in a file of root's: `hm-reset --cluster` drops it
/// with the databases it names, and a restore of the whole cluster (pg_dumpall) brings it back
/// with them. The comment stays, as a courtesy for whoever reads the catalog.
///
/// A host set up before the record existed has only the comment marks: the databases step
/// makes the record on its first run and records every database it converges (the ones of the
/// configured names and owners: what it made); until then the reset trusts the comment, as it
/// did.
public enum MadeRecord {
    public static let schema = "hm_bootstrap"
    public static let table = "databases"
    package static var qualified: String { "\(schema).\(table)" }

    /// The recorded names among `names`; nil when there is no record yet (an older host).
    /// Read from the `postgres` database, as its superuser.
    static func recorded(_ names: [String], _ db: PGConnection) throws -> Set<String>? {
        guard try exists(db) else { return nil }
        let rows = try db.query(
            "SELECT name FROM \(qualified) WHERE name = ANY($1::text[])", [PGArray.literal(names)])
        return Set(rows.rows.compactMap { $0[0] })
    }

    package static func exists(_ db: PGConnection) throws -> Bool {
        try db.query("SELECT pg_catalog.to_regclass($1) IS NOT NULL", [qualified]).decodeScalar(Bool.self) == true
    }

    /// The statements that make the record: the schema and table are the superuser's, with no
    /// privilege for anyone else (one action of the databases step, before the databases).
    package static func createPlan() -> SQLPlan {
        var plan = SQLPlan()
        plan.add("CREATE SCHEMA IF NOT EXISTS \(schema)")
        plan.add("REVOKE ALL ON SCHEMA \(schema) FROM PUBLIC")
        plan.add("CREATE TABLE IF NOT EXISTS \(qualified) (name text PRIMARY KEY, recorded timestamptz NOT NULL DEFAULT now())")
        plan.add("REVOKE ALL ON \(qualified) FROM PUBLIC")
        return plan
    }

    /// The statement that records `database`.
    static func recordStatement(_ database: String, _ db: PGConnection) throws -> String {
        "INSERT INTO \(qualified) (name) VALUES (\(try db.literal(database))) ON CONFLICT (name) DO NOTHING"
    }

    /// Forgets `database` (the reset dropped it).
    package static func forget(_ database: String, _ db: PGConnection) throws {
        guard try exists(db) else { return }
        try db.query("DELETE FROM \(qualified) WHERE name = $1", [database])
    }
}
