import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import HearthKit
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
import ArgumentParser

/// hm-restore: a tool, not a step (bootstrap/steps does not list it). install.sh runs it with
/// --restore (after the steps up to pgvector, before the others), or an operator by hand.
public struct RestoreCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-restore",
        abstract: "bring the cluster back from the backup repository, newest or to a point in time",
        discussion: """
            Restores cluster PG_VERSION/PG_CLUSTER_NAME with pgBackRest from stanza BACKUP_STANZA in \
            BACKUP_REPO_PATH: the newest state in the archive, or with --to the state at that time. The \
            cluster's data directory is moved aside first (<data>.before-restore-<time>), never deleted. \
            Stops the server, restores, starts it and waits until recovery has ended. Then run the steps \
            (sudo ./install.sh; install.sh --restore does both). It needs the stanza's configuration \
            (the backup step's first actions) and says when the AIs' passwords are not on this host \
            (bring /etc/hearthminds/pgpass/ from the old host). A rerun after an interruption finishes \
            the restore. With --retired, a stanza hm-reset --cluster retired is made the stanza again \
            first. With --database DB, only that AI's database is restored (to --to, or the newest state): \
            restored alone into a throwaway cluster, dumped, restored into a new database as the AI itself, \
            swapped in (the live one renamed aside, DB_before_restore_<time>), then the databases, \
            migrations and vector-index steps run; the other databases are not touched. Exit status: 0 restored, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    @Option(name: .long, help: ArgumentHelp("Restore to this time (PostgreSQL's timestamp, e.g. '2026-12-06 17:30:00+00').", valueName: "TIME"))
    var to: String?

    @Option(name: .long, help: ArgumentHelp("Restore this AI's database alone (its owner's data, the others untouched), to --to or the newest state.", valueName: "DB"))
    var database: String?

    @Option(name: .long, help: ArgumentHelp("Restore from a stanza hm-reset --cluster retired (<stanza>-retired-<time>): it is made the stanza again first.", valueName: "NAME"))
    var retired: String?

    public init() {}

    public func run() async throws {
        let (to, retired, database) = (to, retired, database)
        if database != nil && retired != nil {
            throw ValidationError("--database and --retired exclude each other")
        }
        throw ExitCode(
            await StepMain.run(ClusterRestore.name, options) {
                if let database { return try DatabaseRestore.make($0.config, database: database, to: to) }
                return try ClusterRestore.make($0.config, to: to, retired: retired)
            })
    }
}
