import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The values a revision file may use: validated configuration numbers and booleans only
/// (never a name or a free string, so rendering cannot inject SQL).
public enum TemplateValue: Sendable, Equatable, CustomStringConvertible {
    case int(Int)
    case bool(Bool)

    public var description: String {
        switch self {
        case .int(let value): String(value)
        case .bool(let value): value ? "true" : "false"
        }
    }
}

public struct TemplateValues: Sendable, Equatable {
    public var values: [String: TemplateValue]

    public init(_ values: [String: TemplateValue]) {
        self.values = values
    }

    /// The widest vector a vector-typed IVFFlat or HNSW index takes (pgvector's limit).
    public static let vectorIndexMaxDim = VectorIndex.maxDimensions

    /// The validated configuration's numbers and booleans: EMBEDDING_DIM,
    /// PGVECTOR_ENABLE_IVFFLAT, PGVECTOR_IVFFLAT_LISTS (auto: pgvector's default lists,
    /// VectorIndex.defaultLists), PGVECTOR_HNSW (true when PGVECTOR_INDEX is hnsw),
    /// PGVECTOR_HNSW_M and PGVECTOR_HNSW_EF_CONSTRUCTION; and for
    /// revision 0008 (issue 24):
    /// - PGVECTOR_IVFFLAT_FITS / PGVECTOR_HNSW_FITS: PGVECTOR_ENABLE_IVFFLAT / PGVECTOR_HNSW, and
    ///   EMBEDDING_DIM a vector index takes (at most 2000; only a halfvec or binary host has
    ///   more, and its index is 0008's). On every host without PGVECTOR_STORAGE they equal the
    ///   two keys, so 0003 and 0007 render as before (same checksums);
    /// - PGVECTOR_IVFFLAT_INDEX: the IVFFlat index is the one in use (PGVECTOR_INDEX=ivfflat and
    ///   PGVECTOR_ENABLE_IVFFLAT); PGVECTOR_IVFFLAT_INDEX_FITS: and its dimensions fit vector;
    /// - PGVECTOR_STORAGE_VECTOR, PGVECTOR_STORAGE_HALFVEC, PGVECTOR_STORAGE_BINARY: the kind;
    /// - PGVECTOR_RERANK: the candidates memory_search re-ranks (binary).
    public init(_ config: HearthConfig) {
        let fits = config.embeddingDim <= TemplateValues.vectorIndexMaxDim
        let hnsw = config.vectorIndex == .hnsw
        let ivfflatIndex = config.vectorIndex == .ivfflat && config.ivfflat
        values = [
            "EMBEDDING_DIM": .int(config.embeddingDim),
            "PGVECTOR_IVFFLAT_LISTS": .int(config.ivfflatLists ?? VectorIndex.defaultLists),
            "PGVECTOR_ENABLE_IVFFLAT": .bool(config.ivfflat),
            "PGVECTOR_HNSW": .bool(hnsw),
            "PGVECTOR_HNSW_M": .int(config.hnswM),
            "PGVECTOR_HNSW_EF_CONSTRUCTION": .int(config.hnswEfConstruction),
            "PGVECTOR_IVFFLAT_FITS": .bool(config.ivfflat && fits),
            "PGVECTOR_HNSW_FITS": .bool(hnsw && fits),
            "PGVECTOR_IVFFLAT_INDEX": .bool(ivfflatIndex),
            "PGVECTOR_IVFFLAT_INDEX_FITS": .bool(ivfflatIndex && fits),
            "PGVECTOR_STORAGE_VECTOR": .bool(config.vectorStorage == .vector),
            "PGVECTOR_STORAGE_HALFVEC": .bool(config.vectorStorage == .halfvec),
            "PGVECTOR_STORAGE_BINARY": .bool(config.vectorStorage == .binary),
            "PGVECTOR_RERANK": .int(config.rerank),
        ]
    }
}

/// Renders a revision file:
/// - `{{NAME}}` is replaced by the value of NAME;
/// - a line holding only `{{#if NAME}}` (NAME a boolean) starts a block kept only when NAME
///   is true, up to a line holding only `{{/if}}` (blocks nest);
/// - an unknown name, a non-boolean `#if`, an unclosed or stray block, or any other `{{`
///   is an error naming the file and the line.
/// The rendered text keeps every line in its place (directive lines and dropped lines become
/// empty), so a line number in the rendered text is the line number in the file.
public enum MigrationTemplate {
    public static func render(_ text: String, values: TemplateValues, file: String) throws(Failure) -> String {
        var output: [Substring] = []
        var keeping: [Bool] = []  // one entry per open block
        var lineNumber = 0
        func fail(_ message: String) -> Failure {
            Failure.migration("\(file) line \(lineNumber): \(message)")
        }
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let trimmed = String(line).trimmingCharacters(in: " \t\r")
            if trimmed.hasPrefix("{{#") || trimmed.hasPrefix("{{/") {
                guard trimmed.hasSuffix("}}") else { throw fail("a block directive must end the line with }}") }
                let inner = String(trimmed.dropFirst(2).dropLast(2)).trimmingCharacters(in: " ")
                if inner == "/if" {
                    guard keeping.popLast() != nil else { throw fail("{{/if}} without {{#if ...}}") }
                } else if inner.hasPrefix("#if ") {
                    let name = String(inner.dropFirst(4)).trimmingCharacters(in: " ")
                    guard let value = values.values[name] else { throw fail("unknown template value '\(name)' in {{#if}}; known: \(known(values))") }
                    guard case .bool(let flag) = value else { throw fail("{{#if \(name)}} needs a boolean, and \(name) is a number") }
                    keeping.append(flag)
                } else {
                    throw fail("unknown block directive {{\(inner)}}; only {{#if NAME}} and {{/if}} exist")
                }
                output.append("")
                continue
            }
            if keeping.contains(false) {
                output.append("")
                continue
            }
            output.append(Substring(try substitute(line, values: values, fail: fail)))
        }
        guard keeping.isEmpty else {
            throw Failure.migration("\(file): \(keeping.count) {{#if ...}} block(s) not closed with {{/if}}")
        }
        return output.joined(separator: "\n")
    }

    private static func substitute(
        _ line: Substring, values: TemplateValues, fail: (String) -> Failure
    ) throws(Failure) -> String {
        guard line.firstRange(of: "{{") != nil || line.firstRange(of: "}}") != nil else { return String(line) }
        var out = ""
        var rest = line[...]
        while let open = rest.firstRange(of: "{{") {
            out += rest[..<open.lowerBound]
            let after = rest[open.upperBound...]
            guard let close = after.firstRange(of: "}}") else { throw fail("'{{' without '}}'") }
            let name = String(after[..<close.lowerBound]).trimmingCharacters(in: " ")
            guard let value = values.values[name] else {
                throw fail("unknown template value {{\(name)}}; known: \(known(values))")
            }
            out += value.description
            rest = after[close.upperBound...]
        }
        guard rest.firstRange(of: "}}") == nil else { throw fail("'}}' without '{{'") }
        return out + rest
    }

    private static func known(_ values: TemplateValues) -> String {
        values.values.keys.sorted().joined(separator: ", ")
    }
}
