import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
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
        /// A partial index (a WHERE clause: the owner's code, run by every build and rebuild).
        public var partial: Bool = false
        /// Its expression or predicate calls a function no extension provides (the owner's own).
        public var foreignFunctions: Bool = false
    }

    public struct Found: Sendable, Equatable {
        /// The embedding column's type (`vector`, `halfvec`, ... ; nil: no column) and its dimensions.
        public let type: String?
        public let dimensions: Int?
        /// The suite's three index names, those that exist.
        public let indexes: [Index]
        /// memory_search(public.vector, integer): nil when there is none.
        public let search: Search?
        /// Operators named as pgvector's (<=>, <->, ...) that no extension provides, in any schema
        /// but pg_catalog: a query written as the seed's (`embedding <=> $1`) may resolve to one.
        public var plantedOperators: [String] = []

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
        /// SHA-256 (hex) of its body as the server keeps it (prosrc), its language, whether it is
        /// STRICT, and its settings (proconfig).
        public var bodySHA256: String = ""
        public var language: String = "sql"
        public var strict: Bool = true
        public var settings: Set<String> = []

        public init(securityDefiner: Bool, ownedByDatabaseOwner: Bool, pinnedSearchPath: Bool) {
            self.securityDefiner = securityDefiner
            self.ownedByDatabaseOwner = ownedByDatabaseOwner
            self.pinnedSearchPath = pinnedSearchPath
        }

        /// Attributes as the check compares them (the body by its digest).
        public static func == (a: Search, b: Search) -> Bool {
            a.securityDefiner == b.securityDefiner && a.ownedByDatabaseOwner == b.ownedByDatabaseOwner
                && a.pinnedSearchPath == b.pinnedSearchPath
        }
    }

    /// The settings 0008 gives memory_search.
    public static let searchSettings: Set<String> = ["search_path=pg_catalog, pg_temp"]

    /// memory_search's body as 0008 renders it for the configuration (the server keeps it as
    /// written, prosrc): what the check compares the database's with, so that a body the owner
    /// put in its place (a trojan of the same attributes, in the shared database the service
    /// account owns) is named, never run by verify. MigrationUnitTests holds it to 0008's text.
    public static func searchBody(_ config: HearthConfig) -> String {
        let dim = config.embeddingDim
        switch config.vectorStorage {
        case .vector, .halfvec:
            let query = config.vectorStorage == .halfvec ? "$1::public.halfvec(\(dim))" : "$1"
            return """

                    SELECT r.id, r.content, r.distance
                    FROM (SELECT s.id, s.content, s.embedding OPERATOR(public.<=>) \(query) AS distance
                          FROM public.memory_shards s
                          WHERE s.embedding IS NOT NULL
                          ORDER BY s.embedding OPERATOR(public.<=>) \(query)
                          LIMIT $2) r
                    ORDER BY r.distance, r.id

                """
        case .binary:
            return """

                    SELECT c.id, c.content, c.embedding OPERATOR(public.<=>) $1
                    FROM (SELECT s.id, s.content, s.embedding
                          FROM public.memory_shards s
                          WHERE s.embedding IS NOT NULL
                          ORDER BY public.binary_quantize(s.embedding)::bit(\(dim))
                              OPERATOR(public.<~>) public.binary_quantize($1)
                          LIMIT GREATEST($2, \(config.rerank))) c
                    ORDER BY 3, 1
                    LIMIT $2

                """
        }
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
                    WHERE a.attrelid = x.indrelid AND a.attnum = x.indkey[0] AND x.indkey[0] <> 0),
                   x.indpred IS NOT NULL,
                   EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                           WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = x.indexrelid
                             AND d.refclassid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                             AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                                             WHERE e.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass
                                               AND e.objid = d.refobjid AND e.deptype = 'e'))
            FROM pg_catalog.pg_index x
            JOIN pg_catalog.pg_class c ON c.oid = x.indexrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_catalog.pg_am am ON am.oid = c.relam
            WHERE n.nspname = 'public' AND x.indrelid = pg_catalog.to_regclass('public.memory_shards')
              AND c.relname = ANY($1::text[]) AND x.indisvalid
            ORDER BY 1
            """, [PGArray.literal(indexNames)]
        ).decode((String, String, String?, String?, String?, Bool, Bool).self).map {
            Index(
                name: $0.0, method: $0.1, opclass: $0.2, expression: $0.3, column: $0.4, partial: $0.5,
                foreignFunctions: $0.6)
        }
        let search = try db.query(
            """
            SELECT p.prosecdef, p.proowner = d.datdba,
                   coalesce(p.proconfig, '{}'::text[]) @> ARRAY['search_path=pg_catalog, pg_temp'],
                   pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to(p.prosrc, 'UTF8')), 'hex'),
                   l.lanname::text, p.proisstrict,
                   (SELECT coalesce(pg_catalog.array_agg(pg_catalog.left(c, 256)), '{}')
                    FROM pg_catalog.unnest(p.proconfig[1:16]) c)::text
            FROM pg_catalog.pg_proc p, pg_catalog.pg_database d, pg_catalog.pg_language l
            WHERE p.oid = pg_catalog.to_regprocedure('public.memory_search(public.vector, integer)')
              AND d.datname = pg_catalog.current_database() AND l.oid = p.prolang
            """
        ).decodeFirst((Bool, Bool, Bool, String, String, Bool, [String]).self).map {
            var search = Search(securityDefiner: $0.0, ownedByDatabaseOwner: $0.1, pinnedSearchPath: $0.2)
            (search.bodySHA256, search.language, search.strict, search.settings) = ($0.3, $0.4, $0.5, Set($0.6))
            return search
        }
        let operators = try db.query(
            """
            SELECT pg_catalog.left(o.oid::pg_catalog.regoperator::text, 256) FROM pg_catalog.pg_operator o
            WHERE o.oprname = ANY($1::text[]) AND o.oprnamespace <> 'pg_catalog'::pg_catalog.regnamespace
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                              WHERE e.classid = 'pg_catalog.pg_operator'::pg_catalog.regclass AND e.objid = o.oid
                                AND e.deptype = 'e')
            ORDER BY 1 LIMIT 16
            """, [PGArray.literal(pgvectorOperators)]
        ).decode(String.self)
        var found = Found(type: type, dimensions: dimensions, indexes: indexes, search: search)
        found.plantedOperators = operators
        return found
    }

    static let indexNames = [VectorIndex.ivfflatName, VectorIndex.hnswName, binaryName]

    /// pgvector's distance operators.
    static let pgvectorOperators = ["<->", "<#>", "<=>", "<+>", "<~>", "<%>"]

    /// The indexes the configuration wants: name -> (method, opclass, expression wanted).
    public static func wantedIndexes(_ config: HearthConfig) -> [String: (method: String, opclass: String, expression: Bool)] {
        let fits = config.embeddingDim <= VectorIndex.maxDimensions
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
        } else if found.type != nil && found.dimensions == nil {
            problems.append("memory_shards.embedding has no dimensions, EMBEDDING_DIM is \(config.embeddingDim)")
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
            if index.partial { problems.append("index \(index.name) is partial (a WHERE clause the suite does not make)") }
            if index.foreignFunctions {
                problems.append("index \(index.name) calls a function no extension provides (the database owner's own)")
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
            if search.bodySHA256 != SHA256.hex(searchBody(config)) || search.language != "sql" || !search.strict
                || search.settings != searchSettings
            {
                problems.append("public.memory_search is not the function revision 0008 makes (its body, language or settings differ)")
            }
        } else {
            problems.append("public.memory_search(vector, integer) is missing")
        }
        for planted in found.plantedOperators {
            problems.append("operator \(planted) is not pgvector's: a query written as `embedding <=> $1` may run it")
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
    /// configured; a hostWrong Failure naming every difference and what to run otherwise; a
    /// Failure needing `migrations` while 0008 has not run (no memory_search yet).
    public static func require(_ config: HearthConfig, database: String, _ db: PGConnection) throws -> Bool {
        let found = try inspect(db)
        if found.search == nil && found.indexes.allSatisfy({ $0.name != binaryName }) && found.type != "halfvec" {
            throw Failure(
                "\(database): public.memory_search is missing: revision 0008 has not run (`hm-migrate current "
                    + "--database \(database)`)", needs: StepName.migrations)
        }
        let problems = problems(config, found)
        guard problems.isEmpty else {
            throw Failure.hostWrong(
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
