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
/// What every step is made with, made once by the start-up code (StepMain.start: the
/// configuration, the root check, the lock; the log once the step is made) and handed to each
/// step's `make`, as SwiftPM's commands share one SwiftCommandState: the configuration, the
/// server and the superuser's connections to it, the passwords and the credentials they give,
/// the width of a group of actions, the console and the log. hm-reset starts the same way;
/// hm-migrate and a one-database restore make one for their own work.
public final class StepContext: @unchecked Sendable {
    public let config: HearthConfig
    /// The configured cluster (Debian's socket directory, POSTGRES_PORT): PGServer.admin is
    /// its superuser. Tests pass a throwaway server.
    public let server: PGServer
    /// The superuser's connections a step's actions share (one step per process).
    public let connections: AdminConnections
    /// Where the generated passwords are kept (ClientFiles.defaultDirectory).
    public let clientDirectory: String
    /// The passwords: configured, or kept under `clientDirectory`.
    public let passwords: PasswordBook
    /// Who logs in how: peer accounts, and the passwords of the others.
    public let credentials: Credentials
    /// The revisions (Migrations/ of the shipped tree; nil: none found beside the executable).
    public let migrations: String?
    /// At most this many actions of a group side by side (nil: Workers.defaultWidth).
    public let jobs: Int?
    public let console: Console
    /// The run's log (nil: none yet, or none at all, as in tests that run a step through
    /// StepRunner themselves): StepMain.execute opens it once the step is made.
    public private(set) var log: JSONLog?

    public init(
        _ config: HearthConfig, server: PGServer? = nil, clientDirectory: String = ClientFiles.defaultDirectory,
        migrations: String? = MigrationSet.defaultDirectory(), jobs: Int? = nil, console: Console = Console(),
        log: JSONLog? = nil
    ) {
        self.config = config
        let server = server ?? PGServer(config: config)
        self.server = server
        connections = AdminConnections(server)
        self.clientDirectory = clientDirectory
        passwords = PasswordBook(config, directory: clientDirectory)
        credentials = Credentials(config, book: passwords)
        self.migrations = migrations
        self.jobs = jobs
        self.console = console
        self.log = log
    }

    /// The configured cluster reached over another socket directory (the migrations and
    /// monitoring steps' tests; hm-migrate's hidden --socket-dir).
    public convenience init(
        _ config: HearthConfig, socketDirectory: String, clientDirectory: String = ClientFiles.defaultDirectory,
        migrations: String? = MigrationSet.defaultDirectory(), jobs: Int? = nil, console: Console = Console(),
        log: JSONLog? = nil
    ) {
        var server = PGServer(config: config)
        server.socketDirectory = socketDirectory
        self.init(
            config, server: server, clientDirectory: clientDirectory, migrations: migrations, jobs: jobs,
            console: console, log: log)
    }

    /// Opens the log of the configuration (HEARTHMINDS_LOG) unless one is open.
    public func openLog() throws(Failure) {
        if log == nil { log = try JSONLog(path: config.logPath) }
    }

    /// The width of a group of actions (an ActionGroup's, asked when it starts): `jobs` or
    /// Workers.defaultWidth, bounded by the server's free connections, each worker holding
    /// `perWorker` of them; 1 when the server does not answer.
    public func width(perWorker: Int = 2) -> @Sendable () -> Int {
        let (connections, jobs) = (connections, jobs)
        return {
            let cap = jobs ?? Workers.defaultWidth
            guard cap > 1, let db = try? connections.get() else { return 1 }
            return Parallelism.width(cap: cap, perWorker: perWorker, db)
        }
    }
}
