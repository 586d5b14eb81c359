import ArgumentParser
import HearthKit

@main
struct VectorIndexCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-vector-index",
        abstract: "Keep every database's vector index good for search: trained on its rows, probes set.",
        discussion: """
            The install.sh step `vector-index`, after `migrations`. Per database: the IVFFlat index \
            on memory_shards.embedding is rebuilt (REINDEX INDEX CONCURRENTLY, as the database's \
            owner) once the table holds at least twice the rows it was trained on, with \
            PGVECTOR_IVFFLAT_LISTS lists (auto: rows / 1000 up to a million rows, sqrt(rows) beyond); \
            ivfflat.probes (PGVECTOR_IVFFLAT_PROBES; auto: the square root of the lists, rounded up), \
            or hnsw.ef_search with PGVECTOR_INDEX=hnsw, is set for the database. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration.
            """)

    @OptionGroup var options: StepOptions

    func run() async throws {
        throw ExitCode(await StepMain.run(VectorIndexStep.name, options) { VectorIndexStep.make($0) })
    }
}
