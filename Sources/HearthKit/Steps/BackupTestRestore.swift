import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// `hm-backup --test-restore`: a backup proven, not assumed. A restore point is made on the live
/// cluster between two counts of every database's memory tables; the newest backup and the WAL
/// after it are restored to that point into a throwaway cluster (ScratchCluster), which must
/// finish recovery, hold every database with its extensions, and count rows between the two live
/// counts (equal on a quiet host); then it is removed. The result is kept for verify (the last
/// proven restore) and in the log. A failed proof leaves the throwaway cluster for inspection
/// (the next run removes it first).
public enum BackupTestRestore {
    public static let tables = ["memory_shards", "raw_conversations", "eng_patterns"]
    public static let resultFileName = BackupFiles.testRestoreResultFileName

    /// The step of a context of these parts (tests).
    public static func make(_ config: HearthConfig, clientDirectory: String = ClientFiles.defaultDirectory) throws -> Step {
        try make(StepContext(config, clientDirectory: clientDirectory))
    }

    public static func make(_ context: StepContext) throws -> Step {
        let config = context.config
        guard let backup = config.backup else {
            throw Failure.configuration(key: "BACKUP", "is off: there is no backup to test")
        }
        let paths = ClusterPaths(config)
        let session = ClusterSession(paths)
        let tool = PgBackRest(backup)
        let (credentials, live) = (context.credentials, context.server)
        let aiDatabases = config.ais.map(\.database)
        let pointName = "hm-test-restore-\(Clock.newRunID())"
        let before = Box<[String: Int]>()
        let after = Box<[String: Int]>()
        let newest = Box<BackupInfo.Backup>()
        let scratch = Box<ScratchCluster>()
        let started = Clock.nowMs()

        func record(_ result: Bool, _ detail: String) {
            let text = "\(Int(time(nil))) \(result ? "true" : "false") \(newest.value?.label ?? "-") \(detail)\n"
            if let directory = try? OpenDirectory.open(tool.configPath) {
                try? directory.write(resultFileName, text, mode: 0o644, uid: 0, gid: 0)
            }
        }

        return Step(StepName.backup, [
            .assertion("the repository holds a backup of stanza \(backup.stanza)") {
                guard let found = try await tool.info(session.get()).newest else {
                    throw Failure.hostWrong("stanza \(backup.stanza) has no backup yet: run hm-backup first")
                }
                newest.value = found
                return true
            },
            .assertion("restore point made on the live cluster between two counts of the memory tables, and archived") {
                before.value = try counts(aiDatabases, live, credentials)
                _ = try session.get().query("SELECT pg_catalog.pg_create_restore_point($1)::text", [pointName])
                after.value = try counts(aiDatabases, live, credentials)
                // pgbackrest check switches to a new WAL file and waits until it is archived.
                try await tool.run(["check"], seconds: 600)
                return true
            },
            .assertion("the newest backup and its WAL restored to that point in a throwaway cluster") {
                let port = try backup.scratchPort ?? ScratchCluster.freePort(from: config.port + 1000)
                let cluster = ScratchCluster(tool: tool, pgVersion: config.pgVersion, port: port)
                scratch.value = cluster
                do {
                    try await cluster.restore(["--type=name", "--target=\(pointName)"])
                } catch {
                    record(false, "restore failed")
                    throw Failure.hostWrong("test restore of backup \(newest.value?.label ?? "?") failed: \(error)")
                }
                return true
            },
            .assertion("the restored cluster holds every database with its extensions, its rows as the live ones at that point") {
                guard let cluster = scratch.value, let low = before.value, let high = after.value else { return false }
                var problems: [String] = []
                let restored: [String: Int]
                do {
                    restored = try counts(aiDatabases, cluster.server, credentials)
                } catch {
                    record(false, "restored cluster unreadable")
                    throw Failure.hostWrong("backup \(newest.value?.label ?? "?"): the restored cluster cannot be read: \(error)")
                }
                for (key, count) in restored.sorted(by: { $0.key < $1.key }) {
                    let a = low[key] ?? -1
                    let b = high[key] ?? -1
                    if count < min(a, b) || count > max(a, b) {
                        problems.append("\(key): \(count) rows restored, \(a == b ? "\(a)" : "\(a)-\(b)") live")
                    }
                }
                for key in low.keys where restored[key] == nil { problems.append("\(key): missing in the restore") }
                guard problems.isEmpty else {
                    record(false, "rows differ")
                    throw Failure.hostWrong(
                        "backup \(newest.value?.label ?? "?") restored, but " + problems.prefix(10).joined(separator: "; "))
                }
                let total = restored.filter { !$0.key.contains(" extension ") }.values.reduce(0, +)
                record(true, "\(total) rows in \(Int((Clock.nowMs() - started) / 1000)) s")
                return true
            },
            BackupMetrics.action(config, backup) { try await tool.info(session.get()) },
            Action(
                "the throwaway cluster removed",
                check: { scratch.value.map { !FileSystem.exists($0.dataDirectory) } ?? true },
                apply: { try await scratch.value?.remove() }),
        ])
    }

    /// Rows of the memory tables of every database ("db.table" → rows), each counted as the
    /// database's owner (a tenant's view in a table's place runs with its own rights only).
    static func counts(_ databases: [String], _ server: PGServer, _ credentials: Credentials) throws -> [String: Int] {
        var result: [String: Int] = [:]
        for database in databases {
            let (connection, _) = try server.ownerConnection(database, credentials)
            let present = try connection.query(
                """
                SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                 WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND c.relname = ANY($1::text[]) ORDER BY 1
                """, [PGArray.literal(tables)]
            ).rows.compactMap { $0[0] }
            for name in try connection.query("SELECT extname FROM pg_catalog.pg_extension ORDER BY 1").rows.compactMap({ $0[0] }) {
                result["\(database) extension \(name)"] = 1
            }
            // No row security (a policy of the tenant's is its code: with it off, a policied table
            // is an error, not a count the policy chose) and a bound on each count.
            try connection.execute("SET row_security = off")
            try connection.execute("SET statement_timeout = '15min'")
            for table in present {
                let statement = "SELECT count(*) FROM public.\(try connection.identifier(table))"
                switch Result(catching: { () throws(Failure) -> String? in try connection.query(statement).scalar }) {
                case .success(let count):
                    result["\(database).\(table)"] = Int(count ?? "") ?? -1
                case .failure(let error):
                    // A table under a forced row security policy: not comparable by its owner; said, not failed.
                    guard error.sqlState == "42501" else { throw error }
                    result["\(database).\(table) (row security: not compared)"] = 0
                }
            }
        }
        return result
    }
}
