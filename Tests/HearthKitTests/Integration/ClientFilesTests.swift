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

@Suite("client files (pg_service.conf, password files) and generated passwords")
struct ClientFilesTests {
    @Test("a service entry per role and database; password files hold escaped fields")
    func render() throws {
        let config = try loadConfig("AI_NAMES=logos\nLOGOS_PASSWORD='a:b\\c'\nHEARTHMINDS_PASSWORD=manager-pw")
        let server = PGServer(socketDirectory: "/var/run/postgresql", port: 5433, tcpHost: "127.0.0.1")
        let files = try ClientFiles(
            config: config, server: server, passwords: PasswordBook(config, directory: "/nonexistent"),
            directory: "/etc/hearthminds")
        let service = try #require(files.files["pg_service.conf"])
        #expect(service.contains("[logos]\nhost=127.0.0.1\nport=5433\ndbname=logos_db\nuser=logos\npassfile=/etc/hearthminds/pgpass/logos"))
        #expect(service.contains("[logos-shared]\nhost=127.0.0.1\nport=5433\ndbname=hearthminds_db\nuser=logos"))
        #expect(service.contains("[hearthminds-service]\nhost=/var/run/postgresql\nport=5433\ndbname=hearthminds_db\nuser=hearthminds-service\n"))
        #expect(!service.contains("a:b"))
        #expect(files.files["pgpass/logos"] == "127.0.0.1:5433:logos_db:logos:a\\:b\\\\c\n127.0.0.1:5433:hearthminds_db:logos:a\\:b\\\\c\n")
        #expect(files.secretFiles == ["pgpass/logos", "pgpass/hearthminds"])
        #expect(files.mode("pgpass/logos") == 0o600)
        #expect(files.mode("pg_service.conf") == 0o644)
        #expect(PasswordBook.lastPgpassField("127.0.0.1:5433:logos_db:logos:a\\:b\\\\c") == "a:b\\c")
    }

    @Test("written files converge; a stray password file of a removed AI goes")
    func write() throws {
        let directory = TestFiles.temporaryDirectory() + "/etc"
        defer { TestFiles.removeTree(String(directory.dropLast(4))) }
        let server = PGServer(socketDirectory: "/s", port: 5432, tcpHost: "127.0.0.1")
        let config2 = try loadConfig("AI_NAMES=logos,nous")
        let book2 = PasswordBook(config2, directory: directory)
        try book2.generateMissing()
        let two = try ClientFiles(config: config2, server: server, passwords: book2, directory: directory)
        #expect(!two.isConverged())
        try two.write()
        #expect(two.isConverged())
        #expect(FileSystem.status(directory + "/pgpass/nous")?.mode == 0o600)
        let config1 = try loadConfig("AI_NAMES=logos")
        let one = try ClientFiles(
            config: config1, server: server, passwords: PasswordBook(config1, directory: directory), directory: directory)
        #expect(!one.isConverged())
        try one.write()
        #expect(one.isConverged())
        #expect(!FileSystem.exists(directory + "/pgpass/nous"))
    }

    @Test("a password nobody configured is generated once, strong, kept root-only and reused; never the role's name")
    func generatedPasswords() throws {
        let directory = TestFiles.temporaryDirectory() + "/etc"
        defer { TestFiles.removeTree(String(directory.dropLast(4))) }
        let server = PGServer(socketDirectory: "/s", port: 5432, tcpHost: "127.0.0.1")
        let config = try loadConfig("AI_NAMES=logos,aletheia\nALETHEIA_PASSWORD=given")
        let book = PasswordBook(config, directory: directory)
        #expect(book.missing() == ["hearthminds", "logos"])
        expectFailure(.error) { try book.password("logos") }
        try book.generateMissing()
        let logos = try book.password("logos")
        let manager = try book.password("hearthminds")
        #expect(logos.reveal.count == 32 && manager.reveal.count == 32 && logos != manager)
        #expect(logos.reveal.allSatisfy { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" })
        #expect(try book.password("aletheia").reveal == "given")
        try ClientFiles(config: config, server: server, passwords: book, directory: directory).write()
        #expect(FileSystem.status(directory + "/pgpass/logos").map { ($0.uid, $0.mode) }! == (0, 0o600))
        #expect(FileSystem.status(directory + "/pgpass")?.mode == 0o700)

        // A later run (a new book) reads the same passwords back and generates nothing.
        let again = PasswordBook(config, directory: directory)
        #expect(again.missing().isEmpty)
        #expect(try again.password("logos") == logos && again.password("hearthminds") == manager)

        // A stored password that is the role's own name (an earlier version's default) is not
        // honoured: a new one is generated.
        try FileSystem.writeAtomically(directory + "/pgpass/logos", "127.0.0.1:5432:logos_db:logos:logos\n", mode: 0o600)
        let old = PasswordBook(config, directory: directory)
        #expect(old.missing() == ["logos"])
        try old.generateMissing()
        #expect(try old.password("logos").reveal != "logos")
    }
}
