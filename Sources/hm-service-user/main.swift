import ArgumentParser
import HearthKit

@main
struct ServiceUserCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-service-user",
        abstract: "Create the HearthMinds service account (HEARTHMINDS_SERVICE_USER).",
        discussion: """
            A system user with its own group, its home under /var/lib and no login shell, marked \
            by its comment 'HearthMinds service account'. It owns HEARTHMINDS_DB and logs in to \
            PostgreSQL by peer authentication. An existing account without the mark, or an \
            existing home it does not own, is a false result, never adopted. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    func run() async throws {
        throw ExitCode(await StepMain.run(ServiceUserStep.name, options) { ServiceUserStep.make($0) })
    }
}
