import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import ArgumentParser
import HearthKit

/// A build tool of `make dist`, not shipped: builds the pgvector package the release tarball
/// carries (see PgvectorPackageBuild).
@main
struct PgvectorDebCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-pgvector-deb",
        abstract: "Build postgresql-<PG>-pgvector_<version>_<arch>.deb from Debian's pinned pgvector source package.",
        discussion: """
            Fetches Debian's pgvector source package at the pinned version from SUITE on this \
            machine's own Debian mirror (read from its apt sources) through a temporary apt \
            configuration, checks the .dsc against the pinned SHA-256, adds a changelog entry for \
            the rebuild, and builds it with Debian's packaging (dpkg-buildpackage, pg_buildext) for \
            PostgreSQL PG only. A package already in the output directory is checked and kept. \
            Needs the build packages `make setup` installs (debhelper, postgresql-server-dev-all, ...). \
            Exit status: 0 built (or found), 1 it failed.
            """)

    @Option(name: .long, help: "PostgreSQL major version.") var pgVersion: Int = 15
    @Option(name: .long, help: "Debian suite that has the pinned source version.") var suite: String = "trixie"
    @Option(name: .long, help: "The pinned Debian version of the pgvector source package.") var sourceVersion: String
    @Option(name: .long, help: "The pinned SHA-256 of its .dsc file.") var dscSha256: String
    @Option(name: .long, help: "Appended to the Debian version of the rebuild.") var versionSuffix: String
    @Option(name: .long, help: "Where the .deb is written.") var output: String

    func run() async throws {
        let build = PgvectorPackageBuild(
            pgVersion: pgVersion, suite: suite, sourceVersion: sourceVersion, dscSHA256: dscSha256,
            versionSuffix: versionSuffix, outputDirectory: output)
        do {
            _ = try await build.build()
        } catch {
            print("hm-pgvector-deb: \(error)")
            throw ExitCode(1)
        }
    }
}
