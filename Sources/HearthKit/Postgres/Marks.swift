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
    static func roleComment(_ name: String, _ db: PGConnection) throws -> String? {
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
