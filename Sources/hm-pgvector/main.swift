import ArgumentParser
import HearthKit

@main
struct PgvectorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-pgvector",
        abstract: "Install pgvector into PostgreSQL PG_VERSION and prove it on the cluster.",
        discussion: """
            Debian 12 has no pgvector package. PGVECTOR_INSTALL_METHOD=auto tries, in order: \
            apt (postgresql-<PG_VERSION>-pgvector, when the host's apt sources offer it), \
            shipped (the release tarball's packages/postgresql-<PG_VERSION>-pgvector_*_<arch>.deb, \
            installed by apt-get from the file), debian-source (Debian's pgvector source package of \
            PGVECTOR_DEBIAN_SUITE, fetched from the host's own Debian mirror through a temporary apt \
            configuration and checked by apt against the archive's signed index), then tarball \
            (PGVECTOR_SOURCE, a path or URL, which must match PGVECTOR_SHA256; only when set). \
            Sources are built portably against /usr/lib/postgresql/<PG_VERSION>/bin/pg_config, and \
            the packages installed for the build are removed again afterwards: no compiler stays. \
            The install action says which method ran and why. Then the cluster on POSTGRES_PORT \
            (socket /var/run/postgresql, peer as postgres) must offer vector at the installed \
            version and CREATE EXTENSION vector must work (in a transaction that is rolled back). \
            A host where pgvector is installed downloads and builds nothing. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    @Flag(name: .long, help: """
        Install the extension's files only and skip the cluster checks \
        (build and test hosts; `make setup` uses it).
        """)
    var installOnly = false

    func run() async throws {
        let installOnly = installOnly
        throw ExitCode(
            await StepMain.run(PgvectorStep.name, options) { PgvectorStep.make($0, installOnly: installOnly) })
    }
}
