/// What one of our roles must be. Converged whole on every run: its attributes, its password
/// and its memberships; nothing else is kept.
public struct RoleSpec: Sendable {
    public enum Password: Sendable {
        /// No password: the role logs in by peer authentication only.
        case none
        case scram(Secret)
    }

    public let name: String
    public let superuser: Bool
    public let password: Password
    /// Roles this one is a member of (e.g. pg_monitor); any other membership is revoked.
    public let memberOf: Set<String>
    /// False for the cluster's own superuser, whose attributes are the server's business:
    /// only its password is managed.
    public let manageAttributes: Bool

    public init(name: String, superuser: Bool, password: Password, memberOf: Set<String> = [], manageAttributes: Bool = true) {
        self.name = name
        self.superuser = superuser
        self.password = password
        self.memberOf = memberOf
        self.manageAttributes = manageAttributes
    }

    /// The roles of a configuration: the manager, the service account, each AI, the admin.
    public static func all(_ config: HearthConfig) -> [RoleSpec] {
        var roles = [
            RoleSpec(name: config.hearthmindsUser, superuser: true, password: .scram(config.hearthmindsPassword),
                     memberOf: ["pg_monitor"]),
            RoleSpec(name: config.serviceUser, superuser: false, password: .none),
        ]
        roles += config.ais.map { RoleSpec(name: $0.name, superuser: false, password: .scram($0.password)) }
        roles.append(
            RoleSpec(
                name: config.adminUser, superuser: true, password: config.adminPassword.map { .scram($0) } ?? .none,
                manageAttributes: config.adminUser != "postgres"))
        return roles
    }

    /// The role as the server has it; nil when it does not exist.
    struct State {
        var attributes: [String: Bool]
        var connectionLimit: Int
        var validUntil: String?
        var password: String?
        var memberOf: Set<String>
    }

    static func state(_ name: String, _ db: PGConnection) throws -> State? {
        let rows = try db.query(
            """
            SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
                   rolconnlimit, rolvaliduntil::text, rolpassword,
                   ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
                         WHERE m.member = a.oid ORDER BY 1)::text
            FROM pg_authid a WHERE rolname = $1
            """, [name])
        guard let row = rows.first else { return nil }
        let names = ["rolsuper", "rolinherit", "rolcreaterole", "rolcreatedb", "rolcanlogin", "rolreplication", "rolbypassrls"]
        var attributes: [String: Bool] = [:]
        for (i, key) in names.enumerated() { attributes[key] = row[i] == "t" }
        let members = (row[10] ?? "{}").dropFirst().dropLast().split(separator: ",").map {
            String($0).trimmingCharacters(in: "\"")
        }
        return State(
            attributes: attributes, connectionLimit: Int(row[7] ?? "-1") ?? -1, validUntil: row[8], password: row[9],
            memberOf: Set(members))
    }

    var wantedAttributes: [String: Bool] {
        ["rolsuper": superuser, "rolinherit": true, "rolcreaterole": false, "rolcreatedb": false, "rolcanlogin": true,
         "rolreplication": false, "rolbypassrls": false]
    }

    /// Is the role on the server exactly this spec?
    func isConverged(_ db: PGConnection) throws -> Bool {
        guard let state = try RoleSpec.state(name, db) else { return false }
        if manageAttributes {
            guard state.attributes == wantedAttributes, state.connectionLimit == -1,
                state.validUntil == nil || state.validUntil == "infinity", state.memberOf == memberOf
            else { return false }
        }
        switch password {
        case .none:
            return state.password == nil
        case .scram(let secret):
            guard let stored = state.password, let verifier = SCRAMVerifier(stored) else { return false }
            return verifier.matches(secret)
        }
    }

    /// Creates or alters the role to this spec; the password goes as a SCRAM verifier made
    /// by libpq on this side, never as clear text.
    func apply(_ db: PGConnection) throws {
        let role = try db.identifier(name)
        if try RoleSpec.state(name, db) == nil {
            try db.execute("CREATE ROLE \(role)")
        }
        var statements: [String] = []
        if manageAttributes {
            statements.append(
                "ALTER ROLE \(role) WITH \(superuser ? "SUPERUSER" : "NOSUPERUSER") INHERIT NOCREATEROLE NOCREATEDB "
                    + "LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 VALID UNTIL 'infinity'")
            let current = try RoleSpec.state(name, db)?.memberOf ?? []
            for extra in current.subtracting(memberOf).sorted() {
                statements.append("REVOKE \(try db.identifier(extra)) FROM \(role)")
            }
            for missing in memberOf.subtracting(current).sorted() {
                statements.append("GRANT \(try db.identifier(missing)) TO \(role)")
            }
        }
        switch password {
        case .none:
            statements.append("ALTER ROLE \(role) PASSWORD NULL")
        case .scram(let secret):
            statements.append("ALTER ROLE \(role) PASSWORD \(try db.literal(try db.scramVerifier(secret, user: name)))")
        }
        try db.execute(statements.joined(separator: ";\n"))
    }
}
