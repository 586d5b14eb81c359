import Testing
@testable import HearthKit

@Suite("client files (pg_service.conf, password files)")
struct ClientFilesTests {
    @Test("a service entry per role and database; password files hold escaped fields")
    func render() throws {
        let config = try loadConfig("AI_NAMES=logos\nLOGOS_PASSWORD='a:b\\c'")
        let server = PGServer(socketDirectory: "/var/run/postgresql", port: 5433, tcpHost: "127.0.0.1")
        let files = ClientFiles(config: config, server: server, directory: "/etc/hearthminds")
        let service = try #require(files.files["pg_service.conf"])
        #expect(service.contains("[logos]\nhost=127.0.0.1\nport=5433\ndbname=logos_db\nuser=logos\npassfile=/etc/hearthminds/pgpass/logos"))
        #expect(service.contains("[logos-shared]\nhost=127.0.0.1\nport=5433\ndbname=hearthminds_db\nuser=logos"))
        #expect(service.contains("[hearthminds-service]\nhost=/var/run/postgresql\nport=5433\ndbname=hearthminds_db\nuser=hearthminds-service\n"))
        #expect(!service.contains("a:b"))
        #expect(files.files["pgpass/logos"] == "127.0.0.1:5433:logos_db:logos:a\\:b\\\\c\n127.0.0.1:5433:hearthminds_db:logos:a\\:b\\\\c\n")
        #expect(files.secretFiles == ["pgpass/logos", "pgpass/hearthminds"])
        #expect(files.mode("pgpass/logos") == 0o600)
        #expect(files.mode("pg_service.conf") == 0o644)
    }

    @Test("written files converge; a stray password file of a removed AI goes")
    func write() throws {
        let directory = TestFiles.temporaryDirectory() + "/etc"
        defer { TestFiles.removeTree(String(directory.dropLast(4))) }
        let server = PGServer(socketDirectory: "/s", port: 5432, tcpHost: "127.0.0.1")
        let two = ClientFiles(config: try loadConfig("AI_NAMES=logos,nous"), server: server, directory: directory)
        #expect(!two.isConverged())
        try two.write()
        #expect(two.isConverged())
        #expect(FileSystem.status(directory + "/pgpass/nous")?.mode == 0o600)
        let one = ClientFiles(config: try loadConfig("AI_NAMES=logos"), server: server, directory: directory)
        #expect(!one.isConverged())
        try one.write()
        #expect(one.isConverged())
        #expect(!FileSystem.exists(directory + "/pgpass/nous"))
    }
}
