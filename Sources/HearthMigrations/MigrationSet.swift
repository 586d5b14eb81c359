import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// A revision's SQL for one direction, rendered and split into statements.
public struct RevisionSQL: Sendable {
    public let file: String
    public let text: String
    public let statements: [SQLStatement]
}

/// One revision: `<id>_<slug>.up.sql` and `<id>_<slug>.down.sql`.
public struct Revision: Sendable {
    public let id: String
    public let slug: String
    public let up: RevisionSQL
    public let down: RevisionSQL
    /// SHA-256 of the rendered up file, a NUL byte, and the rendered down file: an edit to
    /// either file, or a change of a templated value, changes it.
    public let checksum: String
}

/// The revision chain in a directory: revisions in ascending id order, each one's parent the
/// one before (ids need not be consecutive: the seed's chain is 0001, 0003, 0004, 0005, 0006).
public struct MigrationSet: Sendable {
    public let directory: String
    public let revisions: [Revision]
    /// maintenance_work_mem (MB) of each revision's transaction: what pgvector needs to build an
    /// IVFFlat index of PGVECTOR_IVFFLAT_LISTS lists on EMBEDDING_DIM dimensions over a full
    /// sample (0003 on a database that already holds rows, 0007's down), which it otherwise
    /// refuses ("memory required is 65 MB, maintenance_work_mem is 64 MB"); nil without those
    /// values. Not part of any checksum.
    public var buildMemoryMB: Int? = nil

    /// The newest revision's id; nil for an empty directory.
    public var head: String? { revisions.last?.id }

    /// The directory shipped beside the executables (`Migrations/` under the shipped root).
    public static func defaultDirectory(environment: [String: String] = currentEnvironment()) -> String? {
        ShippedFiles.root(environment: environment).map { $0 + "/Migrations" }
    }

    /// Loads and renders every revision with the configuration's templated values.
    public static func load(directory: String, config: HearthConfig) throws(Failure) -> MigrationSet {
        try load(directory: directory, values: TemplateValues(config))
    }

    public static func load(directory: String, values: TemplateValues) throws(Failure) -> MigrationSet {
        let names: [String]
        do { names = try FileSystem.list(directory) } catch {
            throw Failure.migration("cannot read the migrations directory \(directory): \(error)")
        }
        var ups: [String: String] = [:]  // "<id>_<slug>" -> file name
        var downs: [String: String] = [:]
        for name in names where name.hasSuffix(".sql") {
            let stem: String
            if name.hasSuffix(".up.sql") {
                stem = String(name.dropLast(7))
                ups[stem] = name
            } else if name.hasSuffix(".down.sql") {
                stem = String(name.dropLast(9))
                downs[stem] = name
            } else {
                throw Failure.migration("\(directory)/\(name): a revision file is named <id>_<slug>.up.sql or .down.sql")
            }
            guard parse(stem) != nil else {
                throw Failure.migration(
                    "\(directory)/\(name): a revision file is named <id>_<slug>.up.sql or .down.sql, "
                        + "id: 1 to 32 digits, slug: [a-z0-9_]")
            }
        }
        for stem in Set(ups.keys).symmetricDifference(downs.keys).sorted() {
            let missing = ups[stem] == nil ? "\(stem).up.sql" : "\(stem).down.sql"
            throw Failure.migration("\(directory)/\(missing) is missing: every revision has an up and a down file")
        }
        var revisions: [Revision] = []
        var seen: [String: String] = [:]
        for stem in ups.keys.sorted(by: { compareIDs(parse($0)!.id, parse($1)!.id) }) {
            let (id, slug) = parse(stem)!
            // "7" and "0007" are one number: ids are ordered, and so must be unique, by value.
            let number = String(id.drop(while: { $0 == "0" }))
            if let other = seen[number] {
                throw Failure.migration("\(directory): revision id \(id) is used twice (\(other), \(stem))")
            }
            seen[number] = stem
            let up = try renderFile(directory, ups[stem]!, values)
            let down = try renderFile(directory, downs[stem]!, values)
            revisions.append(
                Revision(id: id, slug: slug, up: up, down: down, checksum: SHA256.hex(up.text + "\u{0}" + down.text)))
        }
        var set = MigrationSet(directory: directory, revisions: revisions)
        if case .int(let lists) = values.values["PGVECTOR_IVFFLAT_LISTS"],
            case .int(let dimensions) = values.values["EMBEDDING_DIM"]
        {
            set.buildMemoryMB = VectorIndex.trainingMemoryMB(rows: 50 * lists, lists: lists, dimensions: dimensions)
        }
        return set
    }

    private static func renderFile(_ directory: String, _ name: String, _ values: TemplateValues) throws(Failure)
        -> RevisionSQL
    {
        let raw: String
        do { raw = try FileSystem.readText(directory + "/" + name) } catch { throw Failure.migration("\(directory)/\(name): \(error)") }
        let text = try MigrationTemplate.render(raw, values: values, file: name)
        let statements = SQLScript.split(text)
        if let bad = statements.first(where: \.isTransactionControl) {
            throw Failure.migration(
                "\(name) line \(bad.line): \(bad.brief(60)): a revision may not control the transaction; "
                    + "hm-migrate runs each revision in one")
        }
        return RevisionSQL(file: name, text: text, statements: statements)
    }

    /// "<digits>_<slug>" -> (id, slug).
    static func parse(_ stem: String) -> (id: String, slug: String)? {
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let id = stem[..<underscore]
        let slug = stem[stem.index(after: underscore)...]
        guard !id.isEmpty, id.count <= 32, id.allSatisfy(\.isASCIIDigitCharacter), !slug.isEmpty,
            slug.allSatisfy({ $0.isASCIIDigitCharacter || ("a"..."z").contains($0) || $0 == "_" })
        else { return nil }
        return (String(id), String(slug))
    }

    /// Numeric order of digit strings ("0010" after "0009", "10" after "9").
    static func compareIDs(_ a: String, _ b: String) -> Bool {
        let x = a.drop(while: { $0 == "0" })
        let y = b.drop(while: { $0 == "0" })
        if x.count != y.count { return x.count < y.count }
        if x != y { return x < y }
        return a < b
    }

    /// The position of a revision in the chain: -1 for `base`, the last for `head`.
    public func position(of selector: String) throws(Failure) -> Int {
        if selector == "base" { return -1 }
        if selector == "head" {
            guard !revisions.isEmpty else { throw Failure.migration("\(directory) holds no revisions") }
            return revisions.count - 1
        }
        guard let index = revisions.firstIndex(where: { $0.id == selector }) else {
            let known = revisions.map(\.id).joined(separator: ", ")
            throw Failure.migration("no revision '\(selector)' in \(directory) (revisions: \(known.isEmpty ? "none" : known); or base, head)")
        }
        return index
    }

    public func revision(_ id: String) -> Revision? { revisions.first { $0.id == id } }

    /// Makes `<next id>_<slug>.up.sql` and `.down.sql`, empty but for a header comment, and
    /// returns their paths. The next id is the highest plus one, as wide as the widest (4).
    public static func newRevision(directory: String, message: String) throws(Failure) -> [String] {
        var slug = ""
        for scalar in message.lowercased().unicodeScalars {
            if ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) {
                slug.unicodeScalars.append(scalar)
            } else if !slug.isEmpty && !slug.hasSuffix("_") {
                slug += "_"
            }
        }
        while slug.hasSuffix("_") { slug.removeLast() }
        slug = String(slug.prefix(48))
        while slug.hasSuffix("_") { slug.removeLast() }
        guard !slug.isEmpty else { throw Failure.migration("the message must hold a letter or a digit (it names the files)") }
        let names: [String]
        do { names = try FileSystem.list(directory) } catch { throw Failure.migration("cannot read \(directory): \(error)") }
        let ids = names.compactMap { name -> String? in
            guard name.hasSuffix(".sql"), let underscore = name.firstIndex(of: "_") else { return nil }
            let id = name[..<underscore]
            return id.allSatisfy(\.isASCIIDigitCharacter) && !id.isEmpty ? String(id) : nil
        }
        let width = max(4, ids.map(\.count).max() ?? 4)
        let next = (ids.compactMap { Int($0) }.max() ?? 0) + 1
        var id = String(next)
        while id.count < width { id = "0" + id }
        var paths: [String] = []
        for (suffix, what) in [("up", "apply"), ("down", "undo")] {
            let path = "\(directory)/\(id)_\(slug).\(suffix).sql"
            guard !FileSystem.exists(path) else { throw Failure.migration("\(path) exists already") }
            let body = """
                -- \(id) \(suffix): \(message.split(whereSeparator: \.isNewline).joined(separator: " "))
                -- SQL to \(what) this revision. hm-migrate runs it in one transaction as the
                -- database's owner. Templated values (EMBEDDING_DIM, PGVECTOR_IVFFLAT_LISTS,
                -- PGVECTOR_ENABLE_IVFFLAT, PGVECTOR_HNSW, PGVECTOR_HNSW_M,
                -- PGVECTOR_HNSW_EF_CONSTRUCTION) are described in Migrations/README.md.

                """
            do { try FileSystem.writeAtomically(path, body, mode: 0o644) } catch { throw Failure.migration("\(path): \(error)") }
            paths.append(path)
        }
        return paths
    }
}

