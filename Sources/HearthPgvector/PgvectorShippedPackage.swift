import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The `shipped` method: the Debian package `postgresql-<PG_VERSION>-pgvector` that `make dist`
/// builds from Debian's pgvector source package and puts in the release tarball's `packages/`.
/// apt-get installs it from the file, so dpkg owns pgvector's files (`apt remove` takes them
/// away again) and apt checks its dependencies; nothing is built on the host.
extension PgvectorInstaller {
    /// The shipped package of PG_VERSION for this machine, or why there is none.
    public enum Shipped: Sendable, Equatable {
        case package(String)
        case none(String)
    }

    /// `postgresql-<ver>-pgvector_<version>_<arch>.deb`'s name without the version: its prefix
    /// and suffix.
    public func shippedFileAffixes(architecture: String) -> (prefix: String, suffix: String) {
        (aptPackage + "_", "_\(architecture).deb")
    }

    /// Picks the package file among a directory's names; several versions: the last by name
    /// (a release ships one).
    public func shippedFile(among names: [String], architecture: String) -> String? {
        let (prefix, suffix) = shippedFileAffixes(architecture: architecture)
        return names.filter { $0.hasPrefix(prefix) && $0.hasSuffix(suffix) && $0.count > prefix.count + suffix.count }
            .sorted().last
    }

    public func shippedPackage() async throws -> Shipped {
        guard destDir.isEmpty else { return .none("a staged install (DESTDIR) takes no package") }
        guard let directory = packageDirectory, FileSystem.isDirectory(directory) else {
            return .none("no shipped package: this is not a release tarball (no packages/ beside install.sh)")
        }
        let architecture = try await Command.check(["dpkg", "--print-architecture"]).trimmingCharacters(in: " \n")
        let names = try FileSystem.list(directory)
        guard let name = shippedFile(among: names, architecture: architecture) else {
            let (prefix, suffix) = shippedFileAffixes(architecture: architecture)
            let debs = names.filter { $0.hasSuffix(".deb") }.sorted()
            return .none(
                "the release ships no \(prefix)*\(suffix) in \(directory) (PostgreSQL \(pgVersion) on \(architecture)"
                    + (debs.isEmpty ? "" : "; it has \(debs.joined(separator: ", "))") + ")")
        }
        return .package(directory + "/" + name)
    }

    /// apt-get installs the package file (after an apt-get update when the first try fails on
    /// stale lists: its dependencies may have to be fetched); returns the upstream version dpkg
    /// then has.
    func installShipped(_ path: String) async throws -> String {
        try await Apt.install([path]) { failure in
            let depends = (try? await Command.check(["dpkg-deb", "--field", path, "Depends"]))?
                .trimmingCharacters(in: " \n") ?? "?"
            return Failure(
                failure.message + "\nThe shipped package depends on \(depends): the server "
                    + "it was built against, or a newer one. When apt cannot satisfy that, bring PostgreSQL up "
                    + "to date from the host's security suite (apt-get update, apt-get upgrade), or set "
                    + "PGVECTOR_INSTALL_METHOD=debian-source (a build; its packages are removed again)")
        }
        let installed = try await Command.check(["dpkg-query", "--show", "--showformat=${Version}", aptPackage])
        return PgvectorVersions.upstream(installed.trimmingCharacters(in: " \n"))
    }
}
