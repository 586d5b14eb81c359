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
/// `migrations`: every database (HEARTHMINDS_DB, then each AI database) at the head revision
/// of `Migrations/`, by `hm-migrate up`. One action per database: the check is "at head and no
/// applied revision's files changed"; the apply runs the missing revisions.
///
/// HEARTHMINDS_DB goes first and alone (every AI reads it: when one of its revisions fails, no AI
/// database is touched); then the AI databases side by side (ActionGroup), each by its own
/// owner's connection, which its check opens and its apply and verify reuse. The owner the
/// configuration names logs in and asks whether it owns the database; only when it does not is
/// the owner read by a superuser connection.
public enum MigrationsStep {
    public static let name = StepName.migrations

    /// The step of a context of these parts (tests). `directory`: the revisions (nil: not found
    /// beside the executable); `socketDirectory`: where the cluster's socket is (tests use their
    /// own cluster's); `clientDirectory`: where the generated passwords are kept (each database is
    /// migrated as its owner); `jobs`: at most this many AI databases side by side (default
    /// Workers.defaultWidth, bounded by the server's free connections; 1: one after another).
    public static func make(
        _ config: HearthConfig, directory: String?, socketDirectory: String,
        clientDirectory: String = ClientFiles.defaultDirectory, jobs: Int? = nil,
        progress: @escaping @Sendable (String) -> Void = { _ in },
        notice: (@Sendable (String) -> Void)? = nil
    ) -> Step {
        make(
            StepContext(
                config, socketDirectory: socketDirectory, clientDirectory: clientDirectory, migrations: directory,
                jobs: jobs),
            progress: progress, notice: notice ?? progress)
    }

    /// The server's notices go to the context's console (`notice`: elsewhere), the progress of
    /// a revision to `progress`.
    public static func make(
        _ context: StepContext, progress: @escaping @Sendable (String) -> Void = { _ in },
        notice: (@Sendable (String) -> Void)? = nil
    ) -> Step {
        let (config, server, credentials, directory) = (context.config, context.server, context.credentials, context.migrations)
        let console = context.console
        let notice = notice ?? { console.err("  note: \($0)") }
        let loaded = Once { () throws -> MigrationSet in
            guard let directory else {
                throw Failure.migration("no Migrations/ directory found beside the executables (set HEARTHMINDS_ROOT)")
            }
            return try MigrationSet.load(directory: directory, config: config)
        }
        let owners = DatabaseSpec.owners(config)

        func atHead(_ database: String) -> Action {
            let migrator = Held<Migrator>()
            func open() throws -> Migrator {
                try migrator.get {
                    let opened = try Migrator(
                        set: try loaded.get(), database: database, server: server, credentials: credentials,
                        expected: owners[database], progress: progress)
                    // The server's notices are shown (pgvector's "ivfflat index created with
                    // little data" on a fresh install, say), not hidden.
                    opened.notice = notice
                    return opened
                }
            }
            func converged() throws -> Bool {
                let status = try open().status()
                if status.changed.contains(EmbeddingStorage.revision) {
                    // 0008 renders from PGVECTOR_STORAGE: stamping would record a kind no row was
                    // converted to; the way is to undo it under the value it ran with.
                    throw Failure.hostWrong(
                        "\(database): the files of applied revision(s) \(status.changed.joined(separator: ", ")) "
                            + "changed since they ran (`hm-migrate check`); \(EmbeddingStorage.revision) renders from "
                            + "PGVECTOR_STORAGE and the index keys: if one of them changed, put it back, or convert: "
                            + "`sudo hm-migrate down --to \(EmbeddingStorage.before) --database \(database) --set "
                            + "PGVECTOR_STORAGE=<the value it ran with>` (every row kept), then `sudo ./install.sh`; "
                            + "do not stamp it, which would record a kind no row was converted to")
                }
                if !status.changed.isEmpty {
                    throw Failure.hostWrong(
                        "\(database): the files of applied revision(s) \(status.changed.joined(separator: ", ")) "
                            + "changed since they ran (`hm-migrate check`); restore them, or after a deliberate "
                            + "change record them with `hm-migrate stamp \(status.current ?? "base") --database \(database)`")
                }
                return status.atHead
            }
            return .blocking(
                "database \(database) at the head revision", check: converged,
                apply: { try open().upgrade() }, verify: converged, done: { migrator.clear() })
        }

        var parts: [Step.Part] = [
            .action(
                .assertion("revisions in \(directory ?? "Migrations/") load and render") {
                    let set = try loaded.get()
                    guard set.head != nil else { throw Failure.hostWrong("\(set.directory) holds no revisions") }
                    return true
                })
        ]
        guard let shared = config.databases.first else { return Step(name, parts: parts) }
        parts.append(.action(atHead(shared)))
        let rest = config.databases.dropFirst().map(atHead)
        if !rest.isEmpty {
            parts.append(
                .group(
                    ActionGroup(rest, width: context.width(perWorker: 2))))
        }
        return Step(name, parts: parts)
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<MigrationsStep>).
extension MigrationsStep: StepDefinition {
    public static let abstract = "bring every database to the head revision of Migrations/"
    public static let discussion = """
        The install.sh step `migrations`: `hm-migrate up` on each database, one action per \
        database (check: at head and no applied revision's files changed).
        """
    public static var needs: [any StepDefinition.Type] { [DatabasesStep.self] }

    public static func build(_ context: StepContext, flags: NoStepFlags) throws -> Step {
        MigrationsStep.make(context)
    }
}
