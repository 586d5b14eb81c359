import Testing
@testable import HearthCommands
@testable import HearthKit
@testable import HearthPgvector
@testable import HearthPostgres
@testable import HearthClient
@testable import HearthMigrations
@testable import HearthMonitoring
@testable import HearthBackup
@testable import HearthPG
@testable import HearthRunner
@testable import HearthConfiguration
@testable import HearthSystem

@Suite("libpq client (integration, real PostgreSQL 15)")
struct PGConnectionTests {
    @Test("connects by peer authentication over the socket and reads the server version")
    func connect() async throws {
        let cluster = try await TestCluster.shared()
        let db = try cluster.connect()
        #expect(db.serverVersion / 10000 == 15)
        #expect(try db.query("SHOW server_version").scalar?.hasPrefix("15.") == true)
        #expect(try db.query("SELECT current_user").scalar == "postgres")
    }

    @Test("values travel as parameters, NULL included")
    func parameters() async throws {
        let db = try await TestCluster.shared().connect()
        let rows = try db.query("SELECT $1::text || $2::text, $3::text IS NULL", ["it's '; DROP", " \"x\"", nil])
        #expect(rows.first?[0] == "it's '; DROP \"x\"")
        #expect(rows.first?[1] == "t")
    }

    @Test("identifiers are escaped by libpq: an awkward role name round-trips exactly")
    func identifiers() async throws {
        let db = try await TestCluster.shared().connect()
        let name = "we\"ird ro;le-\(Int.random(in: 0..<1_000_000))"
        try db.execute("CREATE ROLE \(try db.identifier(name))")
        #expect(try db.query("SELECT count(*) FROM pg_roles WHERE rolname = $1", [name]).scalar == "1")
        try db.execute("DROP ROLE \(try db.identifier(name))")
        #expect(try db.query("SELECT count(*) FROM pg_roles WHERE rolname = $1", [name]).scalar == "0")
        #expect(try db.literal("a'b") == "'a''b'")
    }

    @Test("a SCRAM verifier made client-side lets the role log in over TCP; a wrong password is refused")
    func scram() async throws {
        let cluster = try await TestCluster.shared()
        let db = try cluster.connect()
        let role = "scram_\(Int.random(in: 0..<1_000_000))"
        let password = Secret("pa'ss word")
        let verifier = try db.scramVerifier(password, user: role)
        #expect(verifier.hasPrefix("SCRAM-SHA-256$4096:"))
        #expect(!verifier.contains("pa'ss"))
        try db.execute("CREATE ROLE \(try db.identifier(role)) LOGIN PASSWORD \(try db.literal(verifier))")
        #expect(try db.query("SELECT rolpassword = $1 FROM pg_authid WHERE rolname = $2", [verifier, role]).scalar == "t")
        let user = try cluster.connectTCP(user: role, password: password)
        #expect(try user.query("SELECT current_user").scalar == role)
        #expect {
            try cluster.connectTCP(user: role, password: Secret("wrong"))
        } throws: { error in
            "\(error)".contains("password authentication failed")
        }
        try db.execute("DROP ROLE \(try db.identifier(role))")
    }

    @Test("server errors carry libpq's text and the SQLSTATE")
    func errors() async throws {
        let db = try await TestCluster.shared().connect()
        do {
            try db.query("SELECT * FROM no_such_table")
            Issue.record("no error")
        } catch {
            #expect(error.sqlState == "42P01")
            #expect(error.message.contains("no_such_table"))
        }
    }

    @Test("a connection that cannot be made says where it tried and why")
    func connectionError() async throws {
        let cluster = try await TestCluster.shared()
        do {
            _ = try PGConnection(PGTarget(host: cluster.socketDirectory, port: 1, database: "postgres", user: "postgres"))
            Issue.record("connected")
        } catch {
            #expect(error.message.contains("cannot connect to database postgres as postgres"))
            #expect(error.message.contains("No such file") || error.message.contains("connection"))
        }
    }

    @Test("peer authentication sees the system account the connection is made as")
    func peerAsAnotherAccount() async throws {
        let cluster = try await TestCluster.shared()
        let nobody = try #require(SystemAccount.lookup("nobody"))
        let db = try cluster.connect()
        try db.execute("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'nobody') THEN CREATE ROLE nobody LOGIN; END IF; END$$")
        let asNobody = try cluster.connect(user: "nobody", as: nobody)
        #expect(try asNobody.query("SELECT current_user").scalar == "nobody")
        // Peer refuses a database user that is not the system account.
        expectFailure(.database) { try cluster.connect(user: "postgres", as: nobody) }
    }
}
