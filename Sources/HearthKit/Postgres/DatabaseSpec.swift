/// One of our databases: its owner, who else may connect, and who reads its shared tables.
public struct DatabaseSpec: Sendable {
    public let name: String
    public let owner: String
    /// Roles besides the owner that may CONNECT (and nothing else at database level); PUBLIC
    /// may not.
    public let connectors: [String]
    /// Roles that read every table in schema public, now and later (default privileges on
    /// the owner's new tables).
    public let readers: [String]

    /// HEARTHMINDS_DB (owned by the service account; every AI and the manager connect and
    /// read), then each AI's database (owned by the AI; nobody else connects).
    public static func all(_ config: HearthConfig) -> [DatabaseSpec] {
        let shared = config.ais.map(\.name) + [config.hearthmindsUser]
        return [DatabaseSpec(name: config.hearthmindsDB, owner: config.serviceUser, connectors: shared, readers: shared)]
            + config.ais.map { DatabaseSpec(name: $0.database, owner: $0.name, connectors: [], readers: []) }
    }

    // MARK: the database itself

    /// (owner, encoding) of the database; nil when it does not exist.
    static func ownerAndEncoding(_ name: String, _ db: PGConnection) throws -> (owner: String, encoding: String)? {
        guard let row = try db.query(
            "SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding) FROM pg_database WHERE datname = $1",
            [name]).first
        else { return nil }
        return (row[0] ?? "", row[1] ?? "")
    }

    func exists(_ db: PGConnection) throws -> Bool {
        guard let found = try DatabaseSpec.ownerAndEncoding(name, db) else { return false }
        guard found.encoding == "UTF8" else {
            throw CheckFailed(
                "database \(name) exists with encoding \(found.encoding), not UTF8; it holds data, so it is not "
                    + "recreated: dump it, drop it (or run the reset) and rerun")
        }
        return found.owner == owner
    }

    func create(_ db: PGConnection) throws {
        let database = try db.identifier(name)
        if try DatabaseSpec.ownerAndEncoding(name, db) == nil {
            try db.execute(
                "CREATE DATABASE \(database) OWNER \(try db.identifier(owner)) ENCODING 'UTF8' TEMPLATE template0")
        } else {
            try db.execute("ALTER DATABASE \(database) OWNER TO \(try db.identifier(owner))")
        }
    }

    // MARK: database privileges

    /// The database-level privileges as (grantee, privilege) pairs; PUBLIC is "".
    static func privileges(_ name: String, _ db: PGConnection) throws -> Set<String> {
        let rows = try db.query(
            """
            SELECT CASE WHEN a.grantee = 0 THEN '' ELSE pg_get_userbyid(a.grantee) END, a.privilege_type
            FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
            WHERE d.datname = $1
            """, [name])
        return Set(rows.rows.map { "\($0[0] ?? "")=\($0[1] ?? "")" })
    }

    var wantedPrivileges: Set<String> {
        Set(["CREATE", "TEMPORARY", "CONNECT"].map { "\(owner)=\($0)" } + connectors.map { "\($0)=CONNECT" })
    }

    func privilegesConverged(_ db: PGConnection) throws -> Bool {
        try DatabaseSpec.privileges(name, db) == wantedPrivileges
    }

    /// Replaces the database's privileges whole: PUBLIC and any grantee not ours lose all,
    /// the owner keeps its own, the connectors get CONNECT.
    func convergePrivileges(_ db: PGConnection) throws {
        let database = try db.identifier(name)
        var statements = ["REVOKE ALL ON DATABASE \(database) FROM PUBLIC"]
        let keep = Set([owner] + connectors)
        let grantees = Set(try DatabaseSpec.privileges(name, db).map { String($0.prefix(while: { $0 != "=" })) })
        for stranger in grantees.subtracting(keep).subtracting([""]).sorted() {
            statements.append("REVOKE ALL ON DATABASE \(database) FROM \(try db.identifier(stranger))")
        }
        statements.append("GRANT ALL ON DATABASE \(database) TO \(try db.identifier(owner))")
        for role in connectors {
            statements.append("REVOKE ALL ON DATABASE \(database) FROM \(try db.identifier(role))")
            statements.append("GRANT CONNECT ON DATABASE \(database) TO \(try db.identifier(role))")
        }
        try db.execute(statements.joined(separator: ";\n"))
    }

    // MARK: readers of the shared tables (a connection to this database)

    func readersConverged(_ db: PGConnection) throws -> Bool {
        for reader in readers {
            let row = try db.query(
                """
                SELECT has_schema_privilege($1, 'public', 'USAGE'),
                       (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
                          AND NOT has_table_privilege($1, c.oid, 'SELECT')),
                       (SELECT count(*) FROM pg_default_acl d, aclexplode(d.defaclacl) a
                        WHERE d.defaclrole = $2::regrole AND d.defaclnamespace = 'public'::regnamespace
                          AND d.defaclobjtype = 'r' AND a.grantee = $1::regrole AND a.privilege_type = 'SELECT')
                """, [reader, try db.identifier(owner)])
            guard let r = row.first, r[0] == "t", r[1] == "0", r[2] == "1" else { return false }
        }
        return true
    }

    func convergeReaders(_ db: PGConnection) throws {
        guard !readers.isEmpty else { return }
        let list = try readers.map { try db.identifier($0) }.joined(separator: ", ")
        try db.execute(
            """
            GRANT USAGE ON SCHEMA public TO \(list);
            GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(list);
            ALTER DEFAULT PRIVILEGES FOR ROLE \(try db.identifier(owner)) IN SCHEMA public GRANT SELECT ON TABLES TO \(list)
            """)
    }

    // MARK: extensions (a connection to this database)

    /// The owner of an extension here; nil when it is not created.
    static func extensionOwner(_ name: String, _ db: PGConnection) throws -> String? {
        try db.query("SELECT pg_get_userbyid(extowner) FROM pg_extension WHERE extname = $1", [name]).scalar
    }
}
