import ArgumentParser
import HearthKit

@main
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hm-verify",
        abstract: "Check the whole host, read-only; exit non-zero on any false.",
        discussion: """
            The service user; the cluster online at the configured version and port; pg_hba.conf \
            parses with no trust/md5; the service user logs in by peer to HEARTHMINDS_DB; the manager \
            and each AI log in with their passwords over TCP to their databases and HEARTHMINDS_DB, \
            and each AI is refused by the other AIs' databases; the extensions in every database. \
            Changes nothing (--dry-run is the same run). \
            Exit status: 0 every check true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    func run() async throws {
        throw ExitCode(await StepMain.run(VerifyStep.name, options) { VerifyStep.make($0) })
    }
}
