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

/// `hm-restore --database DB [--to TIME]`: one AI's database rolled back (or brought to the
/// archive's end) while every other database goes on. The backup is restored into a throwaway
/// cluster with only DB (pgBackRest's --db-include), DB is dumped from there (pg_dump, as that
/// cluster's superuser: pg_dump reads catalogs and data, it runs no tenant code) into a
/// directory of root's, then restored into a new database of the live cluster **as DB's owner
/// itself** (pg_restore logged in with the owner's password: whatever the tenant's objects do,
/// they do with its rights only), and swapped in: the live DB is renamed aside
/// (`DB_before_restore_<time>`, never dropped), the new one takes its name. The databases,
/// migrations and vector-index steps then run in the same command: the marks, grants, revision
/// and index the suite expects.
public enum DatabaseRestore {
    static let suffix = "_hm_restore"
    /// A courtesy for a reader of the catalog only: which database is ours is the marker's to say.
    static func progressMark(_ database: String) -> String { "HearthMinds bootstrap: restore of \(database) in progress" }

    public static func make(
        _ config: HearthConfig, database: String, to target: String?, clientDirectory: String = ClientFiles.defaultDirectory,
        migrations: String? = MigrationSet.defaultDirectory()
    ) throws -> Step {
        guard let backup = config.backup else {
            throw Failure.configuration(key: "BACKUP", "is off: hm-restore restores from the backup repository (BACKUP=on)")
        }
        guard let ai = config.ais.first(where: { $0.database == database }) else {
            throw Failure.configuration(
                key: "--database", "'\(database)' is not an AI's database (\(config.ais.map(\.database).joined(separator: ", ")))")
        }
        let tool = PgBackRest(backup)
        // (one context for the restore and the three steps after it: the same server, passwords
        // and connections)
        let context = StepContext(config, clientDirectory: clientDirectory, migrations: migrations)
        let (live, book) = (context.server, context.passwords)
        let staging = database + suffix
        let scratch = Box<ScratchCluster>()
        let dumpDirectory = workDirectory(backup)
        let dumpFile = dumpDirectory + "/\(database).dump"
        let swapped = Box<String>()
        let what = target.map { "to \($0)" } ?? "to the newest state in the archive"

        var parts: [Step.Part] = (BackupStep.preparation(backup, files: BackupStep.files(config, backup)) + [
            .assertion("the AI \(ai.name) has its password on this host (its restore runs logged in as itself)") {
                _ = try book.password(ai.name)
                return true
            },
            Action(
                "\(database) \(what) restored alone into a throwaway cluster and dumped",
                check: { false },
                apply: {
                    let port = try backup.scratchPort ?? ScratchCluster.freePort(from: config.port + 1000)
                    let cluster = ScratchCluster(tool: tool, pgVersion: config.pgVersion, port: port)
                    scratch.value = cluster
                    var options = ["--db-include=\(database)"]
                    if let target { options += ["--type=time", "--target=\(target)"] }
                    try await cluster.restore(options)
                    // Root's own directory, in a root-only parent: no other account can plant
                    // anything where pg_dump (as root) writes.
                    let top = try OpenDirectory.makePath(workRoot, mode: 0o700)
                    if try top.entry(backup.stanza) != nil { try top.removeTree(backup.stanza, owner: 0) }
                    _ = try top.makeDirectory(backup.stanza, mode: 0o700, uid: 0, gid: 0)
                    // As root, logged in as the throwaway cluster's postgres (its ident map): the
                    // dump is written where only root writes.
                    try await Command.check(
                        [
                            "/usr/lib/postgresql/\(config.pgVersion)/bin/pg_dump", "--format=custom", "--no-owner",
                            "--host=\(cluster.socketDirectory)", "--port=\(port)", "--username=postgres",
                            "--dbname=\(database)", "--file=\(dumpFile)",
                        ], timeout: 86_400)
                    try await cluster.stop()
                    try await cluster.remove()
                },
                verify: { try OpenDirectory.open(dumpDirectory).entry("\(database).dump")?.kind == .file }),
            Action(
                "\(database) replaced by its restored copy, restored as \(ai.name) itself (the live one kept aside)",
                check: { false },
                apply: {
                    let admin = try live.admin()
                    let staged = try admin.identifier(staging)
                    let current = try admin.identifier(database)
                    let markers = try OpenDirectory.open(tool.configPath)
                    let markerName = "restore-\(database)"
                    func exists(_ name: String) throws -> Bool {
                        try admin.query("SELECT 1 FROM pg_catalog.pg_database WHERE datname = $1", [name]).rows.first != nil
                    }
                    func close(_ name: String) throws {
                        let quoted = try admin.identifier(name)
                        try admin.execute("ALTER DATABASE \(quoted) ALLOW_CONNECTIONS false")
                        _ = try admin.query(
                            "SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity WHERE datname = $1", [name])
                    }
                    func record(_ oid: String, _ aside: String?) throws {
                        try markers.write(markerName, "staging-oid \(oid)\n" + (aside.map { "aside \($0)\n" } ?? ""), mode: 0o600, uid: 0, gid: 0)
                    }
                    // What an interrupted run left, as its marker (root's, never a comment a tenant can
                    // write) says: the staging database by its oid, dropped wherever it is; the
                    // database it replaced put back under its name.
                    if let text = try markers.textIfFile(markerName) {
                        let fields = Dictionary(
                            text.split(separator: "\n").compactMap { line -> (String, String)? in
                                let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
                                return parts.count == 2 ? (parts[0], parts[1]) : nil
                            }, uniquingKeysWith: { $1 })
                        if let oid = fields["staging-oid"],
                            let name = try admin.query(
                                "SELECT datname FROM pg_catalog.pg_database WHERE oid = $1::oid", [oid]
                            ).rows.first?[0] ?? nil
                        {
                            try close(name)
                            try admin.execute("DROP DATABASE \(try admin.identifier(name)) WITH (FORCE)")
                        }
                        if let aside = fields["aside"], try exists(aside), try !exists(database) {
                            try admin.execute("ALTER DATABASE \(try admin.identifier(aside)) RENAME TO \(current)")
                            try admin.execute("ALTER DATABASE \(current) ALLOW_CONNECTIONS true")
                        }
                        try markers.remove(markerName)
                    }
                    if try exists(staging) {
                        throw Failure.hostWrong("database \(staging) exists and is not a restore of ours (no marker names it): move it away first")
                    }
                    guard try exists(database) else {
                        throw Failure.hostWrong("there is no database \(database) to replace (hm-restore restores into an existing AI's database)")
                    }
                    try admin.execute(
                        "CREATE DATABASE \(staged) OWNER \(try admin.identifier(ai.name)) ENCODING 'UTF8' TEMPLATE template0")
                    let oid = try admin.query("SELECT oid::text FROM pg_catalog.pg_database WHERE datname = $1", [staging]).scalar ?? ""
                    try record(oid, nil)
                    try admin.execute("REVOKE ALL ON DATABASE \(staged) FROM PUBLIC")
                    try admin.execute("COMMENT ON DATABASE \(staged) IS \(try admin.literal(progressMark(database)))")
                    // The suite's extensions first, as the databases step makes them (the owner could not).
                    do {
                        let inStaging = try live.admin(staging)
                        for name in config.extensions {
                            try TenantExtensions.create(name, in: inStaging, as: config.hearthmindsUser)
                        }
                    }  // (its session closed: a database in use cannot be renamed)
                    // The swap: the live database closed, its sessions ended, renamed aside; the new
                    // one takes its name (the AI's pg_hba.conf lines name its database), and the
                    // owner restores into it in one transaction: its sessions see no table until
                    // the whole restore commits.
                    let aside = database + "_before_restore_" + Clock.timestamp().filter { $0.isNumber }.prefix(14)
                    let asideName = try admin.identifier(String(aside))
                    try record(oid, String(aside))
                    do {
                        try close(database)
                        try admin.execute("ALTER DATABASE \(current) RENAME TO \(asideName)")
                        try admin.execute("ALTER DATABASE \(staged) RENAME TO \(current)")
                        try await restoreAsOwner(config, ai: ai, password: try book.password(ai.name), database: database)
                    } catch {
                        // Back as it was: the restore's database (by its oid) dropped, the live one put back.
                        if let name = try? admin.query("SELECT datname FROM pg_catalog.pg_database WHERE oid = $1::oid", [oid]).rows.first?[0] ?? nil {
                            try? close(name)
                            try? admin.execute("DROP DATABASE \(try admin.identifier(name)) WITH (FORCE)")
                        }
                        if (try? exists(String(aside))) == true, (try? exists(database)) == false {
                            try? admin.execute("ALTER DATABASE \(asideName) RENAME TO \(current)")
                        }
                        try? admin.execute("ALTER DATABASE \(current) ALLOW_CONNECTIONS true")
                        try? markers.remove(markerName)
                        throw error
                    }
                    try admin.execute("COMMENT ON DATABASE \(current) IS NULL")
                    try markers.remove(markerName)
                    swapped.value = "the database it replaced is \(aside) (closed to connections; drop it once \(database) is right)"
                    try OpenDirectory.open(workRoot).removeTree(backup.stanza, owner: 0)
                },
                verify: { swapped.value != nil },
                note: { swapped.value ?? "" }),
        ]).map(Step.Part.action)
        // The marks, grants, revision and index of the suite, on the restored database.
        parts += DatabasesStep.make(context).parts
        parts += MigrationsStep.make(context, notice: { _ in }).parts
        parts += VectorIndexStep.make(context).parts
        return Step(ClusterRestore.name, parts: parts)
    }

    /// Where one AI's dump is kept while it is restored: root's, in a root-only parent.
    public static let workRoot = "/var/lib/hearthminds/restore"
    static func workDirectory(_ backup: BackupConfig) -> String { workRoot + "/" + backup.stanza }

    /// The entries of pg_restore's list to leave out: the suite's own extensions (made already,
    /// as the databases step makes them) and their comments, by the entry's type and name — the
    /// fields after "ID; OID OID " — never by a substring a tenant's object name could hold.
    /// A tenant's own (trusted) extension stays: the owner creates it.
    public static func filteredList(_ listing: String, extensions: [String]) -> String {
        listing.split(separator: "\n", omittingEmptySubsequences: false).filter { line in
            let parts = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            // "3; 3079 16385 EXTENSION - vector " / "4; 0 0 COMMENT - EXTENSION vector "
            guard parts.count >= 6, parts[0].hasSuffix(";"), parts[0].dropLast().allSatisfy(\.isNumber) else { return true }
            if parts[3] == "EXTENSION" && parts[4] == "-" && extensions.contains(parts[5]) { return false }
            if parts[3] == "COMMENT" && parts[4] == "-" && parts.count >= 7 && parts[5] == "EXTENSION"
                && extensions.contains(parts[6])
            {
                return false
            }
            return true
        }.joined(separator: "\n")
    }

    /// pg_restore into `database` logged in as the AI itself over TCP (its password in a passfile
    /// of root's, 0600, never in the arguments or the environment), the extension entries left
    /// out (made already), in one transaction: all or nothing.
    static func restoreAsOwner(_ config: HearthConfig, ai: HearthConfig.AI, password: Secret, database: String) async throws {
        let directory = workDirectory(config.backup!)
        let bin = "/usr/lib/postgresql/\(config.pgVersion)/bin"
        let dump = directory + "/\(ai.database).dump"
        let listing = try await Command.check([bin + "/pg_restore", "--list", dump], timeout: 600)
        let kept = filteredList(listing, extensions: config.extensions)
        let open = try OpenDirectory.open(directory)
        try open.write("restore.list", kept + "\n", mode: 0o600, uid: 0, gid: 0)
        let host = config.host == "localhost" ? "127.0.0.1" : config.host
        let escaped = password.reveal.replacing("\\", with: "\\\\").replacing(":", with: "\\:")
        try open.write("pgpass", "\(host):\(config.port):\(database):\(ai.name):\(escaped)\n", mode: 0o600, uid: 0, gid: 0)
        defer { try? open.remove("pgpass") }
        try await Command.check(
            [
                bin + "/pg_restore", "--no-owner", "--exit-on-error", "--single-transaction", "--use-list=\(directory)/restore.list",
                "--host=\(host)", "--port=\(config.port)", "--username=\(ai.name)", "--dbname=\(database)", "--no-password", dump,
            ], environment: ["PGPASSFILE": directory + "/pgpass", "PGSSLMODE": "prefer"], timeout: 86_400)
    }
}
