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

@Suite("vector index rules (pgvector's guidance as numbers)")
struct VectorIndexUnitTests {
    @Test("auto lists: rows / 1000 up to a million rows, sqrt(rows) beyond; 1 to 32768", arguments: [
        (0, 1), (999, 1), (1797, 1), (2000, 2), (20_000, 20), (200_000, 200), (1_000_000, 1000),
        (1_000_001, 1001), (4_000_000, 2000), (10_000_000, 3163), (2_000_000_000, 32768),
    ])
    func autoLists(rows: Int, lists: Int) {
        #expect(VectorIndex.autoLists(rows: rows) == lists)
    }

    @Test("auto probes: the square root of the lists, rounded up", arguments: [
        (1, 1), (2, 2), (3, 2), (4, 2), (5, 3), (20, 5), (100, 10), (101, 11), (200, 15), (1000, 32), (32768, 182),
    ])
    func autoProbes(lists: Int, probes: Int) {
        #expect(VectorIndex.autoProbes(lists: lists) == probes)
    }

    @Test("retrained at twice the rows it was trained on; never trained: at the configured lists (auto: one row)")
    func retrainAt() {
        #expect(VectorIndex.retrainAt(trainedOn: nil, configuredLists: nil) == 1)
        #expect(VectorIndex.retrainAt(trainedOn: nil, configuredLists: 100) == 100)
        #expect(VectorIndex.retrainAt(trainedOn: 0, configuredLists: nil) == 1)
        #expect(VectorIndex.retrainAt(trainedOn: 20_000, configuredLists: nil) == 40_000)
        #expect(VectorIndex.retrainAt(trainedOn: 20, configuredLists: 100) == 100)
        #expect(VectorIndex.retrainAt(trainedOn: 500, configuredLists: 100) == 1000)
    }

    @Test("the comment records the rows; anything else (a tenant's edit) counts as never trained")
    func comment() {
        let text = VectorIndex.comment(rows: 20_000, lists: 20)
        #expect(text == "HearthMinds vector-index: trained on 20000 rows with an embedding (lists 20)")
        #expect(VectorIndex.trainedRows(comment: text) == 20_000)
        for other in [nil, "", "mine", "HearthMinds vector-index: trained on  rows", "HearthMinds vector-index: trained on -5 rows",
                      "HearthMinds vector-index: trained on 99999999999999999999999 rows"] {
            #expect(VectorIndex.trainedRows(comment: other) == nil, "\(other ?? "nil")")
        }
    }

    @Test("the training memory: pgvector's 50 samples per list, at least 64 MB")
    func memory() {
        #expect(VectorIndex.trainingMemoryMB(rows: 0, lists: 1, dimensions: 1536) == 64)
        let big = VectorIndex.trainingMemoryMB(rows: 1_000_000, lists: 1000, dimensions: 1536)
        #expect(big > 50_000 * 1536 * 4 / (1024 * 1024) && big < 1024)
    }

    @Test("the search setting per database: probes from the index's lists, fixed, or ef_search")
    func settings() throws {
        let auto = try loadConfig()
        #expect(VectorIndex.wantedSetting(auto, indexLists: 20)! == ("ivfflat.probes", 5))
        #expect(VectorIndex.wantedSetting(auto, indexLists: nil)! == ("ivfflat.probes", 10))  // 0003's 100 lists
        #expect(VectorIndex.wantedSetting(try loadConfig("PGVECTOR_IVFFLAT_PROBES=3"), indexLists: 400)! == ("ivfflat.probes", 3))
        #expect(VectorIndex.wantedSetting(try loadConfig("PGVECTOR_IVFFLAT_LISTS=400"), indexLists: nil)! == ("ivfflat.probes", 20))
        #expect(VectorIndex.wantedSetting(try loadConfig("PGVECTOR_INDEX=hnsw"), indexLists: 20)! == ("hnsw.ef_search", 40))
        #expect(VectorIndex.wantedSetting(try loadConfig("PGVECTOR_ENABLE_IVFFLAT=false"), indexLists: nil) == nil)
    }

    @Test("templates: auto renders 0003 as 100 lists (no checksum change from the old default); 0007 holds SQL only for hnsw")
    func templates() throws {
        let directory = TestFiles.repositoryRoot + "/Migrations"
        let auto = try MigrationSet.load(directory: directory, config: try loadConfig())
        let hundred = try MigrationSet.load(directory: directory, config: try loadConfig("PGVECTOR_IVFFLAT_LISTS=100"))
        #expect(auto.revisions.map(\.checksum) == hundred.revisions.map(\.checksum))
        #expect(auto.revision("0003")?.up.text.contains("WITH (lists = 100)") == true)
        let hnsw = try MigrationSet.load(
            directory: directory, config: try loadConfig("PGVECTOR_INDEX=hnsw\nPGVECTOR_HNSW_M=24\nPGVECTOR_HNSW_EF_CONSTRUCTION=96"))
        let up = try #require(hnsw.revision("0007")?.up)
        #expect(up.statements.first?.text == "DROP INDEX IF EXISTS memory_shards_embedding_ivfflat_idx")
        #expect(up.text.contains("WITH (m = 24, ef_construction = 96)"))
        #expect(try #require(hnsw.revision("0007")?.down).text.contains("WITH (lists = 100)"))
        // Only 0007 differs; m and ef_construction do not touch the IVFFlat host's files.
        // (0008 too: PGVECTOR_STORAGE=vector does not depend on the index kind.)
        #expect(zip(auto.revisions, hnsw.revisions).map { $0.checksum == $1.checksum } == [true, true, true, true, true, false, true])
        let otherM = try MigrationSet.load(directory: directory, config: try loadConfig("PGVECTOR_HNSW_M=24\nPGVECTOR_HNSW_EF_CONSTRUCTION=96"))
        // Issue 24: 0003 and 0007 test PGVECTOR_IVFFLAT_FITS and PGVECTOR_HNSW_FITS (no vector index
        // beyond 2000 dimensions, for halfvec and binary hosts) where they tested
        // PGVECTOR_ENABLE_IVFFLAT and PGVECTOR_HNSW: on every vector host they render the same
        // text, so no applied checksum changes.
        for keys in ["", "PGVECTOR_ENABLE_IVFFLAT=false", "PGVECTOR_INDEX=hnsw", "EMBEDDING_DIM=384\nPGVECTOR_IVFFLAT_LISTS=7",
                     "EMBEDDING_DIM=3000\nPGVECTOR_ENABLE_IVFFLAT=false", "PGVECTOR_INDEX=hnsw\nPGVECTOR_ENABLE_IVFFLAT=false"] {
            let values = TemplateValues(try loadConfig(keys))
            for file in ["0003_ivfflat_index.up.sql", "0007_hnsw_index.up.sql", "0007_hnsw_index.down.sql"] {
                let text = try FileSystem.readText(directory + "/" + file)
                let old = text.replacing("{{#if PGVECTOR_IVFFLAT_FITS}}", with: "{{#if PGVECTOR_ENABLE_IVFFLAT}}")
                    .replacing("{{#if PGVECTOR_HNSW_FITS}}", with: "{{#if PGVECTOR_HNSW}}")
                #expect(old != text)
                #expect(
                    try MigrationTemplate.render(text, values: values, file: file)
                        == MigrationTemplate.render(old, values: values, file: file), "\(file) with \(keys)")
            }
        }
        #expect(otherM.revisions.map(\.checksum) == auto.revisions.map(\.checksum))
    }
}
