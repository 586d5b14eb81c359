import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
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
    /// read), then each AI's database (owned by the AI; only the monitoring role connects besides).
    public static func all(_ config: HearthConfig) -> [DatabaseSpec] {
        let shared = config.ais.map(\.name) + [config.hearthmindsUser]
        // The monitoring role connects to every database to read its statistics (issue 23): no
        // table of it is granted.
        let monitor = config.monitoring.user
        return [DatabaseSpec(name: config.hearthmindsDB, owner: config.serviceUser, connectors: shared + [monitor], readers: shared)]
            + config.ais.map { DatabaseSpec(name: $0.database, owner: $0.name, connectors: [monitor], readers: []) }
    }

    /// Each database's owner as the configuration says.
    public static func owners(_ config: HearthConfig) -> [String: String] {
        Dictionary(all(config).map { ($0.name, $0.owner) }, uniquingKeysWith: { first, _ in first })
    }

    // MARK: the database itself

    package struct Found {
        package let owner: String
        let encoding: String
        package let comment: String?
        let allowsConnections: Bool
        /// Its database-level privileges as "grantee=PRIVILEGE" (PUBLIC is "").
        package let privileges: Set<String>
        /// Named in the record of what the suite made (MadeRecord); nil: there is no record yet
        /// (a host set up before it).
        package let recorded: Bool?
    }

    /// The database as the catalog has it; nil when it does not exist.
    package static func find(_ name: String, _ db: PGConnection) throws -> Found? {
        try findAll([name], db)[name]
    }

    /// The databases of these names as the catalog has them, with their privileges, in one query.
    static func findAll(_ names: [String], _ db: PGConnection) throws -> [String: Found] {
        let rows = try db.query(
            """
            SELECT d.datname, pg_catalog.pg_get_userbyid(d.datdba), pg_catalog.pg_encoding_to_char(d.encoding),
                   pg_catalog.left(pg_catalog.shobj_description(d.oid, 'pg_database'), 1024), d.datallowconn,
                   ARRAY(SELECT CASE WHEN a.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(a.grantee) END
                                || '=' || a.privilege_type
                         FROM pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a)
            FROM pg_catalog.pg_database d WHERE d.datname = ANY($1::text[])
            """, [PGArray.literal(names)])
        let recorded = try MadeRecord.recorded(names, db)
        var out: [String: Found] = [:]
        for (name, owner, encoding, comment, allowsConnections, privileges)
            in try rows.decode((String, String, String, String?, Bool, [String]).self)
        {
            out[name] = Found(
                owner: owner, encoding: encoding, comment: comment, allowsConnections: allowsConnections,
                privileges: Set(privileges), recorded: recorded.map { $0.contains(name) })
        }
        return out
    }

    /// True when the database exists, is UTF-8, has the configured owner, is in the record of what
    /// the suite made (MadeRecord), carries our mark (a courtesy for readers of the catalog) and
    /// takes connections. A database of the name with another owner is someone else's: a
    /// definite false, never taken over.
    func exists(_ db: PGConnection) throws -> Bool {
        try exists(try DatabaseSpec.find(name, db))
    }

    /// The same, from the database as read (ClusterCatalog).
    package func exists(_ found: Found?) throws -> Bool {
        guard let found else { return false }
        guard found.owner == owner else {
            throw Failure.hostWrong(
                "database \(name) exists, owned by \(found.owner), not \(owner): it was not made by the suite and is "
                    + "not taken over; choose another name (AI_NAMES, AI_DB_SUFFIX, HEARTHMINDS_DB) or move it away "
                    + "(ALTER DATABASE \"\(name)\" RENAME TO ...)")
        }
        guard found.encoding == "UTF8" else {
            throw Failure.hostWrong(
                "database \(name) exists with encoding \(found.encoding), not UTF8; it holds data, so it is not "
                    + "recreated: dump it, drop it (or run the reset) and rerun")
        }
        return found.recorded == true && found.comment == Marks.database && found.allowsConnections
    }

    /// Creates the database closed (no connections, nothing for PUBLIC), recorded and marked, then
    /// opens it: no one else can connect between its CREATE and its grants. An existing database
    /// of ours (the owner is our marked role, which cannot create databases itself) is recorded
    /// (a host of before the record: its migration), gets its mark back and is opened. Run from
    /// the `postgres` database, where the record is (MadeRecord, made by the step before).
    package func create(_ db: PGConnection) throws {
        try createPlan(try DatabaseSpec.find(name, db), db).run(db)
    }

    /// The statements of `create` from the database as found (nil: none of the name): what apply
    /// runs and a dry run shows (SQLPlan).
    package func createPlan(_ found: Found?, _ db: PGConnection) throws -> SQLPlan {
        let database = try db.identifier(name)
        let mark = "COMMENT ON DATABASE \(database) IS \(try db.literal(Marks.database))"
        let open = "ALTER DATABASE \(database) ALLOW_CONNECTIONS true"
        var plan = SQLPlan()
        guard let found else {
            plan.add(
                "CREATE DATABASE \(database) OWNER \(try db.identifier(owner)) ENCODING 'UTF8' TEMPLATE template0 "
                    + "ALLOW_CONNECTIONS false")
            plan.newBatch()
            plan.add("REVOKE ALL ON DATABASE \(database) FROM PUBLIC")
            plan.add(try MadeRecord.recordStatement(name, db))
            plan.add(mark)
            plan.add(open)
            return plan
        }
        guard found.owner == owner else { throw Failure.hostWrong("database \(name) is not ours (owner \(found.owner))") }
        if found.recorded != true { plan.add(try MadeRecord.recordStatement(name, db)) }
        plan.add(mark)
        plan.add(open)
        return plan
    }

    // MARK: database privileges

    /// The database-level privileges as (grantee, privilege) pairs; PUBLIC is "".
    static func privileges(_ name: String, _ db: PGConnection) throws -> Set<String> {
        let rows = try db.query(
            """
            SELECT CASE WHEN a.grantee = 0 THEN '' ELSE pg_catalog.pg_get_userbyid(a.grantee) END, a.privilege_type
            FROM pg_catalog.pg_database d,
                 pg_catalog.aclexplode(coalesce(d.datacl, pg_catalog.acldefault('d', d.datdba))) a
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

    /// The same, from the database as read (ClusterCatalog).
    package func privilegesConverged(_ found: Found?) -> Bool {
        found?.privileges == wantedPrivileges
    }

    /// Replaces the database's privileges whole: PUBLIC and any grantee not ours lose all,
    /// the owner keeps its own, the connectors get CONNECT.
    package func convergePrivileges(_ db: PGConnection) throws {
        try privilegesPlan(try DatabaseSpec.privileges(name, db), db).run(db)
    }

    /// The statements of `convergePrivileges` from the privileges as found ("grantee=PRIVILEGE"):
    /// what apply runs and a dry run shows (SQLPlan).
    package func privilegesPlan(_ privileges: Set<String>, _ db: PGConnection) throws -> SQLPlan {
        let database = try db.identifier(name)
        var plan = SQLPlan()
        plan.add("REVOKE ALL ON DATABASE \(database) FROM PUBLIC")
        let keep = Set([owner] + connectors)
        let grantees = Set(privileges.map { String($0.prefix(while: { $0 != "=" })) })
        for stranger in grantees.subtracting(keep).subtracting([""]).sorted() {
            plan.add("REVOKE ALL ON DATABASE \(database) FROM \(try db.identifier(stranger))")
        }
        plan.add("GRANT ALL ON DATABASE \(database) TO \(try db.identifier(owner))")
        for role in connectors {
            plan.add("REVOKE ALL ON DATABASE \(database) FROM \(try db.identifier(role))")
            plan.add("GRANT CONNECT ON DATABASE \(database) TO \(try db.identifier(role))")
        }
        return plan
    }

    // MARK: readers of the shared tables (a connection to this database as its owner)

    package func readersConverged(_ db: PGConnection) throws -> Bool {
        for reader in readers {
            let privileges = try db.query(
                """
                SELECT pg_catalog.has_schema_privilege($1, 'public', 'USAGE'),
                       (SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm')
                          AND c.relowner = $2::regrole
                          AND NOT pg_catalog.has_table_privilege($1, c.oid, 'SELECT')),
                       (SELECT count(*) FROM pg_catalog.pg_default_acl d, pg_catalog.aclexplode(d.defaclacl) a
                        WHERE d.defaclrole = $2::regrole AND d.defaclnamespace = 'public'::regnamespace
                          AND d.defaclobjtype = 'r' AND a.grantee = $1::regrole AND a.privilege_type = 'SELECT')
                """, [reader, try db.identifier(owner)])
            guard let (usage, ungranted, defaults) = try privileges.decodeFirst((Bool, Int, Int).self),
                usage, ungranted == 0, defaults == 1
            else { return false }
        }
        return true
    }

    package func convergeReaders(_ db: PGConnection) throws {
        guard !readers.isEmpty else { return }
        try readersPlan(db).run(db)
    }

    /// The statements of `convergeReaders` (run as the database's owner): what apply runs and a
    /// dry run shows (SQLPlan).
    package func readersPlan(_ db: PGConnection) throws -> SQLPlan {
        var plan = SQLPlan()
        guard !readers.isEmpty else { return plan }
        let list = try readers.map { try db.identifier($0) }.joined(separator: ", ")
        plan.add("GRANT USAGE ON SCHEMA public TO \(list)")
        plan.add("GRANT SELECT ON ALL TABLES IN SCHEMA public TO \(list)")
        plan.add(
            "ALTER DEFAULT PRIVILEGES FOR ROLE \(try db.identifier(owner)) IN SCHEMA public GRANT SELECT ON TABLES TO \(list)")
        return plan
    }

    // MARK: extensions (a connection to this database)

    /// The owner of an extension here; nil when it is not created.
    package static func extensionOwner(_ name: String, _ db: PGConnection) throws -> String? {
        try db.query(
            "SELECT pg_catalog.pg_get_userbyid(extowner) FROM pg_catalog.pg_extension WHERE extname = $1", [name]
        ).scalar
    }
}
