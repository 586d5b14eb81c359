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

/// `monitoring` (issue 23): Debian's prometheus-postgres-exporter, run by its systemd unit as
/// our own system account MONITORING_USER (no shell, no password), which logs in by peer to the
/// role of the same name (pg_monitor and nothing else; the databases step makes it and grants
/// it CONNECT on our databases); our custom queries (each AI's memory, its vector index, the
/// connections, the top statements); pg_stat_statements in the `postgres` database; Debian's
/// prometheus-node-exporter for the textfile metrics of every run; and the schema's state of
/// every database as a textfile.
///
/// The drop-ins and the account come before the packages: the units the packages start find
/// our configuration (never the package's default of every interface). Without systemd (a
/// chroot) the step configures the exporters and says that it did not start them.
public enum MonitoringStep {
    public static let name = StepName.monitoring
    public static let mark = "HearthMinds monitoring account"
    public static let shell = "/usr/sbin/nologin"
    public static let home = "/nonexistent"
    public static let nodeUnit = "prometheus-node-exporter.service"
    public static let nodeDropInDirectory = "/etc/systemd/system/prometheus-node-exporter.service.d"
    public static let schemaFile = "hearthminds_schema.prom"

    /// The step of a context of these parts (tests).
    public static func make(
        _ config: HearthConfig, migrations: String?, socketDirectory: String,
        clientDirectory: String = ClientFiles.defaultDirectory, systemd: Bool = SystemdUnits.running
    ) -> Step {
        make(
            StepContext(config, socketDirectory: socketDirectory, clientDirectory: clientDirectory, migrations: migrations),
            systemd: systemd)
    }

    public static func make(_ context: StepContext, systemd: Bool = SystemdUnits.running) -> Step {
        let (config, migrations) = (context.config, context.migrations)
        let session = ClusterSession(ClusterPaths(config))
        let files = exporterFiles(config)
        let loaded = Once { () throws -> MigrationSet in
            guard let migrations else { throw Failure.migration("no Migrations/ directory found beside the executables") }
            return try MigrationSet.load(directory: migrations, config: config)
        }
        return Step(
            name,
            clusterChecks(config, session) + accountActions(config.monitoring.user) + fileActions(files)
                + packageActions(session) + [connectionSlots(config, session)]
                + (systemd ? unitActions(config, files) : [noSystemd()])
                + [schemaAction(config, server: context.server, credentials: context.credentials, loaded: loaded)])
    }

    /// The superuser's session; a cluster that does not answer needs the postgres step (what a
    /// dry run on a fresh host says).
    private static func admin(_ session: ClusterSession) throws -> PGConnection {
        do { return try session.get() } catch {
            throw Failure("cluster \(session.paths.id) is not running: \(error)", needs: PostgresStep.name)
        }
    }

    /// What the earlier steps made: the cluster running with pg_stat_statements preloaded, the
    /// monitoring role.
    private static func clusterChecks(_ config: HearthConfig, _ session: ClusterSession) -> [Action] {
        let user = config.monitoring.user
        return [
            .assertion("cluster \(session.paths.id) is running, pg_stat_statements preloaded (the postgres step's restart)") {
                let preload = try admin(session).query("SHOW shared_preload_libraries").scalar ?? ""
                guard preload.split(separator: ",").map({ String($0).trimmingCharacters(in: " ") }).contains(MonitoringSettings.preloadLibraries)
                else {
                    // (in a dry run: the postgres step's restart would bring it)
                    throw Failure(
                        "the running server does not preload \(MonitoringSettings.preloadLibraries) "
                            + "(shared_preload_libraries is '\(preload)'): rerun the postgres step, which restarts it once",
                        needs: PostgresStep.name)
                }
                return true
            },
            .assertion("role \(user): login by peer, no password, pg_monitor only (made by the databases step)") {
                let spec = RoleSpec(name: user, superuser: false, password: .none, memberOf: ["pg_monitor"])
                guard try spec.isConverged(admin(session)) else {
                    throw Failure("role \(user) is not (yet) as the databases step makes it", needs: DatabasesStep.name)
                }
                return true
            },
        ]
    }

    /// The monitoring account: a system account with our mark, its own group, no shell, no
    /// home, no password.
    static func accountActions(_ user: String) -> [Action] {
        let account = MarkedAccount(user: user, mark: mark, home: home, shell: shell, lockPassword: true)
        return account.actions(ours: "is a system account with our mark ('\(mark)')", requireOurs: requireOurs)
            + [
                Action(
                    "system user \(user) exists: shell \(shell), no home, no password",
                    check: {
                        guard let found = SystemAccount.lookup(user) else { return false }
                        try requireOurs(found)
                        return account.matches(found)
                    },
                    apply: {
                        if SystemAccount.lookup(user) == nil { try await account.add() }
                        try await account.modify()
                    })
            ]
    }

    /// The files the step writes whole (root's, 0644): the queries, the drop-ins, the web
    /// configuration.
    private static func fileActions(_ files: [ManagedFile]) -> [Action] {
        files.map { file in
            Action(
                "\(file.directory)/\(file.name): \(file.what)",
                check: {
                    guard let directory = try OpenDirectory.openIfPresent(file.directory),
                        let status = try directory.entry(file.name), status.kind == .file
                    else { return false }
                    return try directory.holds(file.name, file.text) && status.uid == 0 && status.gid == 0
                        && status.mode == 0o644
                },
                apply: {
                    try OpenDirectory.makePath(file.directory, mode: 0o755).write(file.name, file.text, mode: 0o644, uid: 0, gid: 0)
                },
                preview: {
                    try DryRunPreview.file(
                        "\(file.directory)/\(file.name)", in: try OpenDirectory.openIfPresent(file.directory), file.name,
                        text: file.text, mode: 0o644, uid: 0, gid: 0)
                })
        }
    }

    /// The exporters' packages, and pg_stat_statements in the postgres database.
    private static func packageActions(_ session: ClusterSession) -> [Action] {
        [
            Action(
                "packages \(ExporterConfig.packages.joined(separator: ", ")) installed",
                check: { DpkgStatus.installed(Set(ExporterConfig.packages)) == Set(ExporterConfig.packages) },
                apply: {
                    let have = DpkgStatus.installed(Set(ExporterConfig.packages)) ?? []
                    try await Apt.install(ExporterConfig.packages.filter { !have.contains($0) })
                }),
            Action(
                "pg_stat_statements in the postgres database (read by pg_monitor; no AI connects there)",
                check: {
                    try admin(session).query(
                        "SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'pg_stat_statements'").rows.count == 1
                },
                apply: { _ = try session.get().query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements SCHEMA public") }),
        ]
    }

    /// The exporter holds a session per database it reads (0.11.1): said when that is more than a
    /// fifth of the server's connection slots (docs/monitoring.md, known problems).
    private static func connectionSlots(_ config: HearthConfig, _ session: ClusterSession) -> Action {
        let exporter = ExporterConfig(config)
        let slots = Box<String>()
        return Action(
            "the exporter's \(exporter.databases.count) sessions (one per database) and the server's connection slots",
            check: {
                let row = try admin(session).query(
                    "SELECT current_setting('max_connections')::int - current_setting('superuser_reserved_connections')::int"
                ).scalar
                let available = Int(row ?? "") ?? 0
                if exporter.databases.count * 5 > available {
                    slots.value = "note: the exporter holds \(exporter.databases.count) sessions of the \(available) "
                        + "connection slots (max_connections less the superuser reserve): raise max_connections by as many"
                }
                return true
            },
            apply: {},
            note: { slots.value ?? "" })
    }

    /// Where systemd runs: the units reloaded, enabled, running since their configuration last
    /// changed, and the postgres exporter answering with our metrics.
    private static func unitActions(_ config: HearthConfig, _ files: [ManagedFile]) -> [Action] {
        let units = [ExporterConfig.unit, nodeUnit]
        return [
            Action(
                "systemd has read the drop-ins of \(units.joined(separator: ", "))",
                check: {
                    for unit in units where try await SystemdUnits.property(unit, "NeedDaemonReload") != "no" { return false }
                    return true
                },
                apply: { try await SystemdUnits.daemonReload() }),
            Action(
                "\(units.joined(separator: ", ")) enabled (started at boot)",
                check: {
                    for unit in units where try await SystemdUnits.isEnabled(unit) == false { return false }
                    return true
                },
                apply: { for unit in units { try await SystemdUnits.systemctl(["enable", unit]) } }),
            Action(
                "\(units.joined(separator: ", ")) running, started after their configuration last changed",
                check: {
                    for unit in units {
                        guard let started = try await SystemdUnits.mainStarted(unit) else { return false }
                        if try configurationChanged(for: unit, files: files) > started { return false }
                    }
                    return true
                },
                apply: { for unit in units { try await SystemdUnits.systemctl(["restart", unit]) } }),
            exporterAnswers(config),
        ]
    }

    /// The postgres exporter answers on its address: pg_up 1, no scrape error, our metrics
    /// (HTTPS: not read by this step).
    private static func exporterAnswers(_ config: HearthConfig) -> Action {
        .assertion("the postgres exporter answers on \(config.monitoring.listenAddress): pg_up 1, no scrape error") {
            if config.monitoring.tls != nil {
                // (HTTPS: not read by this step; the unit runs, said above)
                return true
            }
            var last = ""
            for attempt in 0..<50 {
                if attempt > 0 { usleep(200_000) }
                guard let body = try? ScrapeClient.get(host: config.monitoring.host, port: config.monitoring.port) else {
                    last = "no answer"
                    continue
                }
                let up = TextfileMetrics.value(of: "pg_up", labels: [], in: body)
                let error = TextfileMetrics.value(of: "pg_exporter_last_scrape_error", labels: [], in: body)
                if up == 1 && error == 0 && body.contains("\nhearthminds_memory_rows{") { return true }
                last = "pg_up \(up.map { TextfileMetrics.number($0) } ?? "missing"), pg_exporter_last_scrape_error "
                    + "\(error.map { TextfileMetrics.number($0) } ?? "missing")"
            }
            throw Failure.hostWrong(
                "the postgres exporter on \(config.monitoring.listenAddress) does not serve our metrics (\(last)); "
                    + "see journalctl -u \(ExporterConfig.unit)")
        }
    }

    /// Without systemd (a chroot): the exporters configured, not started.
    private static func noSystemd() -> Action {
        let units = [ExporterConfig.unit, nodeUnit]
        return Action(
            "no systemd here: the exporters are configured, not started by this step",
            check: { true }, apply: {},
            note: { "no systemd: \(units.joined(separator: ", ")) start with their drop-ins at the next boot with systemd" })
    }

    /// The schema textfile (`hearthminds_schema.prom`): each database's revision and checksums,
    /// read as its owner (as `hm-migrate current`); rewritten when it differs.
    static func schemaAction(
        _ config: HearthConfig, server: PGServer, credentials: Credentials, loaded: Once<MigrationSet>
    ) -> Action {
        let owners = DatabaseSpec.owners(config)
        func schemaMetrics() throws -> String {
            let set = try loaded.get()
            var statuses: [MigrationStatus] = []
            for database in config.databases {
                let migrator = try Migrator(
                    set: set, database: database, server: server, credentials: credentials, expected: owners[database])
                statuses.append(try migrator.status())
            }
            return SchemaMetrics.render(statuses).render()
        }
        return Action(
            "\(config.monitoring.textfileDirectory ?? "(no textfile directory)")/\(schemaFile): each database's revision and checksums",
            check: {
                guard config.monitoring.textfileDirectory != nil else { return true }
                let wanted: String
                do { wanted = try schemaMetrics() } catch let error as Failure where error.kind == .hostWrong { throw error } catch {
                    // (a database not there yet, in a dry run of a fresh host)
                    throw Failure("\(error)", needs: MigrationsStep.name)
                }
                return TextfileMetrics.read(schemaFile, config) == wanted
            },
            apply: {
                guard let directory = try TextfileMetrics.directory(config) else { return }
                try directory.write(schemaFile, try schemaMetrics(), mode: 0o644, uid: 0, gid: 0)
            })
    }

    /// A file the step writes whole: the queries, the drop-ins, the web configuration.
    public struct ManagedFile: Sendable {
        public let directory: String
        public let name: String
        public let text: String
        public let what: String
        /// The units that must restart when it changes.
        public let units: [String]
    }

    public static func exporterFiles(_ config: HearthConfig) -> [ManagedFile] {
        let exporter = ExporterConfig(config)
        var files = [
            ManagedFile(
                directory: ExporterConfig.directory, name: ExporterConfig.queriesName, text: exporter.queriesFile,
                what: "the exporter's custom queries", units: [ExporterConfig.unit]),
            ManagedFile(
                directory: ExporterConfig.dropInDirectory, name: ExporterConfig.dropInName, text: exporter.dropIn,
                what: "the exporter runs as \(config.monitoring.user) on \(config.monitoring.listenAddress)",
                units: [ExporterConfig.unit]),
            ManagedFile(
                directory: nodeDropInDirectory, name: ExporterConfig.dropInName, text: nodeDropIn(config),
                what: "node_exporter on loopback, its textfile directory", units: [nodeUnit]),
        ]
        if let web = exporter.webConfig {
            files.append(
                ManagedFile(
                    directory: ExporterConfig.directory, name: ExporterConfig.webConfigName, text: web,
                    what: "the exporter's HTTPS", units: [ExporterConfig.unit]))
        }
        return files
    }

    /// node_exporter's drop-in: loopback (:9100), the textfile directory; the operator's ARGS of
    /// /etc/default/prometheus-node-exporter still apply after ours.
    public static func nodeDropIn(_ config: HearthConfig) -> String {
        let textfile = config.monitoring.textfileDirectory ?? MonitoringConfig.defaultTextfileDirectory
        return """
            # Managed by HearthMinds bootstrap (hm-monitoring): rewritten whole on every run.
            # node_exporter on loopback, reading the textfile metrics of every HearthMinds run.
            # ARGS of /etc/default/prometheus-node-exporter still apply, after these.
            [Service]
            ExecStart=
            ExecStart=/usr/bin/prometheus-node-exporter --web.listen-address=127.0.0.1:9100 --collector.textfile.directory=\(textfile) $ARGS

            """
    }

    /// The newest change of the files a unit reads (Unix time).
    static func configurationChanged(for unit: String, files: [ManagedFile]) throws -> Double {
        var newest = 0.0
        for file in files where file.units.contains(unit) {
            if let directory = try OpenDirectory.openIfPresent(file.directory), let status = try directory.entry(file.name) {
                newest = max(newest, status.modified)
            }
        }
        return newest
    }

    static func requireOurs(_ account: SystemAccount) throws {
        guard account.uid <= SystemAccount.systemUIDMax() else {
            throw Failure.hostWrong(
                "\(account.name) has uid \(account.uid), an ordinary user's: not the monitoring account; choose another MONITORING_USER")
        }
        guard account.comment.split(separator: ",", omittingEmptySubsequences: false).first.map(String.init) == mark else {
            throw Failure.hostWrong(
                "system account \(account.name) exists without our mark (comment '\(mark)'): not adopted; choose another "
                    + "MONITORING_USER, or mark it: usermod --comment '\(mark)' \(account.name)")
        }
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<MonitoringStep>).
extension MonitoringStep: StepDefinition {
    public static let abstract = "install and run the Prometheus exporters: the server, every AI's memory, every run"
    public static let discussion = """
        The install.sh step `monitoring`, after `vector-index`. Debian's prometheus-postgres-exporter \
        runs (its systemd unit, with our drop-in) as MONITORING_USER, a system account with no shell and \
        no password that logs in by peer to the role of the same name (pg_monitor only; the databases \
        step makes it), on POSTGRES_EXPORTER_ADDRESS (loopback 127.0.0.1:9187 by default; beyond \
        loopback only with the TLS pair), with our custom queries (/etc/hearthminds/monitoring/): each \
        AI's tables, vector index, connections and top statements (pg_stat_statements, created in the \
        postgres database). Debian's prometheus-node-exporter (loopback :9100) serves the textfile \
        metrics every step writes to NODE_EXPORTER_TEXTFILE_DIR, and this step's hearthminds_schema.prom \
        (each database's revision and checksums). Units enabled and started where systemd runs; without \
        systemd they are configured, not started.
        """
    public static var needs: [any StepDefinition.Type] { [PostgresStep.self, DatabasesStep.self, MigrationsStep.self] }

    public static func build(_ context: StepContext, flags: NoStepFlags) throws -> Step {
        MonitoringStep.make(context)
    }
}
