/// `migrations`: every database (HEARTHMINDS_DB, then each AI database) at the head revision
/// of `Migrations/`, by `hm-migrate up`. One action per database: the check is "at head and no
/// applied revision's files changed"; the apply runs the missing revisions.
public enum MigrationsStep {
    public static let name = "migrations"

    public static func make(_ config: HearthConfig, console: Console = Console()) -> Step {
        make(
            config, directory: MigrationSet.defaultDirectory(), socketDirectory: PGTarget.debianSocketDirectory,
            notice: { console.err("  note: \($0)") })
    }

    /// `directory`: the revisions (nil: not found beside the executable); `socketDirectory`:
    /// where the cluster's socket is (tests use their own cluster's); `clientDirectory`: where
    /// the generated passwords are kept (each database is migrated as its owner).
    public static func make(
        _ config: HearthConfig, directory: String?, socketDirectory: String,
        clientDirectory: String = ClientFiles.defaultDirectory,
        progress: @escaping @Sendable (String) -> Void = { _ in },
        notice: (@Sendable (String) -> Void)? = nil
    ) -> Step {
        let loaded = Loaded(config, directory)
        var actions: [Action] = [
            .assertion("revisions in \(directory ?? "Migrations/") load and render") {
                let set = try loaded.get()
                guard set.head != nil else { throw CheckFailed("\(set.directory) holds no revisions") }
                return true
            }
        ]
        var server = PGServer(config: config)
        server.socketDirectory = socketDirectory
        let credentials = Credentials(config, book: PasswordBook(config, directory: clientDirectory))
        for database in config.databases {
            actions.append(
                Action(
                    "database \(database) at the head revision",
                    check: {
                        let set = try loaded.get()
                        let status = try Migrator(set: set, database: database, server: server, credentials: credentials).status()
                        if !status.changed.isEmpty {
                            throw CheckFailed(
                                "\(database): the files of applied revision(s) \(status.changed.joined(separator: ", ")) "
                                    + "changed since they ran (`hm-migrate check`); restore them, or after a deliberate "
                                    + "change record them with `hm-migrate stamp \(status.current ?? "base") --database \(database)`")
                        }
                        return status.atHead
                    },
                    apply: {
                        let migrator = try Migrator(
                            set: try loaded.get(), database: database, server: server, credentials: credentials,
                            progress: progress)
                        // The server's notices are shown (pgvector's "ivfflat index created with
                        // little data" on a fresh install, say), not hidden.
                        migrator.notice = notice ?? progress
                        try migrator.upgrade()
                    }))
        }
        return Step(name, actions)
    }

    /// The migration set, loaded once on first use (a bad file is that action's false result).
    private final class Loaded {
        let config: HearthConfig
        let directory: String?
        var result: Result<MigrationSet, MigrationError>?

        init(_ config: HearthConfig, _ directory: String?) {
            self.config = config
            self.directory = directory
        }

        func get() throws(MigrationError) -> MigrationSet {
            if let result { return try result.get() }
            guard let directory else {
                let failure = MigrationError(
                    "no Migrations/ directory found beside the executables (set HEARTHMINDS_ROOT)")
                result = .failure(failure)
                throw failure
            }
            let loaded = Result { () throws(MigrationError) -> MigrationSet in
                try MigrationSet.load(directory: directory, config: config)
            }
            result = loaded
            return try loaded.get()
        }
    }
}
