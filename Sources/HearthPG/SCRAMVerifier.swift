import HearthSystem
/// A stored SCRAM-SHA-256 verifier (`SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`,
/// as in pg_authid.rolpassword), and whether a password matches it — recomputed here with the
/// verifier's own salt and iterations (libcrypto's PBKDF2, see Crypto/), so a converged role's
/// password is recognised without setting it again or logging in.
public struct SCRAMVerifier: Equatable, Sendable {
    public let iterations: Int
    public let salt: [UInt8]
    public let storedKey: [UInt8]
    public let serverKey: [UInt8]

    /// Longer than this, a stored password is not read or computed (a role may give itself a
    /// verifier with a salt of hundreds of megabytes: every run would read and hash it); it is
    /// not ours, and is replaced. PostgreSQL's own are about 130 bytes.
    public static let maxLength = 1024

    public init?(_ text: String) {
        guard text.utf8.count <= SCRAMVerifier.maxLength else { return nil }
        let parts = text.split(separator: "$", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "SCRAM-SHA-256" else { return nil }
        let head = parts[1].split(separator: ":", omittingEmptySubsequences: false)
        let keys = parts[2].split(separator: ":", omittingEmptySubsequences: false)
        guard head.count == 2, keys.count == 2, let iterations = Int(head[0]), iterations > 0,
            let salt = Base64.decode(String(head[1])), let stored = Base64.decode(String(keys[0])),
            let server = Base64.decode(String(keys[1])), stored.count == 32, server.count == 32
        else { return nil }
        self.iterations = iterations
        self.salt = salt
        self.storedKey = stored
        self.serverKey = server
    }

    /// True when `password` produces this verifier. (PostgreSQL runs SASLprep on the
    /// password first; for ASCII passwords that is the identity, and a password that SASLprep
    /// would change is compared as given, which at worst sets it again.)
    public func matches(_ password: Secret) -> Bool {
        guard let salted = SHA256.pbkdf2(password: Array(password.reveal.utf8), salt: salt, iterations: iterations)
        else { return false }
        let clientKey = SHA256.hmac(key: salted, message: Array("Client Key".utf8))
        let serverKey = SHA256.hmac(key: salted, message: Array("Server Key".utf8))
        return SHA256.hash(clientKey) == storedKey && serverKey == self.serverKey
    }

    /// The iteration count the server gives new verifiers: `scram_iterations` (PostgreSQL 16 and
    /// later), 4096 before.
    package static func serverIterations(_ db: PGConnection) throws -> Int {
        let setting = try db.query("SELECT pg_catalog.current_setting('scram_iterations', true)").scalar
        return setting.flatMap { Int($0) } ?? 4096
    }

    /// Those of `roles` whose verifier in pg_authid is made from the role's own name (at the
    /// server's iteration count; another count is never computed): the verifiers read in one
    /// query as a superuser, the PBKDF2s computed side by side.
    package static func rolesWithNameAsPassword(_ roles: [String], _ db: PGConnection) throws -> [String] {
        let iterations = try serverIterations(db)
        let rows = try db.query(
            "SELECT rolname, rolpassword FROM pg_catalog.pg_authid WHERE rolname = ANY($1::text[]) "
                + "AND pg_catalog.octet_length(rolpassword) <= \(maxLength)",
            [PGArray.literal(roles)]
        ).decode((String, String).self)
        let candidates: [(String, SCRAMVerifier)] = rows.compactMap { role, stored in
            guard let verifier = SCRAMVerifier(stored),
                verifier.iterations == iterations
            else { return nil }
            return (role, verifier)
        }
        let found = Mutex()
        var named: Set<String> = []
        Workers.run(count: candidates.count, width: Workers.defaultWidth) { i in
            let (role, verifier) = candidates[i]
            if verifier.matches(Secret(role)) { found.locked { _ = named.insert(role) } }
            return true
        }
        return roles.filter { named.contains($0) }
    }

    /// True when `role`'s verifier in pg_authid is made from the role's own name (at the
    /// server's iteration count; another count is never computed). Read as a superuser.
    static func hasNameAsPassword(_ role: String, _ db: PGConnection) throws -> Bool {
        guard let stored = try db.query(
                "SELECT rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1 "
                    + "AND pg_catalog.octet_length(rolpassword) <= \(maxLength)", [role]).scalar,
            let verifier = SCRAMVerifier(stored), verifier.iterations == (try serverIterations(db))
        else { return false }
        return verifier.matches(Secret(role))
    }
}
