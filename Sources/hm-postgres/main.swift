import ArgumentParser
import HearthKit

@main
struct PostgresCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-postgres",
        abstract: "Install PostgreSQL PG_VERSION and run the cluster PG_VERSION/PG_CLUSTER_NAME.",
        discussion: """
            Installs postgresql-<PG_VERSION> and its client with apt-get when missing (postgresql-common \
            is told to create no cluster of its own), creates the cluster with pg_createcluster (UTF-8, \
            POSTGRES_PORT), writes our settings to its conf.d/hearthminds.conf (listen_addresses from \
            POSTGRES_HOST, port, password_encryption = scram-sha-256), starts it (restarting or reloading \
            when a setting changed) and checks that it answers as PostgreSQL PG_VERSION. A cluster of that \
            name of another version, or another cluster on POSTGRES_PORT, is a false result. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    func run() async throws {
        throw ExitCode(await StepMain.run(PostgresStep.name, options) { PostgresStep.make($0) })
    }
}
