/// How memory_shards.embedding is stored and indexed (PGVECTOR_STORAGE, revision 0008, issue
/// 24), as the catalog has it, against what the configuration wants; and memory_search, the
/// search that fits the kind. Read as the database's owner (OwnerSessions: search_path pinned),
/// every catalog name schema-qualified.
///
/// A key change after 0008 ran is never applied silently: 0008's rendered files change (the
/// migrations step and `hm-migrate check` report it), and the vector-index step and verify find
/// the column or the index of another kind and say what to run (down to 0007 under the old value,
/// then up under the new one: 0008's down converts the rows back).
public enum EmbeddingStorage {
    public typealias Kind = HearthConfig.VectorStorage

    public static let binaryName = "memory_shards_embedding_binary_idx"
    public static let function = "memory_search"
    /// The revision that brings the storage in, and the one before it.
    public static let revision = "0008"
    public static let before = "0007"

    /// One of the suite's indexes on memory_shards, as found.
    public struct Index: Sendable, Equatable {
        public let name: String
        public let method: String
        /// The operator class of its first column, when it is the vector extension's (else nil).
        public let opclass: String?
        /// Its expression (pg_get_expr, names qualified), nil for a plain column.
        public let expression: String?
        public let column: String?
    }

    public struct Found: Sendable, Equatable {
        /// The embedding column's type (`vector`, `halfvec`, ... ; nil: no column) and its dimensions.
        public let type: String?
        public let dimensions: Int?
        /// The suite's three index names, those that exist.
        public let indexes: [Index]
        /// memory_search(public.vector, integer): nil when there is none.
        public let search: Search?

        /// The kind the column and its indexes say was applied.
        public var stored: Kind? {
            switch type {
            case "halfvec": return .halfvec
            case "vector": return indexes.contains(where: { $0.name == EmbeddingStorage.binaryName }) ? .binary : .vector
            default: return nil
            }
        }
    }

    public struct Search: Sendable, Equatable {
        public let securityDefiner: Bool
        public let ownedByDatabaseOwner: Bool
        public let pinnedSearchPath: Bool
    }

    public static func inspect(_ db: PGConnection) throws -> Found {
        let column = try db.query(
            """
            SELECT t.typname::text, tn.nspname::text = 'public', a.atttypmod
            FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
            JOIN pg_catalog.pg_namespace tn ON tn.oid = t.typnamespace
            WHERE a.attrelid = pg_catalog.to_regclass('public.memory_shards') AND a.attname = 'embedding'
              AND NOT a.attisdropped
            """
        ).decodeFirst((String, Bool, Int).self)
        let type = column.map { $0.1 ? $0.0 : "\($0.0) (not the extension's)" }
        let dimensions = column.flatMap { $0.2 > 0 ? $0.2 : nil }
        let indexes = try db.query(
            """
            SELECT c.relname::text, am.amname::text,
                   (SELECT oc.opcname::text FROM pg_catalog.pg_opclass oc, pg_catalog.pg_extension e
                    WHERE oc.oid = x.indclass[0] AND e.extname = 'vector' AND oc.opcnamespace = e.extnamespace),
                   pg_catalog.left(pg_catalog.pg_get_expr(x.indexprs, x.indrelid), 512),
                   (SELECT a.attname::text FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = x.indrelid AND a.attnum = x.indkey[0] AND x.indkey[0] <> 0)
            FROM pg_catalog.pg_index x
            JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_am am ON am.oid = c.relam
            WHERE n.nspname = 'public' AND x.indrelid = pg_catalog.to_regclass('public.memory_shards')
              AND c.relname = ANY($1::text[]) AND x.indisvalid
            ORDER BY 1
            """, [PGArray.literal(indexNames)]
        ).decode((String, String, String?, String?, String?).self).map {
            Index(name: $0.0, method: $0.1, opclass: $0.2, expression: $0.3, column: $0.4)
        }
        let search = try db.query(
            """
            SELECT p.prosecdef, p.proowner = d.datdba,
                   coalesce(p.proconfig, '{}'::text[]) @> ARRAY['search_path=pg_catalog, pg_temp']
            FROM pg_catalog.pg_proc p, pg_catalog.pg_database d
            WHERE p.oid = pg_catalog.to_regprocedure('public.memory_search(public.vector, integer)')
              AND d.datname = pg_catalog.current_database()
            """
        ).decodeFirst((Bool, Bool, Bool).self).map {
            Search(securityDefiner: $0.0, ownedByDatabaseOwner: $0.1, pinnedSearchPath: $0.2)
        }
        return Found(type: type, dimensions: dimensions, indexes: indexes, search: search)
    }

    static let indexNames = [VectorIndex.ivfflatName, VectorIndex.hnswName, binaryName]

    /// The indexes the configuration wants: name -> (method, opclass, expression wanted).
    public static func wantedIndexes(_ config: HearthConfig) -> [String: (method: String, opclass: String, expression: Bool)] {
        let fits = config.embeddingDim <= TemplateValues.vectorIndexMaxDim
        switch config.vectorStorage {
        case .vector:
            if config.vectorIndex == .hnsw { return fits ? [VectorIndex.hnswName: ("hnsw", "vector_cosine_ops", false)] : [:] }
            return config.ivfflat && fits ? [VectorIndex.ivfflatName: ("ivfflat", "vector_cosine_ops", false)] : [:]
        case .halfvec:
            if config.vectorIndex == .hnsw { return [VectorIndex.hnswName: ("hnsw", "halfvec_cosine_ops", false)] }
            return config.ivfflat ? [VectorIndex.ivfflatName: ("ivfflat", "halfvec_cosine_ops", false)] : [:]
        case .binary:
            return [binaryName: ("hnsw", "bit_hamming_ops", true)]
        }
    }

    /// The operator class the vector-index step expects on the IVFFlat index.
    public static func ivfflatOpclass(_ config: HearthConfig) -> String {
        config.vectorStorage == .halfvec ? "halfvec_cosine_ops" : "vector_cosine_ops"
    }

    /// What differs from the configuration (empty: the column, its indexes and memory_search are
    /// what PGVECTOR_STORAGE and PGVECTOR_INDEX want).
    public static func problems(_ config: HearthConfig, _ found: Found) -> [String] {
        var problems: [String] = []
        let kind = config.vectorStorage
        let wantedType = kind == .halfvec ? "halfvec" : "vector"
        if found.type != wantedType {
            problems.append("memory_shards.embedding is \(found.type ?? "missing"), PGVECTOR_STORAGE=\(kind.rawValue) wants \(wantedType)")
        }
        if let dims = found.dimensions, dims != config.embeddingDim {
            problems.append("memory_shards.embedding has \(dims) dimensions, EMBEDDING_DIM is \(config.embeddingDim)")
        }
        let wanted = wantedIndexes(config)
        for index in found.indexes {
            guard let want = wanted[index.name] else {
                problems.append("index \(index.name) exists, which PGVECTOR_STORAGE=\(kind.rawValue) with PGVECTOR_INDEX=\(config.vectorIndex.rawValue) does not build")
                continue
            }
            if index.method != want.method || index.opclass != want.opclass {
                problems.append("index \(index.name) is \(index.method) with \(index.opclass ?? "another operator class"), not \(want.method) with \(want.opclass)")
            }
            if want.expression {
                let expected = "binary_quantize(embedding))::bit(\(config.embeddingDim))"
                if !(index.expression ?? "").hasSuffix(expected) || index.column != nil {
                    problems.append("index \(index.name) is on \(index.expression ?? index.column ?? "?"), not on binary_quantize(embedding)::bit(\(config.embeddingDim))")
                }
            } else if index.expression != nil || index.column != VectorIndex.column {
                problems.append("index \(index.name) is not on the column \(VectorIndex.column) alone")
            }
        }
        for name in wanted.keys.sorted() where !found.indexes.contains(where: { $0.name == name }) {
            problems.append("index \(name) is missing (or invalid)")
        }
        if let search = found.search {
            if search.securityDefiner { problems.append("public.memory_search is SECURITY DEFINER, not INVOKER") }
            if !search.ownedByDatabaseOwner { problems.append("public.memory_search is not the database owner's") }
            if !search.pinnedSearchPath { problems.append("public.memory_search's search_path is not pinned (pg_catalog, pg_temp)") }
        } else {
            problems.append("public.memory_search(vector, integer) is missing")
        }
        return problems
    }

    /// The commands that bring a database whose storage is `stored` to the configured kind.
    public static func remedy(_ config: HearthConfig, database: String, stored: Kind?) -> String {
        let old = stored ?? .vector
        if old == config.vectorStorage {
            return "put it back as Migrations/0008_vector_storage.up.sql builds it: `sudo hm-migrate down --to \(before) "
                + "--database \(database)`, then `sudo ./install.sh`"
        }
        return "it was stored as \(old.rawValue): `sudo hm-migrate down --to \(before) --database \(database) --set "
            + "PGVECTOR_STORAGE=\(old.rawValue)` (0008 undone under the value it was applied with, every row kept), "
            + "then `sudo ./install.sh` with PGVECTOR_STORAGE=\(config.vectorStorage.rawValue) (0008 applied again)"
    }

    /// The check of the vector-index step and of verify: true when the storage is the one
    /// configured; a CheckFailed naming every difference and what to run otherwise; a
    /// HearthError needing `migrations` while 0008 has not run (no memory_search yet).
    public static func require(_ config: HearthConfig, database: String, _ db: PGConnection) throws -> Bool {
        let found = try inspect(db)
        if found.search == nil && found.indexes.allSatisfy({ $0.name != binaryName }) && found.type != "halfvec" {
            throw HearthError(
                "\(database): public.memory_search is missing: revision 0008 has not run (`hm-migrate current "
                    + "--database \(database)`)", needs: MigrationsStep.name)
        }
        let problems = problems(config, found)
        guard problems.isEmpty else {
            throw CheckFailed(
                "\(database): the embeddings are not stored as PGVECTOR_STORAGE=\(config.vectorStorage.rawValue) wants: "
                    + problems.joined(separator: "; ") + ". "
                    + remedy(config, database: database, stored: found.stored))
        }
        return true
    }

    /// memory_search run once, as the caller (a vector of ones: any rows, or none); the rows it returned.
    public static func searchOnce(_ db: PGConnection, dimensions: Int) throws -> Int {
        try db.query(
            """
            SELECT pg_catalog.count(*) FROM public.memory_search(
                pg_catalog.array_fill(1::real, ARRAY[$1::integer])::public.vector, 3)
            """, [String(dimensions)]
        ).decodeScalar(Int.self) ?? 0
    }

    /// The hnsw.ef_search a binary host needs so that the index returns PGVECTOR_RERANK
    /// candidates and enough of the right ones among them (bench/RESULTS.md §5: 100 candidates at
    /// ef_search 400 reached recall 0.9595): four times the candidates, at most 1000 (pgvector's
    /// limit), never below PGVECTOR_HNSW_EF_SEARCH.
    public static func binaryEfSearch(_ config: HearthConfig) -> Int {
        max(config.hnswEfSearch, min(1000, 4 * config.rerank))
    }
}
