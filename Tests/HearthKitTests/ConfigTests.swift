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

@Suite("configuration")
struct ConfigTests {
    @Test("with no configuration at all, the defaults serve a single host on loopback")
    func defaults() throws {
        let config = try loadConfig()
        #expect(config.pgVersion == 15)
        #expect(config.clusterName == "main")
        #expect(config.host == "127.0.0.1")
        #expect(config.listensOnLoopbackOnly)
        #expect(config.port == 5432)
        #expect(config.serviceUser == "hearthminds-service")
        #expect(config.serviceHome == "/var/lib/hearthminds-service")
        #expect(config.adminUser == "postgres")
        #expect(config.adminPassword == nil)
        #expect(config.hearthmindsDB == "hearthminds_db")
        #expect(config.hearthmindsUser == "hearthminds")
        #expect(config.hearthmindsPassword == nil)  // generated once by the databases step
        #expect(config.ais.allSatisfy { $0.password == nil })
        #expect(config.namedPasswords.isEmpty)
        #expect(config.ais.map(\.name) == ["logos", "aletheia"])
        #expect(config.databases == ["hearthminds_db", "logos_db", "aletheia_db"])
        #expect(config.extensions == ["vector"])
        #expect(config.embeddingDim == 1536)
        #expect(config.ivfflat)
        #expect(config.ivfflatLists == 100)  // the seed's default
        #expect(config.ivfflatProbes == nil)  // auto
        #expect(config.vectorIndex == .ivfflat)
        #expect(config.hnswM == 16 && config.hnswEfConstruction == 64 && config.hnswEfSearch == 40)
        #expect(config.pgvectorMethod == .auto)
        #expect(config.logPath == "/var/log/hearthminds/bootstrap.jsonl")
    }

    @Test("the shipped etc/hearthminds.env documents every key with the built-in default")
    func shippedFileMatchesDefaults() throws {
        let file = try EnvFile.load(path: TestFiles.repositoryRoot + "/etc/hearthminds.env")
        let shipped = Dictionary(file.entries.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        #expect(Set(shipped.keys) == Set(ConfigKeys.all.map(\.name)))
        for key in ConfigKeys.all {
            #expect(shipped[key.name] == key.defaultValue, "\(key.name)")
        }
    }

    @Test("AI_NAMES takes the seed's array and the comma form")
    func aiNameForms() throws {
        for text in [#"AI_NAMES=["a", "b_2"]"#, "AI_NAMES=a,b_2", "AI_NAMES=a, b_2", "AI_NAMES=['a','b_2']"] {
            #expect(try loadConfig(text).ais.map(\.name) == ["a", "b_2"], "\(text)")
        }
        #expect(try loadConfig("AI_NAMES=[]").ais.isEmpty)
    }

    @Test("per-AI passwords in any letter case; none configured is none (generated later), not the name")
    func passwords() throws {
        let config = try loadConfig("AI_NAMES=logos,aletheia,nous\nlogos_password=one\nALETHEIA_PASSWORD=two")
        #expect(config.ais.map { $0.password?.reveal } == ["one", "two", nil])
        let fromEnvironment = try loadConfig(
            "AI_NAMES=logos", environment: ["Logos_Password": "three", "OTHER_PASSWORD": "ignored"])
        #expect(fromEnvironment.ais.map { $0.password?.reveal } == ["three"])
        // The seed's scheme, written out: each AI's password is its name, and the config says so.
        let seed = try loadConfig("AI_NAMES=logos,nous\n${AI_NAME}_PASSWORD=${AI_NAME}\nLOGOS_PASSWORD=own")
        #expect(seed.ais.map { $0.password?.reveal } == ["own", "nous"])
        #expect(seed.namedPasswords.map(\.role) == ["nous"])
        let manager = try loadConfig("HEARTHMINDS_PASSWORD=hearthminds\nNOUS_PASSWORD=nous\nAI_NAMES=nous")
        #expect(manager.namedPasswords.map(\.role) == ["hearthminds", "nous"])
    }

    @Test("layers: file, then environment, then --set")
    func layers() throws {
        let shipped = try TestFiles.write("POSTGRES_PORT=5000\nPG_CLUSTER_NAME=shipped")
        let config = try loadConfig(
            "POSTGRES_PORT=5001\nAI_DB_SUFFIX=_f", environment: ["POSTGRES_PORT": "5002", "AI_DB_SUFFIX": "_e"],
            overrides: ["POSTGRES_PORT=5003"], shipped: shipped)
        #expect(config.port == 5003)
        #expect(config.aiDBSuffix == "_e")
        #expect(config.clusterName == "shipped")
    }

    @Test("a secret is refused on the command line")
    func secretOnCommandLine() {
        #expect(configErrorKey("", overrides: ["HEARTHMINDS_PASSWORD=x"]) == "HEARTHMINDS_PASSWORD")
        #expect(configErrorKey("", overrides: ["logos_password=x"]) == "logos_password")
    }

    @Test("a --config file that does not exist is an error")
    func missingConfigFile() {
        expectFailure(.configuration) {
            try HearthConfig.load(ConfigSources(hostFile: "/nonexistent/hearthminds.env"))
        }
    }

    @Test("a secret's value never appears in an error or a description")
    func secretRedacted() throws {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        let config = try loadConfig("HEARTHMINDS_PASSWORD=hunter2")
        #expect(!"\(config)".contains("hunter2"))
        do {
            _ = try loadConfig("HEARTHMINDS_PASSWORD=hunter2\nAI_NAMES=logos\nlogos_password=")
        } catch {
            #expect(!"\(error)".contains("hunter2"))
        }
    }

    /// Every validation rule, each with a failing value; the error names the key.
    @Test("each validation rule rejects a bad value and names the key", arguments: [
        // malformed arrays
        (#"AI_NAMES=["ok", "no;pe"]"#, "AI_NAMES"),
        (#"AI_NAMES=["ok" "two"]"#, "AI_NAMES"),
        (#"AI_NAMES=["ok", ]"#, "AI_NAMES"),
        (#"AI_NAMES="ok","#, "AI_NAMES"),
        (#"AI_NAMES="a,,b""#, "AI_NAMES"),
        (#"AI_NAMES=[ok]]"#, "AI_NAMES"),
        // names: quotes, semicolons, spaces, upper case, leading digit, too long, pg_
        (#"AI_NAMES=["o'k"]"#, "AI_NAMES"),
        (#"AI_NAMES=["o\"k"]"#, "AI_NAMES"),
        (#"AI_NAMES=["two words"]"#, "AI_NAMES"),
        (#"AI_NAMES=["Logos"]"#, "AI_NAMES"),
        (#"AI_NAMES=["1st"]"#, "AI_NAMES"),
        (#"AI_NAMES=["pg_ai"]"#, "AI_NAMES"),
        ("AI_NAMES=" + String(repeating: "a", count: 61), "AI_NAMES"),
        // reserved and duplicate names
        ("AI_NAMES=postgres", "AI_NAMES"),
        ("AI_NAMES=template1", "AI_NAMES"),
        ("AI_NAMES=hearthminds", "AI_NAMES"),
        ("AI_NAMES=hearthminds_db\nAI_DB_SUFFIX=", "AI_NAMES"),
        ("AI_NAMES=logos,logos", "AI_NAMES"),
        ("HEARTHMINDS_DB=postgres", "HEARTHMINDS_DB"),
        ("HEARTHMINDS_DB=Hearth", "HEARTHMINDS_DB"),
        ("HEARTHMINDS_USER=hearthminds-service", "HEARTHMINDS_USER"),
        ("HEARTHMINDS_USER=postgres", "HEARTHMINDS_USER"),
        ("HEARTHMINDS_SERVICE_USER=root", "HEARTHMINDS_SERVICE_USER"),
        ("HEARTHMINDS_SERVICE_USER=Bad Name", "HEARTHMINDS_SERVICE_USER"),
        ("POSTGRES_ADMIN_USER=admin;drop", "POSTGRES_ADMIN_USER"),
        ("AI_DB_SUFFIX=-db", "AI_DB_SUFFIX"),
        ("AI_DEFAULT_EXTENSIONS=vector,vector", "AI_DEFAULT_EXTENSIONS"),
        (#"AI_DEFAULT_EXTENSIONS=["vec tor"]"#, "AI_DEFAULT_EXTENSIONS"),
        // numbers, ports, booleans, addresses
        ("POSTGRES_PORT=99999", "POSTGRES_PORT"),
        ("POSTGRES_PORT=54x2", "POSTGRES_PORT"),
        ("POSTGRES_PORT=0", "POSTGRES_PORT"),
        ("PG_VERSION=fifteen", "PG_VERSION"),
        ("PG_VERSION=14", "PG_VERSION"),  // before 15, PUBLIC may create in schema public
        ("PG_VERSION=12", "PG_VERSION"),
        ("PG_SSL_CERT_FILE=/etc/ssl/my.pem", "PG_SSL_KEY_FILE"),  // the missing half is named
        ("PG_SSL_KEY_FILE=/etc/ssl/my.key", "PG_SSL_CERT_FILE"),
        ("PG_SSL_CERT_FILE=relative.pem\nPG_SSL_KEY_FILE=/k", "PG_SSL_CERT_FILE"),
        ("PG_CLUSTER_NAME=../main", "PG_CLUSTER_NAME"),
        ("EMBEDDING_DIM=abc", "EMBEDDING_DIM"),
        ("EMBEDDING_DIM=0", "EMBEDDING_DIM"),
        ("EMBEDDING_DIM=3072", "EMBEDDING_DIM"),
        ("PGVECTOR_ENABLE_IVFFLAT=maybe", "PGVECTOR_ENABLE_IVFFLAT"),
        ("PGVECTOR_IVFFLAT_LISTS=-1", "PGVECTOR_IVFFLAT_LISTS"),
        ("PGVECTOR_IVFFLAT_LISTS=0", "PGVECTOR_IVFFLAT_LISTS"),
        ("PGVECTOR_IVFFLAT_LISTS=automatic", "PGVECTOR_IVFFLAT_LISTS"),
        ("PGVECTOR_IVFFLAT_LISTS=32769", "PGVECTOR_IVFFLAT_LISTS"),
        ("PGVECTOR_IVFFLAT_PROBES=0", "PGVECTOR_IVFFLAT_PROBES"),
        ("PGVECTOR_IVFFLAT_PROBES=ten", "PGVECTOR_IVFFLAT_PROBES"),
        ("PGVECTOR_INDEX=diskann", "PGVECTOR_INDEX"),
        ("PGVECTOR_INDEX=HNSW", "PGVECTOR_INDEX"),
        ("PGVECTOR_HNSW_M=1", "PGVECTOR_HNSW_M"),
        ("PGVECTOR_HNSW_M=101", "PGVECTOR_HNSW_M"),
        ("PGVECTOR_HNSW_EF_CONSTRUCTION=3", "PGVECTOR_HNSW_EF_CONSTRUCTION"),
        ("PGVECTOR_HNSW_M=32\nPGVECTOR_HNSW_EF_CONSTRUCTION=63", "PGVECTOR_HNSW_EF_CONSTRUCTION"),  // below 2 * m
        ("PGVECTOR_HNSW_EF_SEARCH=0", "PGVECTOR_HNSW_EF_SEARCH"),
        ("PGVECTOR_HNSW_EF_SEARCH=1001", "PGVECTOR_HNSW_EF_SEARCH"),
        ("EMBEDDING_DIM=3072\nPGVECTOR_ENABLE_IVFFLAT=false\nPGVECTOR_INDEX=hnsw", "EMBEDDING_DIM"),
        ("PGVECTOR_STORAGE=half", "PGVECTOR_STORAGE"),
        ("PGVECTOR_STORAGE=binary", "PGVECTOR_STORAGE"),  // binary with ivfflat
        ("PGVECTOR_STORAGE=halfvec\nEMBEDDING_DIM=4001", "EMBEDDING_DIM"),
        ("PGVECTOR_STORAGE=binary\nPGVECTOR_INDEX=hnsw\nPGVECTOR_RERANK=0", "PGVECTOR_RERANK"),
        ("PGVECTOR_RERANK=1001", "PGVECTOR_RERANK"),
        ("POSTGRES_HOST=db.example", "POSTGRES_HOST"),
        ("PG_ALLOWED_NETWORKS=10.0.0.0/33", "PG_ALLOWED_NETWORKS"),
        ("PG_ALLOWED_NETWORKS=10.0.0.0", "PG_ALLOWED_NETWORKS"),
        ("HEARTHMINDS_LOG=relative.jsonl", "HEARTHMINDS_LOG"),
        ("HEARTHMINDS_SERVICE_HOME=/var/lib/../etc", "HEARTHMINDS_SERVICE_HOME"),
        ("PGVECTOR_INSTALL_METHOD=pip", "PGVECTOR_INSTALL_METHOD"),
        ("PGVECTOR_INSTALL_METHOD=tarball", "PGVECTOR_INSTALL_METHOD"),
        ("PGVECTOR_SHA256=abc", "PGVECTOR_SHA256"),
        ("PGVECTOR_SOURCE=/tmp/pgvector.tar.gz", "PGVECTOR_SHA256"),
        ("PGVECTOR_DEBIAN_SUITE=Trixie!", "PGVECTOR_DEBIAN_SUITE"),
        // unknown keys, passwords
        ("POSTGRES_PROT=5432", "POSTGRES_PROT"),
        ("pg_version=15", "pg_version"),
        ("AI_NAMES=logos\nnous_password=x", "nous_password"),
        ("AI_NAMES=logos\nLOGOS_PASSWORD=", "LOGOS_PASSWORD"),
    ])
    func rejects(text: String, key: String) {
        #expect(configErrorKey(text) == key, "\(text)")
    }

    @Test("EMBEDDING_DIM above 2000 is allowed when the IVFFlat index is off")
    func largeDimensionWithoutIndex() throws {
        #expect(try loadConfig("EMBEDDING_DIM=3072\nPGVECTOR_ENABLE_IVFFLAT=false").embeddingDim == 3072)
    }

    @Test("PGVECTOR_STORAGE: halfvec takes up to 4000 indexed dimensions; binary needs hnsw; errors name key and value")
    func storageKeys() throws {
        #expect(try loadConfig("").vectorStorage == .vector)
        #expect(try loadConfig("").rerank == 100)
        #expect(try loadConfig("PGVECTOR_STORAGE=halfvec\nEMBEDDING_DIM=4000").embeddingDim == 4000)
        let binary = try loadConfig("PGVECTOR_STORAGE=binary\nPGVECTOR_INDEX=hnsw\nPGVECTOR_RERANK=40")
        #expect(binary.vectorStorage == .binary && binary.rerank == 40)
        #expect {
            try loadConfig("PGVECTOR_STORAGE=binary")
        } throws: { error in
            "\(error)".contains("PGVECTOR_STORAGE=\"binary\"") && "\(error)".contains("PGVECTOR_INDEX=hnsw")
        }
        #expect {
            try loadConfig("PGVECTOR_STORAGE=halfvec\nEMBEDDING_DIM=4001")
        } throws: { error in
            "\(error)".contains("EMBEDDING_DIM=\"4001\"") && "\(error)".contains("halfvec")
        }
    }

    @Test("the vector index keys: numbers or auto, hnsw with its parameters")
    func vectorKeys() throws {
        let fixed = try loadConfig("PGVECTOR_IVFFLAT_LISTS=250\nPGVECTOR_IVFFLAT_PROBES=12")
        #expect(fixed.ivfflatLists == 250 && fixed.ivfflatProbes == 12)
        #expect(try loadConfig("PGVECTOR_IVFFLAT_LISTS=AUTO").ivfflatLists == nil)
        let hnsw = try loadConfig(
            "PGVECTOR_INDEX=hnsw\nPGVECTOR_HNSW_M=32\nPGVECTOR_HNSW_EF_CONSTRUCTION=128\nPGVECTOR_HNSW_EF_SEARCH=100")
        #expect(hnsw.vectorIndex == .hnsw && hnsw.hnswM == 32 && hnsw.hnswEfConstruction == 128 && hnsw.hnswEfSearch == 100)
    }

    @Test("an error names the key, the value and where it came from")
    func errorText() {
        do {
            _ = try loadConfig("POSTGRES_PORT=99999")
            Issue.record("accepted")
        } catch {
            #expect(error.description.contains("POSTGRES_PORT=\"99999\""))
            #expect(error.description.contains("hearthminds.env:1"))
        }
    }

    @Test("an unknown key that may be a pasted secret (mixed case) is not shown; a typo's is (attack review of issue 25)")
    func unknownKeyNotShown() {
        #expect { _ = try loadConfig("q7Rk2mZpWhunterLv3HbN4aA==\n") } throws: { error in
            let shown = "\(error)"
            return !shown.contains("hunter") && (error as? Failure)?.key == nil && shown.contains("unknown key")
        }
        #expect { _ = try loadConfig("POSTGRS_PORT=5432\n") } throws: { ($0 as? Failure)?.key == "POSTGRS_PORT" }
    }
}
