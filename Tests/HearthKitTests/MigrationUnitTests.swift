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

@Suite("SHA-256 (FIPS 180-4 test vectors)")
struct SHA256Tests {
    @Test("standard vectors, padding boundaries and UTF-8", arguments: [
        ("", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
        ("abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
        ("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"),
        (String(repeating: "a", count: 55), "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318"),
        (String(repeating: "a", count: 56), "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a"),
        (String(repeating: "a", count: 64), "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb"),
        ("héllo wörld ✓", "c2a59c71097b678dc5af2eb1f98ddc575b63948b0fa6740071a945673aaada4d"),
    ])
    func vectors(input: String, expected: String) {
        #expect(SHA256.hex(input) == expected)
    }

    @Test("one million 'a'")
    func million() {
        #expect(SHA256.hex(String(repeating: "a", count: 1_000_000))
            == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
    }
}

@Suite("migration templates")
struct MigrationTemplateTests {
    let values = TemplateValues([
        "EMBEDDING_DIM": .int(768), "PGVECTOR_IVFFLAT_LISTS": .int(50), "PGVECTOR_ENABLE_IVFFLAT": .bool(false),
    ])

    @Test("numbers are substituted; a false block is dropped and every line keeps its number")
    func render() throws {
        let text = "a vector({{EMBEDDING_DIM}});\n{{#if PGVECTOR_ENABLE_IVFFLAT}}\nlists = {{ PGVECTOR_IVFFLAT_LISTS }};\n{{/if}}\nend;"
        let out = try MigrationTemplate.render(text, values: values, file: "x.up.sql")
        #expect(out == "a vector(768);\n\n\n\nend;")
        var on = values
        on.values["PGVECTOR_ENABLE_IVFFLAT"] = .bool(true)
        #expect(try MigrationTemplate.render(text, values: on, file: "x.up.sql") == "a vector(768);\n\nlists = 50;\n\nend;")
    }

    @Test("errors name the file, the line and the problem", arguments: [
        ("ok;\nvector({{EMBEDDING_DIMS}})", "x.up.sql line 2: unknown template value {{EMBEDDING_DIMS}}"),
        ("{{#if EMBEDDING_DIM}}\n{{/if}}", "x.up.sql line 1: {{#if EMBEDDING_DIM}} needs a boolean"),
        ("{{#if NOPE}}\n{{/if}}", "x.up.sql line 1: unknown template value 'NOPE'"),
        ("{{#if PGVECTOR_ENABLE_IVFFLAT}}\nx;", "x.up.sql: 1 {{#if ...}} block(s) not closed"),
        ("x;\n{{/if}}", "x.up.sql line 2: {{/if}} without {{#if ...}}"),
        ("select '{{';", "x.up.sql line 1: '{{' without '}}'"),
        ("select '}}';", "x.up.sql line 1: '}}' without '{{'"),
        ("{{#each X}}", "x.up.sql line 1: unknown block directive"),
    ])
    func errors(text: String, message: String) {
        #expect {
            try MigrationTemplate.render(text, values: values, file: "x.up.sql")
        } throws: { error in
            "\(error)".hasPrefix(message)
        }
    }
}

@Suite("SQL statement splitting")
struct SQLScriptTests {
    @Test("semicolons inside strings, identifiers, dollar quotes and comments do not split")
    func quoting() {
        let sql = """
            -- leading comment; not a statement
            CREATE TABLE "a;b" (x text DEFAULT 'it''s; fine');
            /* block; /* nested; */ still; */
            INSERT INTO t VALUES (E'back\\'slash;', $$dollar; quoted$$, $tag$ $$; $tag$);
            DO $body$ BEGIN PERFORM 1; END $body$;
            SELECT $1;select a$b from c
            """
        let statements = SQLScript.split(sql)
        #expect(statements.map(\.line) == [2, 4, 5, 6, 6])
        #expect(statements[0].text == "CREATE TABLE \"a;b\" (x text DEFAULT 'it''s; fine')")
        #expect(statements[1].text.hasSuffix("$tag$ $$; $tag$)"))
        #expect(statements[2].text == "DO $body$ BEGIN PERFORM 1; END $body$")
        #expect(statements[3].text == "SELECT $1")
        #expect(statements[4].text == "select a$b from c")
    }

    @Test("comments-only and empty text hold no statement; kinds are recognised")
    func kinds() {
        #expect(SQLScript.split("-- nothing\n\n/* at all */\n;;").isEmpty)
        let s = SQLScript.split("create  extension if not exists vector; BEGIN; start transaction; commit; CREATE TABLE t(x int)")
        #expect(s.map(\.isCreateExtension) == [true, false, false, false, false])
        #expect(s.map(\.isTransactionControl) == [false, true, true, true, false])
    }
}

@Suite("migration discovery")
struct MigrationSetTests {
    static let directory = TestFiles.repositoryRoot + "/Migrations"

    @Test("the seed's chain: 0001, 0003, 0004, 0005, 0006, then ours, 0007 and 0008; rendered with the configuration")
    func chain() throws {
        let set = try MigrationSet.load(directory: Self.directory, config: try loadConfig())
        #expect(set.revisions.map(\.id) == ["0001", "0003", "0004", "0005", "0006", "0007", "0008"])
        #expect(set.head == "0008")
        #expect(set.revisions.allSatisfy { $0.checksum.count == 64 })
        #expect(set.revisions[0].up.text.contains("vector(1536)"))
        #expect(set.revisions[0].up.statements.first?.isCreateExtension == true)
        #expect(set.revisions[1].up.text.contains("lists = 100"))
        #expect(set.revisions[1].up.statements.count == 2)
        #expect(set.revisions[4].up.text.contains("ARRAY['testing', 'validation'"))
        #expect(try set.position(of: "base") == -1)
        #expect(try set.position(of: "head") == 6)
        // PGVECTOR_INDEX=ivfflat (the default): 0007 is applied and does nothing.
        #expect(set.revisions[5].up.statements.isEmpty && set.revisions[5].down.statements.isEmpty)
        // PGVECTOR_STORAGE=vector (the default): 0008 only makes memory_search (and down drops
        // it, and a binary index if one is left).
        #expect(set.revisions[6].up.statements.count == 1 && set.revisions[6].down.statements.count == 2)
        #expect(set.revisions[6].up.text.contains("CREATE FUNCTION public.memory_search"))
        #expect(try set.position(of: "0004") == 2)
        expectFailure(.migration) { try set.position(of: "0002") }
    }

    @Test("memory_search's body that the storage check compares with is 0008's, for every kind (one text, held together)")
    func searchBodyIsRevisions() throws {
        for text in ["", "PGVECTOR_STORAGE=halfvec\nEMBEDDING_DIM=384", "PGVECTOR_STORAGE=binary\nPGVECTOR_INDEX=hnsw\nPGVECTOR_RERANK=60",
                     "PGVECTOR_STORAGE=halfvec\nPGVECTOR_INDEX=hnsw"] {
            let config = try loadConfig(text)
            let up = try MigrationSet.load(directory: Self.directory, config: config).revisions[6].up.text
            let parts = up.components(separatedBy: "$memory_search$")
            #expect(parts.count == 3, "\(text): one body in 0008")
            #expect(parts.count == 3 && parts[1] == EmbeddingStorage.searchBody(config), "\(text): 0008's body differs from EmbeddingStorage.searchBody")
        }
    }

    @Test("templated values change the rendering and the checksums; IVFFlat off leaves 0003 empty")
    func configured() throws {
        let base = try MigrationSet.load(directory: Self.directory, config: try loadConfig())
        let other = try MigrationSet.load(
            directory: Self.directory,
            config: try loadConfig("EMBEDDING_DIM=384\nPGVECTOR_ENABLE_IVFFLAT=false"))
        #expect(other.revisions[0].up.text.contains("vector(384)"))
        #expect(other.revisions[1].up.statements.isEmpty)
        #expect(other.revisions[1].down.statements.count == 1)
        #expect(zip(base.revisions, other.revisions).map { $0.checksum == $1.checksum } == [false, false, true, true, false, true, true])
    }

    func copy(_ extra: [String: String] = [:], removing: [String] = []) throws -> String {
        let dir = TestFiles.temporaryDirectory("hm-migs")
        for name in try FileSystem.list(Self.directory) where !removing.contains(name) {
            try FileSystem.writeAtomically(dir + "/" + name, try FileSystem.readText(Self.directory + "/" + name))
        }
        for (name, text) in extra { try FileSystem.writeAtomically(dir + "/" + name, text) }
        return dir
    }

    @Test("a bad directory is a clear error naming the file", arguments: [
        (["0009_x.up.sql": "select 1;"], [String](), "0009_x.down.sql is missing"),
        ([:], ["0004_content_metadata.up.sql"], "0004_content_metadata.up.sql is missing"),
        (["0009_Bad-Name.up.sql": "", "0009_Bad-Name.down.sql": ""], [], "0009_Bad-Name"),
        (["notes.sql": ""], [], "notes.sql: a revision file is named"),
        (["0009_x.up.sql": "select 1;\nCOMMIT;", "0009_x.down.sql": ""], [], "0009_x.up.sql line 2: COMMIT: a revision may not control"),
        (["0009_x.up.sql": "", "0009_x.down.sql": "", "8_y.up.sql": "", "8_y.down.sql": ""], [], "revision id"),
        (["0009_x.up.sql": "vector({{DIM}})", "0009_x.down.sql": ""], [], "0009_x.up.sql line 1: unknown template value {{DIM}}"),
    ])
    func badDirectory(extra: [String: String], removing: [String], message: String) throws {
        let dir = try copy(extra, removing: removing)
        defer { TestFiles.removeTree(dir) }
        #expect {
            try MigrationSet.load(directory: dir, config: try loadConfig())
        } throws: { error in
            "\(error)".contains(message)
        }
    }

    @Test("`new` makes the next id's empty up and down files, which load")
    func newRevision() throws {
        let dir = try copy()
        defer { TestFiles.removeTree(dir) }
        let paths = try MigrationSet.newRevision(directory: dir, message: "Add a new table!")
        #expect(paths == [dir + "/0009_add_a_new_table.up.sql", dir + "/0009_add_a_new_table.down.sql"])
        let set = try MigrationSet.load(directory: dir, config: try loadConfig())
        #expect(set.head == "0009")
        #expect(set.revisions.last?.up.statements.isEmpty == true)
        expectFailure(.migration) { try MigrationSet.newRevision(directory: dir, message: "!!!") }
    }
}
