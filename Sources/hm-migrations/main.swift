import ArgumentParser
import HearthKit

@main
struct MigrationsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-migrations",
        abstract: "Bring HEARTHMINDS_DB and every AI database to the head revision of Migrations/.",
        discussion: """
            The install.sh step `migrations`: `hm-migrate up` on each database, one action per \
            database (check: at head and no applied revision's files changed). \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    func run() async throws {
        throw ExitCode(await StepMain.run(MigrationsStep.name, options) { MigrationsStep.make($0) })
    }
}
