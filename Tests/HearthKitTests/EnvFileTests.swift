#if canImport(Glibc)
import Glibc
#endif
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

@Suite("env file parser")
struct EnvFileTests {
    @Test("the seed's own example parses verbatim")
    func seedExample() throws {
        let file = try EnvFile.load(path: TestFiles.fixture("seed-example.env"))
        let values = Dictionary(file.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        #expect(values["PG_VERSION"] == "15")
        #expect(values["PG_CLUSTER_NAME"] == "main")
        #expect(values["POSTGRES_HOST"] == "10.0.0.1")
        #expect(values["POSTGRES_PORT"] == "5432")
        #expect(values["HEARTHMINDS_SERVICE_USER"] == "hearthminds-service")
        #expect(values["POSTGRES_ADMIN_USER"] == "postgres")
        #expect(values["POSTGRES_ADMIN_PASSWORD"] == "your_superuser_password")
        #expect(values["HEARTHMINDS_DB"] == "hearthminds_db")
        #expect(values["HEARTHMINDS_USER"] == "hearthminds")
        #expect(values["HEARTHMINDS_PASSWORD"] == "your_hearthminds_password")
        #expect(values["AI_NAMES"] == #"["logos", "aletheia"]"#)
        #expect(values["AI_DB_SUFFIX"] == "_db")
        #expect(values["AI_DEFAULT_EXTENSIONS"] == #"["vector"]"#)
        // The template line states the scheme and sets nothing.
        #expect(file.entries.count == 13)
    }

    @Test("the seed's example, written by an operator (mode 0600), loads: its scheme is honoured and named")
    func seedExampleConfig() throws {
        // As an operator writes it: root's, mode 0600 (it holds passwords).
        let path = try TestFiles.write(try FileSystem.readText(TestFiles.fixture("seed-example.env")))
        defer { TestFiles.removeTree(String(path.prefix(upTo: path.lastIndex(of: "/")!))) }
        let config = try HearthConfig.load(ConfigSources(shippedFile: nil, hostFile: path))
        #expect(config.host == "10.0.0.1")
        #expect(config.ais.map(\.name) == ["logos", "aletheia"])
        #expect(config.ais.map(\.database) == ["logos_db", "aletheia_db"])
        #expect(config.ais.map { $0.password?.reveal } == ["logos", "aletheia"])
        #expect(config.adminPassword?.reveal == "your_superuser_password")
        #expect(config.hearthmindsPassword?.reveal == "your_hearthminds_password")
        #expect(config.extensions == ["vector"])
        // Every run warns about the scheme, naming where it was written.
        #expect(config.namedPasswords.map(\.role) == ["logos", "aletheia"])
        #expect(config.namedPasswords.allSatisfy { $0.key == EnvFile.templateKey && $0.origin == "\(path):27" })
    }

    @Test("a malformed line never echoes a value that may be a secret")
    func noSecretInErrors() {
        // (the last two from the attack review of issue 25: a base64 password pasted alone, its
        // '=' padding read as an assignment; a password assigned after another key's value)
        for text in ["hunter2-pasted-alone", "LOGOS_PASSWORD=\"hunter2\" hunter3", "HEARTHMINDS_PASSWORD='x'hunter2",
                     "q7Rk2mZ+pWhunterLv3HbN4aA==", "AI_NAMES=\"logos\" LOGOS_PASSWORD=S3cret-hunter2"] {
            #expect {
                _ = try EnvFile(path: "t", text: text)
            } throws: { error in
                let shown = "\(error)"
                return !shown.contains("hunter") && shown.contains("t:1")
            }
        }
        // A value that is not a secret is still shown, to help.
        #expect { _ = try EnvFile(path: "t", text: "POSTGRES_PORT=\"5432\" oops") } throws: { "\($0)".contains("oops") }
        #expect { _ = try EnvFile(path: "t", text: "postgres-port=5432") } throws: { "\($0)".contains("postgres-port") }
    }

    @Test("quotes, export, comments and escapes")
    func syntax() throws {
        let file = try EnvFile(path: "t", text: """
            # a comment
            export A=plain value   # trailing comment
            B="double # not a comment" # comment
            C='single ${LITERAL}'
            D="esc\\"aped"
            E=
            F=a#b
            G=["x #y", "z"]  # c
            """)
        let values = Dictionary(file.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        #expect(values["A"] == "plain value")
        #expect(values["B"] == "double # not a comment")
        #expect(values["C"] == "single ${LITERAL}")
        #expect(values["D"] == "esc\"aped")
        #expect(values["E"] == "")
        #expect(values["F"] == "a#b")
        #expect(values["G"] == #"["x #y", "z"]"#)
        #expect(file.entries.map(\.line) == [2, 3, 4, 5, 6, 7, 8])
    }

    @Test("malformed lines name the file, line and key", arguments: [
        ("NOEQUALS", nil),
        ("A=\"open", "A"),
        ("A='open", "A"),
        ("A=[\"x\", \"y\"", "A"),
        ("A=\"x\" trailing", "A"),
        ("A=${HOME}/x", "A"),
        ("1A=x", "1A"),
        ("${AI_NAME}_PASSWORD=secret", "${AI_NAME}_PASSWORD"),
    ] as [(String, String?)])
    func malformed(line: String, key: String?) {
        do {
            _ = try EnvFile(path: "f.env", text: "OK=1\n" + line)
            Issue.record("'\(line)' parsed")
        } catch {
            #expect(error.key == key)
            #expect(error.message.hasPrefix("f.env:2"))
        }
    }
}
