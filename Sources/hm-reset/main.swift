import ArgumentParser
import HearthKit

@main
struct ResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-reset",
        abstract: "Destroy what the HearthMinds bootstrap made, for a clean rebuild.",
        discussion: """
            Drops HEARTHMINDS_DB and every AI database (DROP DATABASE ... WITH (FORCE)), the manager, \
            service and AI roles (never postgres or POSTGRES_ADMIN_USER), and the client files \
            (/etc/hearthminds/pg_service.conf, /etc/hearthminds/pgpass/); with --cluster the whole \
            cluster PG_VERSION/PG_CLUSTER_NAME instead of its databases and roles; with \
            --service-user the system account, its group and its home, each only when it is ours \
            (the account marked 'HearthMinds service account', its home under /var/lib). It lists \
            what exists and would be destroyed, then acts only with --yes, or when on a terminal the cluster name \
            or "yes" is typed. Databases, roles and clusters that are not ours are never touched; \
            a role of ours that still owns something elsewhere stops the reset before any change. \
            Rebuild with: sudo ./install.sh (or install.sh --reset --yes, which does both). \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            or not confirmed (nothing changed), 75 another run holds the lock \
            (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    @Flag(name: .long, help: "Confirm: destroy without asking.")
    var yes = false

    @Flag(name: .long, help: "Drop the whole cluster PG_VERSION/PG_CLUSTER_NAME (pg_dropcluster --stop), every database in it.")
    var cluster = false

    @Flag(name: .long, help: "Remove the system account HEARTHMINDS_SERVICE_USER, its group and its home too.")
    var serviceUser = false

    func run() async throws {
        throw ExitCode(
            await ResetMain.run(options, yes: yes, scope: ResetScope(cluster: cluster, serviceUser: serviceUser)))
    }
}
