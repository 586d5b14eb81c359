import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// What one of our roles must be. Converged whole on every run: its attributes, its password,
/// its memberships and its mark (Marks.role); nothing else is kept. An existing role of the
/// name without the mark was not made by the suite and is never taken over.
public struct RoleSpec: Sendable {
    public enum Password: Sendable {
        /// No password: the role logs in by peer authentication only.
        case none
        /// A password, looked up when it is needed (a generated one exists only once the
        /// client files hold it).
        case scram(@Sendable () throws -> Secret)
    }

    public let name: String
    public let superuser: Bool
    public let password: Password
    /// Roles this one is a member of (e.g. pg_monitor); any other membership is revoked.
    public let memberOf: Set<String>
    /// False for the cluster's own superuser, whose attributes are the server's business: only
    /// its password is managed, and it needs no mark.
    public let manageAttributes: Bool

    public init(name: String, superuser: Bool, password: Password, memberOf: Set<String> = [], manageAttributes: Bool = true) {
        self.name = name
        self.superuser = superuser
        self.password = password
        self.memberOf = memberOf
        self.manageAttributes = manageAttributes
    }

    /// The roles of a configuration: the manager, the service account, the monitoring role, each
    /// AI, the admin. The
    /// manager's and the AIs' passwords come from `passwords`.
    public static func all(_ config: HearthConfig, passwords: PasswordBook) -> [RoleSpec] {
        func password(_ role: String) -> Password { .scram { try passwords.password(role) } }
        var roles = [
            RoleSpec(name: config.hearthmindsUser, superuser: true, password: password(config.hearthmindsUser),
                     memberOf: ["pg_monitor"]),
            RoleSpec(name: config.serviceUser, superuser: false, password: .none),
            // The exporter's (issue 23): peer login only, pg_monitor and nothing else.
            RoleSpec(name: config.monitoring.user, superuser: false, password: .none, memberOf: ["pg_monitor"]),
        ]
        roles += config.ais.map { RoleSpec(name: $0.name, superuser: false, password: password($0.name)) }
        let admin: Password = config.adminPassword.map { secret in .scram { secret } } ?? .none
        roles.append(
            RoleSpec(name: config.adminUser, superuser: true, password: admin, manageAttributes: config.adminUser != "postgres"))
        return roles
    }

    /// The role as the server has it; nil when it does not exist.
    package struct State {
        var attributes: [String: Bool]
        var connectionLimit: Int
        var validUntil: String?
        var password: String?
        var memberOf: Set<String>
        var comment: String?
    }

    static func state(_ name: String, _ db: PGConnection) throws -> State? {
        try states([name], db)[name]
    }

    /// The roles of these names as the server has them, in one query.
    static func states(_ names: [String], _ db: PGConnection) throws -> [String: State] {
        let rows = try db.query(
            """
            SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls,
                   rolconnlimit, rolvaliduntil::text,
                   CASE WHEN pg_catalog.octet_length(rolpassword) > \(SCRAMVerifier.maxLength) THEN '' ELSE rolpassword END,
                   ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m JOIN pg_catalog.pg_roles b ON b.oid = m.roleid
                         WHERE m.member = a.oid ORDER BY 1)::text,
                   pg_catalog.left(pg_catalog.shobj_description(a.oid, 'pg_authid'), 1024), a.rolname
            FROM pg_catalog.pg_authid a WHERE a.rolname = ANY($1::text[])
            """, [PGArray.literal(names)])
        var out: [String: State] = [:]
        for (superuser, inherit, createRole, createDB, login, replication, bypassRLS, connectionLimit, validUntil, password,
            members, comment, name) in try rows.decode(
                (Bool, Bool, Bool, Bool, Bool, Bool, Bool, Int, String?, String?, [String], String?, String).self)
        {
            let attributes = [
                "rolsuper": superuser, "rolinherit": inherit, "rolcreaterole": createRole, "rolcreatedb": createDB,
                "rolcanlogin": login, "rolreplication": replication, "rolbypassrls": bypassRLS,
            ]
            out[name] = State(
                attributes: attributes, connectionLimit: connectionLimit, validUntil: validUntil, password: password,
                memberOf: Set(members), comment: comment)
        }
        return out
    }

    var wantedAttributes: [String: Bool] {
        ["rolsuper": superuser, "rolinherit": true, "rolcreaterole": false, "rolcreatedb": false, "rolcanlogin": true,
         "rolreplication": false, "rolbypassrls": false]
    }

    /// Is the role on the server exactly this spec? A role of the name that does not carry our
    /// mark is a definite false: it is someone else's.
    package func isConverged(_ db: PGConnection) throws -> Bool {
        try isConverged(try RoleSpec.state(name, db), serverIterations: try SCRAMVerifier.serverIterations(db))
    }

    /// The same, from the role's state as read (ClusterCatalog); the password is recomputed here.
    package func isConverged(_ state: State?, serverIterations: Int) throws -> Bool {
        guard let state else { return false }
        if manageAttributes {
            guard state.comment == Marks.role else {
                throw Failure.hostWrong(
                    "role \(name) exists but was not made by the suite (its comment is not our mark), so it is not "
                        + "taken over: choose another name, drop it, or hand it to the suite: \(Marks.adoptRoleHint(name))")
            }
            guard state.attributes == wantedAttributes, state.connectionLimit == -1,
                state.validUntil == nil || state.validUntil == "infinity", state.memberOf == memberOf
            else { return false }
        }
        switch password {
        case .none:
            return state.password == nil
        case .scram(let secret):
            guard let stored = state.password, let verifier = SCRAMVerifier(stored) else { return false }
            // A verifier with another iteration count than the server's (a role may set its own,
            // 2^31 iterations say) is reset without being computed: no run stalls on it.
            guard verifier.iterations == serverIterations else { return false }
            return verifier.matches(try secret())
        }
    }

    /// Creates or alters the role to this spec; the password goes as a SCRAM verifier made
    /// by libpq on this side, never as clear text.
    package func apply(_ db: PGConnection) throws {
        try plan(try RoleSpec.state(name, db), db) { secret in try db.scramVerifier(try secret(), user: name) }.run(db)
    }

    /// The statements that make the role this spec from `state` (nil: there is no role of the
    /// name yet): what apply runs and a dry run shows (SQLPlan). `verifier`: the SCRAM verifier
    /// of the role's password (apply: made by libpq; a dry run: a placeholder, masked when shown).
    package func plan(_ state: State?, _ db: PGConnection, verifier: (@Sendable () throws -> Secret) throws -> String) throws
        -> SQLPlan
    {
        let role = try db.identifier(name)
        var plan = SQLPlan()
        if state == nil {
            plan.add("CREATE ROLE \(role)")
            plan.newBatch()
        } else if manageAttributes && state?.comment != Marks.role {
            throw Failure.hostWrong("role \(name) exists but was not made by the suite; it is not taken over")
        }
        if manageAttributes {
            plan.add("COMMENT ON ROLE \(role) IS \(try db.literal(Marks.role))")
            plan.add(
                "ALTER ROLE \(role) WITH \(superuser ? "SUPERUSER" : "NOSUPERUSER") INHERIT NOCREATEROLE NOCREATEDB "
                    + "LOGIN NOREPLICATION NOBYPASSRLS CONNECTION LIMIT -1 VALID UNTIL 'infinity'")
            let current = state?.memberOf ?? []
            for extra in current.subtracting(memberOf).sorted() {
                plan.add("REVOKE \(try db.identifier(extra)) FROM \(role)")
            }
            for missing in memberOf.subtracting(current).sorted() {
                plan.add("GRANT \(try db.identifier(missing)) TO \(role)")
            }
        }
        switch password {
        case .none:
            plan.add("ALTER ROLE \(role) PASSWORD NULL")
        case .scram(let secret):
            let made = try verifier(secret)
            plan.add(
                "ALTER ROLE \(role) PASSWORD \(try db.literal(made))",
                shown: "ALTER ROLE \(role) PASSWORD \(SQLPlan.maskedVerifier(made))")
        }
        return plan
    }
}
