import ArgumentParser
import HearthKit

@main
struct PgHbaCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-pg-hba",
        abstract: "Write the cluster's pg_hba.conf and pg_ident.conf (peer and scram-sha-256, never trust).",
        discussion: """
            Renders etc/pg_hba.conf.template and etc/pg_ident.conf.template with the configuration and \
            writes them whole over the cluster's files: peer for postgres and root (as the admin roles, \
            through the map hearthminds_admin), peer for HEARTHMINDS_SERVICE_USER to HEARTHMINDS_DB, \
            scram-sha-256 for password roles over the socket and over TCP from loopback, POSTGRES_HOST and \
            PG_ALLOWED_NETWORKS. Reloads the server and checks pg_hba_file_rules. Hand edits are replaced. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    func run() async throws {
        throw ExitCode(await StepMain.run(PgHbaStep.name, options) { try PgHbaStep.make($0) })
    }
}
