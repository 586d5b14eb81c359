import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Runs the revision chain on one database, as the database's owner (PGServer.ownerConnection:
/// the owner logs in itself, so nothing a tenant defined in its database ever runs with more
/// than the tenant's rights): each revision in its own transaction together with its state
/// change; a session advisory lock keeps two runners apart. The state tables are trusted only
/// when they are plain tables of the owner with no trigger, rule or row security.
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
    /// The database's owner, whom the connection is.
    public let owner: String
    private let db: PGConnection
    private let server: PGServer
    /// Progress lines (waiting for the lock, each revision as it commits).
    public var progress: (String) -> Void
    /// The server's notices during a revision ("<database>: <file>: NOTICE: ..."), such as
    /// pgvector's "ivfflat index created with little data" for 0003 on an empty table; by
    /// default they go to `progress`. PostgreSQL's "..., skipping" notices of IF [NOT] EXISTS
    /// are left out.
    public var notice: ((String) -> Void)?

    /// How long a lock (the migration lock, or one a tenant holds on its state tables) and a
    /// read of the state are waited for.
    public let lockTimeout: String

    /// On a connection already made as the database's owner (OwnerSessions), which the caller
    /// keeps: `connection` gives it back.
    public init(
        set: MigrationSet, database: String, server: PGServer, session: (PGConnection, owner: String),
        lockTimeout: String = PGServer.lockTimeout, progress: @escaping (String) -> Void = { _ in }
    ) throws {
        self.set = set
        self.database = database
        self.server = server
        self.lockTimeout = lockTimeout
        self.progress = progress
        (db, owner) = session
        db.collectNotices()
        try db.execute("SET client_min_messages TO notice; SET statement_timeout TO \(try db.literal(lockTimeout))")
    }

    /// The owner's connection this migrator works on.
    public var connection: PGConnection { db }

    /// `owner`: the database's owner as read already (PGServer.owners(of:)); `expected`: the owner
    /// the configuration names (logged in first, see PGServer.ownerConnection); neither: read it.
    public convenience init(
        set: MigrationSet, database: String, server: PGServer, credentials: Credentials,
        lockTimeout: String = PGServer.lockTimeout, owner: (name: String, superuser: Bool)? = nil,
        expected: String? = nil, progress: @escaping (String) -> Void = { _ in }
    ) throws {
        let session = try server.ownerConnection(
            database, credentials, lockTimeout: lockTimeout, knownOwner: owner, expected: expected)
        try self.init(
            set: set, database: database, server: server, session: session, lockTimeout: lockTimeout, progress: progress)
    }

    // MARK: state

    /// The state tables that exist must be plain tables of the owner, with no trigger, rule, row
    /// security or child table: then what they say is what was written. Otherwise an error names
    /// the object (the action is false; nothing is read from it or written to it). Returns the
    /// names of the state tables that exist (one query tells both).
    @discardableResult
    func checkStateTables() throws -> Set<String> {
        let rows = try db.query(
            """
            SELECT c.relname, c.relkind::text, pg_catalog.pg_get_userbyid(c.relowner), c.relrowsecurity,
                   (SELECT count(*) FROM pg_catalog.pg_trigger t WHERE t.tgrelid = c.oid),
                   (SELECT count(*) FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid),
                   (SELECT count(*) FROM pg_catalog.pg_inherits i WHERE i.inhparent = c.oid)
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = 'public' AND c.relname = ANY($1::text[]) ORDER BY 1
            """, ["{\(MigrationState.versionTable),\(MigrationState.historyTable)}"])
        var existing: Set<String> = []
        for (relname, relkind, relowner, rowSecurity, triggers, rules, children)
            in try rows.decode((String, String, String, Bool, Int, Int, Int).self)
        {
            existing.insert(relname)
            let name = "public.\(relname)"
            var problems: [String] = []
            let kinds = ["v": "a view", "m": "a materialized view", "p": "a partitioned table", "f": "a foreign table",
                         "S": "a sequence", "i": "an index", "c": "a composite type"]
            if relkind != "r" { problems.append("it is \(kinds[relkind] ?? "not a table (relkind \(relkind))")") }
            if relowner != owner { problems.append("it is owned by \(relowner), not the database's owner \(owner)") }
            if rowSecurity { problems.append("it has row level security") }
            if triggers != 0 { problems.append("it has \(triggers) trigger(s)") }
            if rules != 0 { problems.append("it has \(rules) rule(s)") }
            if children != 0 { problems.append("it has \(children) child table(s)") }
            guard problems.isEmpty else {
                throw Failure.migration(
                    "database \(database): \(name) is not a plain table of \(owner): \(problems.joined(separator: "; ")). "
                        + "The migration state is read and written only in plain tables of the database's owner, "
                        + "with no trigger, rule or row security; put the table right (ALTER TABLE ... OWNER TO "
                        + "\(owner), DROP TRIGGER/RULE, DISABLE ROW LEVEL SECURITY) or remove what took its place")
            }
        }
        return existing
    }

    /// The revision in alembic_version (nil: base).
    public func currentRevision() throws -> String? {
        try currentRevision(try checkStateTables())
    }

    /// The same, when the state tables were just checked (`existing`: those that exist).
    private func currentRevision(_ existing: Set<String>) throws -> String? {
        guard existing.contains(MigrationState.versionTable) else { return nil }
        // The tenant owns the table and may widen the column: the value is read only when it
        // can be a revision id (at most 32 characters, Alembic's column), its size told by the
        // server, never the value first.
        let rows = try db.query(
            """
            SELECT CASE WHEN pg_catalog.length(version_num::text) <= \(MigrationState.revisionLength)
                        THEN version_num::text END,
                   pg_catalog.octet_length(version_num::text)::text
            FROM ONLY public.alembic_version LIMIT 2
            """).decode((String?, String?).self)
        guard rows.count <= 1 else {
            throw Failure.migration(
                "database \(database): alembic_version holds more than one row (branches); hm-migrate follows one chain")
        }
        guard let (revision, bytes) = rows.first else { return nil }
        if revision == nil, let bytes {
            throw Failure.migration(
                "database \(database): alembic_version's version_num is \(bytes) bytes, longer than a revision id "
                    + "(at most \(MigrationState.revisionLength) characters); not read")
        }
        return revision
    }

    /// The history table holds at most `MigrationState.historyRows` rows for the suite to read
    /// it (one row per revision run: a host's whole life fits many times over); otherwise an
    /// error names the database and the table. The server counts, and stops past the bound.
    private func checkHistorySize() throws {
        let limit = MigrationState.historyRows
        let count = try db.query(
            "SELECT pg_catalog.count(*) FROM (SELECT FROM ONLY public.hearthminds_migration_history LIMIT $1::bigint) s",
            [String(limit + 1)]).scalar
        guard let count, let n = Int(count), n <= limit else {
            throw Failure.migration(
                "database \(database): public.hearthminds_migration_history holds more than \(limit) rows "
                    + "(one is added per revision run); not read")
        }
    }

    /// The position of the current revision in the chain (-1: base).
    private func currentPosition(_ existing: Set<String>? = nil) throws -> (id: String?, position: Int) {
        let current = try currentRevision(try existing ?? checkStateTables())
        guard let current else { return (nil, -1) }
        guard let index = set.revisions.firstIndex(where: { $0.id == current }) else {
            throw Failure.migration(
                "database \(database) is at revision '\(current)' (alembic_version), which \(set.directory) does not hold")
        }
        return (current, index)
    }

    /// The latest checksum recorded (up or stamp) for each revision.
    private func recordedChecksums(_ existing: Set<String>) throws -> [String: String?] {
        guard existing.contains(MigrationState.historyTable) else { return [:] }
        try checkHistorySize()
        // Computed by the server: only the chain's revisions, one row each (the latest up or
        // stamp), the checksum cut past its 64 characters (a longer one matches no file).
        let rows = try db.query("""
            SELECT h.revision::text, pg_catalog.left(h.checksum::text, 65)
            FROM ONLY public.hearthminds_migration_history h
            WHERE h.id IN (
                SELECT pg_catalog.max(l.id) FROM ONLY public.hearthminds_migration_history l
                WHERE pg_catalog.octet_length(l.revision::text) <= \(MigrationState.revisionLength)
                  AND l.revision::text = ANY($1::text[]) AND l.direction::text IN ('up', 'stamp')
                GROUP BY l.revision::text)
            LIMIT \(set.revisions.count)
            """, [PGArray.literal(set.revisions.map(\.id))]).decode((String?, String?).self)
        var out: [String: String?] = [:]
        for (revision, checksum) in rows { if let revision { out[revision] = checksum } }
        return out
    }

    /// Current revision, head, and which applied revisions' files changed.
    public func status() throws -> MigrationStatus {
        let existing = try checkStateTables()
        let (current, position) = try currentPosition(existing)
        let recorded = try recordedChecksums(existing)
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
        guard try checkStateTables().contains(MigrationState.historyTable) else { return [] }
        try checkHistorySize()
        // Each value bounded by the server (the tenant may widen the columns): a revision id
        // past its 32 characters, a direction or checksum past theirs, shows cut.
        let n = MigrationState.revisionLength
        return try db.query("""
            SELECT pg_catalog.left(revision::text, \(n + 1)), pg_catalog.left(direction::text, 16),
                   pg_catalog.left(checksum::text, 65),
                   pg_catalog.left(pg_catalog.to_char(applied_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), 64),
                   pg_catalog.left(ms::text, 32)
            FROM ONLY public.hearthminds_migration_history ORDER BY id LIMIT \(MigrationState.historyRows)
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
            throw Failure.migration(
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
                throw Failure.migration(
                    "database \(database) is at \(current ?? "base"), below \(selector); use `up --to \(selector)`")
            }
        } else {
            let count = steps ?? 1
            guard count >= 0 else { throw Failure.migration("--steps must be 0 or more") }
            guard count <= position + 1 else {
                throw Failure.migration(
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

    /// Holds the per-database advisory lock around `body`, waiting (and saying so) when another
    /// session has it, at most `lockTimeout`: only a session that is not ours can hold it
    /// that long (every executable takes the host lock), and no run waits forever.
    public func withLock<T>(_ body: () throws -> T) throws -> T {
        let key = String(MigrationState.lockKey)
        if try db.query("SELECT pg_catalog.pg_try_advisory_lock($1::bigint)", [key]).scalar != "t" {
            progress("\(database): waiting for another migration runner (advisory lock \(key))")
            let waited: Failure?
            do {
                try db.query("SELECT pg_catalog.pg_advisory_lock($1::bigint)", [key])
                waited = nil
            } catch {
                waited = error
            }
            if let waited {
                // 55P03: lock_timeout; 57014: statement_timeout.
                guard waited.sqlState == "55P03" || waited.sqlState == "57014" else { throw waited }
                throw Failure.migration(
                    "database \(database): another session has held the migration lock (advisory lock \(key)) for "
                        + "\(lockTimeout)\(try lockHolder()); not waiting longer")
            }
        }
        defer { _ = try? db.query("SELECT pg_catalog.pg_advisory_unlock($1::bigint)", [key]) }
        return try body()
    }

    /// ": pid N (user U)" of the session holding the migration lock, when it can be seen.
    private func lockHolder() throws -> String {
        let key = MigrationState.lockKey
        let holder = try db.query(
            """
            SELECT a.pid::text, a.usename FROM pg_catalog.pg_locks l
            JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
            WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid AND l.objid = $2::oid
              AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())
            LIMIT 1
            """, [String(key >> 32), String(key & 0xFFFF_FFFF)]).decodeFirst((String, String?).self)
        guard let (pid, user) = holder else { return "" }
        return ": pid \(pid) (user \(user ?? "?"))"
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

    /// What makes the state tables that are missing (`existing`: those there, as just checked).
    private func stateTableOps(_ existing: Set<String>? = nil) throws -> [String] {
        let existing = try existing ?? checkStateTables()
        var ops: [String] = []
        if !existing.contains(MigrationState.versionTable) { ops.append(MigrationState.createVersionTable) }
        if !existing.contains(MigrationState.historyTable) { ops.append(MigrationState.createHistoryTable) }
        return ops
    }

    private func versionChange(from: String?, to: String?) throws -> String {
        switch (from, to) {
        case (nil, nil): return "SELECT 1"
        case (nil, let to?): return "INSERT INTO public.alembic_version (version_num) VALUES (\(try db.literal(to)))"
        case (let from?, nil):
            return "DELETE FROM ONLY public.alembic_version WHERE version_num = \(try db.literal(from))"
        case (let from?, let to?):
            return "UPDATE ONLY public.alembic_version SET version_num = \(try db.literal(to)) "
                + "WHERE version_num = \(try db.literal(from))"
        }
    }

    private func historyInsert(_ revision: String, _ direction: String, _ checksum: String?, ms: Double) throws -> String {
        "INSERT INTO public.hearthminds_migration_history (revision, direction, checksum, ms) VALUES ("
            + "\(try db.literal(revision)), \(try db.literal(direction)), "
            + "\(try checksum.map { try db.literal($0) } ?? "NULL"), \(JSON.number(ms)))"
    }

    /// The extensions a move creates that the database does not have yet: a superuser creates
    /// them before the move's transaction (vector is not a trusted extension; the owner's own
    /// `CREATE EXTENSION IF NOT EXISTS` then passes).
    private func missingExtensions(_ move: Move) throws -> [String] {
        var missing: [String] = []
        for name in move.sql.statements.compactMap(\.extensionName) where !missing.contains(name) {
            if try db.query("SELECT count(*) FROM pg_catalog.pg_extension WHERE extname = $1", [name]).scalar == "0" {
                missing.append(name)
            }
        }
        return missing
    }

    /// What a superuser runs for a missing extension, in its own transaction (TenantExtensions:
    /// made in a schema of its own, then moved to public), as the script shows it.
    private func createExtension(_ name: String, _ admin: PGConnection) throws -> String {
        "BEGIN;\n" + (try TenantExtensions.statements(name, schema: TenantExtensions.schemaPrefix + "<random>", admin))
            .map { $0 + ";\n" }.joined() + "COMMIT"
    }

    private enum Op {
        case control(String)
        case statement(SQLStatement)
    }

    /// What opens a move's transaction: the revision runs with search_path public and no
    /// statement timeout.
    static let opening = ["SET LOCAL statement_timeout TO 0", "SET LOCAL search_path TO public"]

    /// The statements of one move, inside its transaction, as the owner, up to its version
    /// change: the revision with search_path public, the state change with the pinned path.
    /// A CREATE EXTENSION of an extension in `created` (made by the superuser just before) is
    /// left out.
    private func body(_ move: Move, created: Set<String>) throws -> [Op] {
        var ops: [Op] = Self.opening.map(Op.control)
        if let mb = set.buildMemoryMB {
            // Raised to what an IVFFlat build needs, never lowered below the server's own (a tuned
            // server's is larger, and 0008's HNSW rebuilds of a full table want it): SET LOCAL's
            // effect, only when the setting (in kB) is lower.
            ops.append(
                .control(
                    "SELECT pg_catalog.set_config('maintenance_work_mem', '\(mb)MB', true) FROM pg_catalog.pg_settings "
                        + "WHERE name = 'maintenance_work_mem' AND setting::bigint < \(mb * 1024)"))
        }
        for statement in move.sql.statements {
            if let name = statement.extensionName, created.contains(name) { continue }
            ops.append(.statement(statement))
        }
        ops += [.control("SET LOCAL search_path TO pg_catalog, pg_temp"), .control(try versionChange(from: move.from, to: move.to))]
        return ops
    }

    /// The SQL a plan would run, as a script (`--sql`): nothing is changed.
    public func script(_ plan: Plan) throws -> String {
        var out = "-- hm-migrate: database \(database), \(plan.from ?? "base") -> \(plan.to ?? "base"), "
            + "run as its owner \(owner)\n"
        if plan.moves.isEmpty { return out + "-- nothing to do\n" }
        // The state tables, when missing, are made in the first revision's transaction.
        var state = try stateTableOps()
        for move in plan.moves {
            out += "\n-- \(move.sql.file): \(move.from ?? "base") -> \(move.to ?? "base")\n"
            let missing = try missingExtensions(move)
            for name in missing {
                out += "-- as the superuser \(server.superuser), before the transaction:\n"
                    + "\(try createExtension(name, db));\n"
            }
            out += "BEGIN;\n" + state.map { $0 + ";\n" }.joined()
            state.removeAll()
            for op in try body(move, created: Set(missing)) {
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

    /// The missing state tables, made in one transaction sent as one script (one round trip).
    private func ensureStateTables() throws {
        let ops = try stateTableOps()
        guard !ops.isEmpty else { return }
        do {
            try db.execute("BEGIN;\n" + ops.joined(separator: ";\n") + ";\nCOMMIT")
        } catch {
            _ = try? db.execute("ROLLBACK")
            throw Failure.migration("database \(database): creating the state tables: \(error)")
        }
    }

    private func transaction(_ what: String, _ body: () throws -> Void) throws {
        try db.execute("BEGIN")
        do {
            try body()
            try db.execute("COMMIT")
        } catch {
            _ = try? db.execute("ROLLBACK")
            if Failure.isKind(error, .migration) { throw error }
            throw Failure.migration("database \(database): \(what): \(error)")
        }
    }

    /// Runs a plan: each move in one transaction with its state change. Call under `withLock`.
    /// The state tables, when missing, are made in the first move's transaction (one commit less
    /// per database; a first revision that fails leaves none behind).
    public func run(_ plan: Plan) throws -> [Done] {
        guard !plan.moves.isEmpty else { return [] }
        var stateOps = try stateTableOps(try checkStateTables())
        var done: [Done] = []
        for move in plan.moves {
            let started = Clock.nowMs()
            _ = db.takeNotices()  // what earlier statements said is not this move's
            let missing = try missingExtensions(move)
            if !missing.isEmpty {
                let admin = try server.admin(database)
                for name in missing {
                    do { try TenantExtensions.create(name, in: admin) } catch {
                        throw Failure.migration(
                            "database \(database): \(move.sql.file): creating extension \(name) as \(server.superuser): \(error)")
                    }
                }
            }
            // One round trip opens the transaction, one per statement of the revision, one
            // records it and commits: the control statements go together.
            let ops = try body(move, created: Set(missing))
            var pending = ["BEGIN"] + stateOps
            stateOps.removeAll()
            func flush() throws {
                guard !pending.isEmpty else { return }
                let sql = pending.joined(separator: ";\n")
                pending.removeAll()
                do { try db.execute(sql) } catch {
                    throw Failure.migration("database \(database): \(move.sql.file): \(sql.replacing("\n", with: " ")): \(error)")
                }
            }
            do {
                for op in ops {
                    switch op {
                    case .control(let sql):
                        pending.append(sql)
                    case .statement(let statement):
                        try flush()
                        do { try db.execute(statement.text) } catch {
                            throw Failure.migration(
                                "database \(database): \(move.sql.file) line \(statement.line) failed: "
                                    + "\(statement.brief())\n  \(error)\n  rolled back: the database stays at "
                                    + "\(move.from ?? "base")")
                        }
                    }
                }
                let ms = Clock.nowMs() - started
                pending.append(try historyInsert(move.revision.id, move.direction.rawValue, move.revision.checksum, ms: ms))
                pending.append("COMMIT")
                try flush()
            } catch {
                _ = try? db.execute("ROLLBACK")
                if Failure.isKind(error, .migration) { throw error }
                throw Failure.migration("database \(database): \(move.sql.file): \(error)")
            }
            for text in db.takeNotices() where !text.hasSuffix(", skipping") {
                (notice ?? progress)("\(database): \(move.sql.file): \(text)")
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
            try ensureStateTables()
            try transaction("stamp \(selector)") {
                let current = try currentRevision()
                let to = target < 0 ? nil : set.revisions[target].id
                try db.execute("DELETE FROM ONLY public.alembic_version")
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

