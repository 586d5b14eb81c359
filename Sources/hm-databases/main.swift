import ArgumentParser
import HearthKit

@main
struct DatabasesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-databases",
        abstract: "Create and converge the roles, databases, extensions and grants.",
        discussion: """
            Roles: HEARTHMINDS_USER (superuser, password, member of pg_monitor), \
            HEARTHMINDS_SERVICE_USER (login by peer only), one per AI name (login, password), and \
            POSTGRES_ADMIN_USER's password. Databases: HEARTHMINDS_DB owned by the service account, \
            <name><AI_DB_SUFFIX> owned by each AI, AI_DEFAULT_EXTENSIONS in each (owned by the \
            manager); CONNECT revoked from PUBLIC; every AI and the manager connect to and read \
            HEARTHMINDS_DB. Writes pg_service.conf and password files under /etc/hearthminds. \
            Databases of AI names no longer configured are reported, never dropped. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    func run() async throws {
        throw ExitCode(await StepMain.run(DatabasesStep.name, options) { DatabasesStep.make($0) })
    }
}
