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

/// AdminConnections against real PostgreSQL 15: reused per database, and never more than its
/// limit open (a step over 200 databases once failed with "too many clients").
@Suite("admin connections (integration, real PostgreSQL 15)")
struct AdminConnectionsTests {
    @Test("at most `limit` connections stay open; postgres stays; a closed one reopens on use")
    func bounded() async throws {
        let cluster = try await TestCluster.shared()
        let admin = try cluster.connect()
        let names = (1...5).map { "hm_conn_\($0)_\(Int.random(in: 100000..<999999))" }
        for name in names { try admin.execute("CREATE DATABASE \(try admin.identifier(name))") }
        defer {
            for name in names { try? admin.execute("DROP DATABASE IF EXISTS \(try admin.identifier(name)) WITH (FORCE)") }
        }
        let server = PGServer(socketDirectory: cluster.socketDirectory, port: cluster.port, tcpHost: "127.0.0.1")
        let connections = AdminConnections(server, limit: 3)
        let postgres = try connections.get()
        for name in names {
            let db = try connections.get(name)
            #expect(try db.query("SELECT current_database()").scalar == name)
            #expect(try connections.get(name) === db, "reused while open")
            #expect(connections.openCount <= 3)
        }
        #expect(try connections.get() === postgres, "postgres is never the one closed")
        // The first database was closed to make room; asking again opens a working one.
        #expect(try connections.get(names[0]).query("SELECT current_database()").scalar == names[0])
        #expect(connections.openCount == 3)
        // The server sees no more of our backends than the limit (closing is asynchronous there).
        var backends = 0
        for _ in 0..<50 {
            backends = Int(try admin.query(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hearthminds-bootstrap' AND datname = ANY($1)",
                ["{" + names.joined(separator: ",") + "}"]).scalar ?? "") ?? -1
            if backends <= 2 { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(backends <= 2)
    }
}
