/// Runs the revision chain on one database over one connection, made as a superuser (the
/// admin, by peer authentication): each revision in its own transaction, as the database's
/// owner, together with its state change; a session advisory lock keeps two runners apart.
public final class Migrator {
    public enum Direction: String, Sendable {
        case up, down
    }

    /// One revision to run, and the revision the database is at after it.
    public struct Move: Sendable {
        public let revision: Revision
        public let direction: Direction
        public let from: String?
        public let to: String?

        public var sql: RevisionSQL { direction == .up ? revision.up : revision.down }
    }

    /// What `up` or `down` would do: from the current revision to a target, in order.
    public struct Plan: Sendable {
        public let from: String?
        public let to: String?
        public let moves: [Move]
    }

    /// A move that ran, with its time.
    public struct Done: Sendable {
        public let move: Move
        public let ms: Double
    }

    public let set: MigrationSet
    public let database: String
    private let db: PGConnection
    /// Progress lines (waiting for the lock, each revision as it commits).
    public var progress: (String) -> Void

    public init(set: MigrationSet, target: PGTarget, progress: @escaping (String) -> Void = { _ in }) throws {
        self.set = set
        self.database = target.database
        self.progress = progress
        db = try PGConnection(target)
        try db.execute("SET client_min_messages TO warning")
    }

    // MARK: state

    private func tableExists(_ name: String) throws -> Bool {
        try db.query("SELECT to_regclass($1) IS NOT NULL", ["public." + name]).scalar == "t"
    }

    /// The revision in alembic_version (nil: base).
    public func currentRevision() throws -> String? {
        guard try tableExists(MigrationState.versionTable) else { return nil }
        let rows = try db.query("SELECT version_num FROM public.alembic_version").rows
        guard rows.count <= 1 else {
            throw MigrationError(
                "database \(database): alembic_version holds \(rows.count) rows (branches); hm-migrate follows one chain")
        }
        return rows.first?[0] ?? nil
    }

    /// The position of the current revision in the chain (-1: base).
    private func currentPosition() throws -> (id: String?, position: Int) {
        let current = try currentRevision()
        guard let current else { return (nil, -1) }
        guard let index = set.revisions.firstIndex(where: { $0.id == current }) else {
            throw MigrationError(
                "database \(database) is at revision '\(current)' (alembic_version), which \(set.directory) does not hold")
        }
        return (current, index)
    }

    /// The database's owner, whom revisions run as.
    public func owner() throws -> String {
        guard let owner = try db.query(
            "SELECT pg_catalog.pg_get_userbyid(datdba) FROM pg_catalog.pg_database WHERE datname = current_database()"
        ).scalar else { throw MigrationError("database \(database): no owner found") }
        return owner
    }

    /// The latest checksum recorded (up or stamp) for each revision.
    private func recordedChecksums() throws -> [String: String?] {
        guard try tableExists(MigrationState.historyTable) else { return [:] }
        let rows = try db.query("""
            SELECT DISTINCT ON (revision) revision, checksum FROM public.hearthminds_migration_history
            WHERE direction IN ('up', 'stamp') ORDER BY revision, id DESC
            """).rows
        var out: [String: String?] = [:]
        for row in rows { if let revision = row[0] { out[revision] = row[1] } }
        return out
    }

    /// Current revision, head, and which applied revisions' files changed.
    public func status() throws -> MigrationStatus {
        let (current, position) = try currentPosition()
        let recorded = try recordedChecksums()
        var changed: [String] = []
        var unrecorded: [String] = []
        for revision in set.revisions.prefix(position + 1) {
            switch recorded[revision.id] {
            case .some(.some(let checksum)):
                if checksum != revision.checksum { changed.append(revision.id) }
            default:
                unrecorded.append(revision.id)
            }
        }
        return MigrationStatus(
            database: database, current: current, head: set.head, changed: changed, unrecorded: unrecorded)
    }

    /// The recorded history, oldest first.
    public func history() throws -> [MigrationHistoryRow] {
        guard try tableExists(MigrationState.historyTable) else { return [] }
        return try db.query("""
            SELECT revision, direction, checksum, to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), ms
            FROM public.hearthminds_migration_history ORDER BY id
            """).rows.map {
            MigrationHistoryRow(
                revision: $0[0] ?? "", direction: $0[1] ?? "", checksum: $0[2], appliedAt: $0[3] ?? "",
                ms: Double($0[4] ?? "") ?? 0)
        }
    }

    // MARK: plans

    /// From the current revision up to `selector` (head by default).
    public func planUp(to selector: String = "head") throws -> Plan {
        let (current, position) = try currentPosition()
        let target = try set.position(of: selector)
        guard target >= position else {
            throw MigrationError(
                "database \(database) is at \(current ?? "base"), above \(selector); use `down --to \(selector)`")
        }
        var moves: [Move] = []
        var from = current
        for index in (position + 1)..<(target + 1) {
            let revision = set.revisions[index]
            moves.append(Move(revision: revision, direction: .up, from: from, to: revision.id))
            from = revision.id
        }
        return Plan(from: current, to: target < 0 ? nil : set.revisions[target].id, moves: moves)
    }

    /// From the current revision down to `selector` (base: nothing applied), or `steps` revisions down.
    public func planDown(to selector: String? = nil, steps: Int? = nil) throws -> Plan {
        let (current, position) = try currentPosition()
        let target: Int
        if let selector {
            target = try set.position(of: selector)
            guard target <= position else {
                throw MigrationError(
                    "database \(database) is at \(current ?? "base"), below \(selector); use `up --to \(selector)`")
            }
        } else {
            let count = steps ?? 1
            guard count >= 0 else { throw MigrationError("--steps must be 0 or more") }
            guard count <= position + 1 else {
                throw MigrationError(
                    "database \(database) is at \(current ?? "base"), only \(position + 1) revision(s) above base")
            }
            target = position - count
        }
        var moves: [Move] = []
        var index = position
        while index > target {
            let revision = set.revisions[index]
            let below = index > 0 ? set.revisions[index - 1].id : nil
            moves.append(Move(revision: revision, direction: .down, from: revision.id, to: below))
            index -= 1
        }
        return Plan(from: current, to: target < 0 ? nil : set.revisions[target].id, moves: moves)
    }

    // MARK: running

    /// Holds the per-database advisory lock around `body` (waiting, and saying so, when
    /// another runner has it).
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        let key = String(MigrationState.lockKey)
        if try db.query("SELECT pg_try_advisory_lock($1::bigint)", [key]).scalar != "t" {
            progress("\(database): waiting for another migration runner (advisory lock \(key))")
            try db.query("SELECT pg_advisory_lock($1::bigint)", [key])
        }
        defer { _ = try? db.query("SELECT pg_advisory_unlock($1::bigint)", [key]) }
        return try body()
    }

    /// Runs up to `selector` under the lock (the plan is made once the lock is held).
    @discardableResult
    public func upgrade(to selector: String = "head") throws -> [Done] {
        try withLock { try run(try planUp(to: selector)) }
    }

    @discardableResult
    public func downgrade(to selector: String? = nil, steps: Int? = nil) throws -> [Done] {
        try withLock { try run(try planDown(to: selector, steps: steps)) }
    }

    private enum Op {
        case control(String)
        case statement(SQLStatement)
    }

    private func stateTableOps() throws -> [String] {
        var ops: [String] = []
        if try !tableExists(MigrationState.versionTable) { ops.append(MigrationState.createVersionTable) }
        if try !tableExists(MigrationState.historyTable) { ops.append(MigrationState.createHistoryTable) }
        return ops
    }

    private func versionChange(from: String?, to: String?) throws -> String {
        switch (from, to) {
        case (nil, nil): return "SELECT 1"
        case (nil, let to?): return "INSERT INTO public.alembic_version (version_num) VALUES (\(try db.literal(to)))"
        case (let from?, nil):
            return "DELETE FROM public.alembic_version WHERE version_num = \(try db.literal(from))"
        case (let from?, let to?):
            return "UPDATE public.alembic_version SET version_num = \(try db.literal(to)) "
                + "WHERE version_num = \(try db.literal(from))"
        }
    }

    private func historyInsert(_ revision: String, _ direction: String, _ checksum: String?, ms: Double) throws -> String {
        "INSERT INTO public.hearthminds_migration_history (revision, direction, checksum, ms) VALUES ("
            + "\(try db.literal(revision)), \(try db.literal(direction)), "
            + "\(try checksum.map { try db.literal($0) } ?? "NULL"), \(JSON.number(ms)))"
    }

    /// The statements of one move, inside its transaction, up to its version change.
    private func body(_ move: Move, owner: String) throws -> [Op] {
        let role = try db.identifier(owner)
        var ops: [Op] = [.control("SET LOCAL search_path TO public"), .control("SET LOCAL ROLE \(role)")]
        for statement in move.sql.statements {
            if statement.isCreateExtension {
                // vector is not a trusted extension: a superuser creates it (when it exists
                // already, IF NOT EXISTS would pass for the owner too).
                ops += [.control("SET LOCAL ROLE NONE"), .statement(statement), .control("SET LOCAL ROLE \(role)")]
            } else {
                ops.append(.statement(statement))
            }
        }
        // The state tables may be Alembic's, owned by whoever ran it: write them as superuser.
        ops += [.control("SET LOCAL ROLE NONE"), .control(try versionChange(from: move.from, to: move.to))]
        return ops
    }

    /// The SQL a plan would run, as a script (`--sql`): nothing is changed.
    public func script(_ plan: Plan) throws -> String {
        let owner = try owner()
        var out = "-- hm-migrate: database \(database), \(plan.from ?? "base") -> \(plan.to ?? "base"), "
            + "revisions run as \(owner)\n"
        if plan.moves.isEmpty { return out + "-- nothing to do\n" }
        let state = try stateTableOps()
        if !state.isEmpty {
            out += "\nBEGIN;\nSET LOCAL ROLE \(try db.identifier(owner));\n"
                + state.map { $0 + ";\n" }.joined() + "COMMIT;\n"
        }
        for move in plan.moves {
            out += "\n-- \(move.sql.file): \(move.from ?? "base") -> \(move.to ?? "base")\nBEGIN;\n"
            for op in try body(move, owner: owner) {
                switch op {
                case .control(let sql): out += sql + ";\n"
                case .statement(let statement): out += statement.text + ";\n"
                }
            }
            out += try historyInsert(move.revision.id, move.direction.rawValue, move.revision.checksum, ms: 0) + ";\n"
            out += "COMMIT;\n"
        }
        return out
    }

    private func ensureStateTables(owner: String) throws {
        let ops = try stateTableOps()
        guard !ops.isEmpty else { return }
        try transaction("creating the state tables") {
            try db.execute("SET LOCAL ROLE \(try db.identifier(owner))")
            for sql in ops { try db.execute(sql) }
        }
    }

    private func transaction(_ what: String, _ body: () throws -> Void) throws {
        try db.execute("BEGIN")
        do {
            try body()
            try db.execute("COMMIT")
        } catch {
            _ = try? db.execute("ROLLBACK")
            if error is MigrationError { throw error }
            throw MigrationError("database \(database): \(what): \(error)")
        }
    }

    /// Runs a plan: each move in one transaction with its state change. Call under `withLock`.
    public func run(_ plan: Plan) throws -> [Done] {
        guard !plan.moves.isEmpty else { return [] }
        let owner = try owner()
        try ensureStateTables(owner: owner)
        var done: [Done] = []
        for move in plan.moves {
            let started = Clock.nowMs()
            try transaction("\(move.sql.file)") {
                for op in try body(move, owner: owner) {
                    switch op {
                    case .control(let sql):
                        do { try db.execute(sql) } catch {
                            throw MigrationError("database \(database): \(move.sql.file): \(sql): \(error)")
                        }
                    case .statement(let statement):
                        do { try db.execute(statement.text) } catch {
                            throw MigrationError(
                                "database \(database): \(move.sql.file) line \(statement.line) failed: "
                                    + "\(statement.brief())\n  \(error)\n  rolled back: the database stays at "
                                    + "\(move.from ?? "base")")
                        }
                    }
                }
                let ms = Clock.nowMs() - started
                try db.execute(try historyInsert(move.revision.id, move.direction.rawValue, move.revision.checksum, ms: ms))
            }
            let ms = Clock.nowMs() - started
            done.append(Done(move: move, ms: ms))
            progress("\(database): \(move.direction == .up ? "applied" : "undid") \(move.sql.file) "
                + "(\(move.from ?? "base") -> \(move.to ?? "base"), \(JSON.number(ms)) ms)")
        }
        return done
    }

    /// Records `selector` as the current revision without running anything (the seed's
    /// "tables exist, no state" case: `stamp 0001`, then `up`). Each revision at or below it
    /// gets a `stamp` history row with the checksum of its files now.
    public func stamp(_ selector: String) throws {
        let target = try set.position(of: selector)
        try withLock {
            let owner = try owner()
            try ensureStateTables(owner: owner)
            try transaction("stamp \(selector)") {
                let current = try currentRevision()
                let to = target < 0 ? nil : set.revisions[target].id
                try db.execute("DELETE FROM public.alembic_version")
                if let to { try db.execute(try versionChange(from: nil, to: to)) }
                if target < 0 {
                    try db.execute(try historyInsert("base", "stamp", nil, ms: 0))
                }
                for revision in set.revisions.prefix(target + 1) {
                    try db.execute(try historyInsert(revision.id, "stamp", revision.checksum, ms: 0))
                }
                progress("\(database): stamped \(to ?? "base") (was \(current ?? "base")); nothing ran")
            }
        }
    }
}

/// Which databases the runner works on and how it reaches them.
