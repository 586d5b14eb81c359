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

/// `pg-hba`: the cluster's whole pg_hba.conf and pg_ident.conf, rendered from our templates
/// and the configuration (see HbaRenderer) and marked as managed: peer for local system
/// accounts (postgres and root as the admin roles through a pg_ident map, the service user to
/// HEARTHMINDS_DB), scram-sha-256 for password roles; no trust, no md5. Then the server has
/// loaded them, and `pg_hba_file_rules` shows no error and no other method.
public enum PgHbaStep {
    public static let name = StepName.pgHba
    public static let fileMode: UInt32 = 0o640

    /// The step with the shipped templates.
    public static func make(_ config: HearthConfig) throws -> Step {
        try make(config, templates: HbaRenderer.Templates.shipped())
    }

    public static func make(_ config: HearthConfig, templates: HbaRenderer.Templates) throws -> Step {
        let paths = ClusterPaths(config)
        let files = try HbaRenderer.render(templates, config)
        let session = ClusterSession(paths)

        /// A file of the cluster's configuration directory, read and written through the
        /// directory's handle: no-follow reads, writes through an unpredictable temporary name
        /// (the directory is the postgres account's).
        func fileAction(_ label: String, _ path: String, _ file: String, _ text: String) -> Action {
            Action(
                "\(path): \(label)",
                check: {
                    let directory = try paths.openConfigDirectory()
                    guard let status = try directory.entry(file), status.kind == .file else { return false }
                    let owner = directory.status
                    return try directory.holds(file, text) && status.mode == fileMode && status.uid == owner.uid
                        && status.gid == owner.gid
                },
                apply: {
                    let directory = try paths.openConfigDirectory()
                    let owner = directory.status
                    try directory.write(file, text, mode: fileMode, uid: owner.uid, gid: owner.gid)
                },
                preview: {
                    let directory = try paths.openConfigDirectory()
                    return try DryRunPreview.file(
                        path, in: directory, file, text: text, mode: fileMode, uid: directory.status.uid,
                        gid: directory.status.gid)
                })
        }

        return Step(name, [
            .assertion("cluster \(paths.id) is running and reads \(paths.hbaFile)") {
                let connection = try session.get()
                let rows = try connection.query(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('hba_file', 'ident_file') ORDER BY name"
                ).rows
                let used = Dictionary(uniqueKeysWithValues: rows.map { ($0[0] ?? "", $0[1] ?? "") })
                for (setting, path) in [("hba_file", paths.hbaFile), ("ident_file", paths.identFile)]
                where used[setting] != path {
                    throw Failure.hostWrong(
                        "cluster \(paths.id) has \(setting) = '\(used[setting] ?? "")', not \(path); remove that "
                            + "setting so the cluster uses the files in its configuration directory")
                }
                return true
            },
            fileAction(
                "admin map \(HbaRenderer.adminMap) (postgres, root)", paths.identFile, ClusterPaths.identFileName,
                files.ident),
            fileAction(
                "peer for system accounts, scram-sha-256 for passwords, no trust/md5", paths.hbaFile,
                ClusterPaths.hbaFileName, files.hba),
            Action(
                "the server has loaded pg_hba.conf and pg_ident.conf",
                check: { try loadedSinceWritten(paths, session.get()) },
                apply: { _ = try session.get().query("SELECT pg_reload_conf()") },
                verify: {
                    // A reload is a signal: the server takes a moment to read the files. Each try
                    // asks a new session (the postmaster's load time).
                    for attempt in 0..<50 {
                        if attempt > 0 { usleep(100_000) }
                        session.reset()
                        if try loadedSinceWritten(paths, session.get()) { return true }
                    }
                    return false
                }),
            .assertion("pg_hba_file_rules: no error, only peer and scram-sha-256") {
                // Not a definite false: in a dry run the file is still the one we would replace.
                if try !paths.openConfigDirectory().holds(ClusterPaths.hbaFileName, files.hba) {
                    throw Failure("\(paths.hbaFile) is not (yet) the file we render", needs: name)
                }
                let connection = try session.get()
                let errors = try connection.query(
                    "SELECT line_number, error FROM pg_hba_file_rules WHERE error IS NOT NULL ORDER BY line_number"
                ).rows
                if !errors.isEmpty {
                    throw Failure.hostWrong(
                        "\(paths.hbaFile) has errors: "
                            + errors.map { "line \($0[0] ?? "?"): \($0[1] ?? "")" }.joined(separator: "; "))
                }
                let methods = try connection.query(
                    "SELECT DISTINCT auth_method FROM pg_hba_file_rules ORDER BY 1"
                ).rows.map { $0[0] ?? "" }
                let others = methods.filter { !HbaRenderer.allowedMethods.contains($0) }
                if !others.isEmpty {
                    throw Failure.hostWrong("\(paths.hbaFile) has rules with \(others.joined(separator: ", "))")
                }
                return true
            },
        ])
    }

    /// True when the server read its configuration after pg_hba.conf and pg_ident.conf last
    /// changed (pg_conf_load_time of `connection`: a session takes the postmaster's load time when
    /// it starts, and a later one when it reloads).
    static func loadedSinceWritten(_ paths: ClusterPaths, _ connection: PGConnection) throws -> Bool {
        let loaded = try connection.query("SELECT extract(epoch FROM pg_conf_load_time())::text").scalar
        guard let loaded, let loadedAt = Double(loaded) else {
            throw Failure("cannot read pg_conf_load_time()")
        }
        let directory = try paths.openConfigDirectory()
        for file in [ClusterPaths.hbaFileName, ClusterPaths.identFileName] {
            guard let changed = try directory.entry(file), changed.kind == .file else { return false }
            if changed.modified > loadedAt { return false }
        }
        return true
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<PgHbaStep>).
extension PgHbaStep: StepDefinition {
    public static let abstract = "write pg_hba.conf and pg_ident.conf: peer and scram-sha-256, no trust"
    public static let discussion = """
        Renders etc/pg_hba.conf.template and etc/pg_ident.conf.template with the configuration and \
        writes them whole over the cluster's files: peer for postgres and root (as the admin roles, \
        through the map hearthminds_admin), peer for HEARTHMINDS_SERVICE_USER to HEARTHMINDS_DB, \
        scram-sha-256 for password roles over the socket and over TCP from loopback, POSTGRES_HOST and \
        PG_ALLOWED_NETWORKS. Reloads the server and checks pg_hba_file_rules. Hand edits are replaced.
        """
    public static var needs: [any StepDefinition.Type] { [PostgresStep.self] }

    public static func build(_ context: StepContext, flags: NoStepFlags) throws -> Step {
        try PgHbaStep.make(context.config)
    }
}
