import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// `make dist`'s pgvector package: Debian's own `pgvector` source package, pinned (suite,
/// version and the SHA-256 of its .dsc), fetched from this machine's Debian mirror and built
/// with Debian's packaging into `postgresql-<PG>-pgvector_<version><suffix>_<arch>.deb`, which
/// the release tarball ships for the `shipped` method.
///
/// The chain of trust: apt checks the suite's InRelease against Debian's archive keyring
/// (`signed-by`), the Sources index then gives the .dsc's SHA-256, and the .dsc the SHA-256 of
/// the tarballs (checked by apt when it downloads them and by dpkg-source when it unpacks
/// them); the pinned digest of the .dsc ties the build to exactly that source. The binary
/// package's Depends are what Debian's tools make of the build (pg_buildext's `postgresql-<PG>`,
/// with no minimum minor version: see `minorVersionsText`; the JIT's llvm, dpkg-shlibdeps' libc6).
///
/// It runs on a build machine (with `make setup`'s build packages), never on a database host.
public struct PgvectorPackageBuild: Sendable {
    public var pgVersion: Int
    /// The Debian suite whose Sources index lists the pinned version (trixie).
    public var suite: String
    /// The pinned Debian version of the source package (0.8.0-1).
    public var sourceVersion: String
    /// The pinned SHA-256 of `pgvector_<sourceVersion>.dsc`.
    public var dscSHA256: String
    /// Appended to the Debian version of our rebuild; `~` sorts it below Debian's own build of
    /// the same version, which replaces it on an upgrade.
    public var versionSuffix: String
    /// Where the .deb is written (and found again: a build whose file is there is not redone).
    public var outputDirectory: String
    /// This machine's apt configuration (tests may point elsewhere).
    public var etcApt = "/etc/apt"
    public var osRelease = "/etc/os-release"

    public init(
        pgVersion: Int, suite: String, sourceVersion: String, dscSHA256: String, versionSuffix: String,
        outputDirectory: String
    ) {
        self.pgVersion = pgVersion
        self.suite = suite
        self.sourceVersion = sourceVersion
        self.dscSHA256 = dscSHA256.lowercased()
        self.versionSuffix = versionSuffix
        self.outputDirectory = outputDirectory
    }

    /// debian/minor_versions of our rebuild: no minimum minor version for any major.
    static let minorVersionsText = "# HearthMinds' rebuild: no minimum minor version of the server (ABI kept within a major)\n"

    public var packageName: String { "postgresql-\(pgVersion)-pgvector" }
    public var binaryVersion: String { sourceVersion + versionSuffix }
    public var upstreamVersion: String { PgvectorVersions.upstream(sourceVersion) }
    public var dscName: String { "pgvector_\(PgvectorVersions.withoutEpoch(sourceVersion)).dsc" }

    public func fileName(architecture: String) -> String {
        "\(packageName)_\(PgvectorVersions.withoutEpoch(binaryVersion))_\(architecture).deb"
    }

    /// The pins must be plain: a Debian version, 64 hex digits, a suffix of version characters.
    public func validate() throws(Failure) {
        let versionCharacters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.+~-:"
        guard !sourceVersion.isEmpty, sourceVersion.allSatisfy({ versionCharacters.contains($0) }),
            sourceVersion.first?.isNumber == true
        else { throw Failure("the pinned source version '\(sourceVersion)' is not a Debian version") }
        guard versionSuffix.allSatisfy({ versionCharacters.contains($0) && $0 != ":" && $0 != "-" }) else {
            throw Failure("the version suffix '\(versionSuffix)' may hold only letters, digits and . + ~")
        }
        guard dscSHA256.count == 64, dscSHA256.allSatisfy({ "0123456789abcdef".contains($0) }) else {
            throw Failure("the pinned .dsc SHA-256 '\(dscSHA256)' is not 64 hexadecimal digits")
        }
        guard !suite.isEmpty, suite.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "-" }) else {
            throw Failure("'\(suite)' is not a Debian suite name")
        }
    }

    /// The changelog entry of our rebuild, dated as the pinned source's own latest entry (so the
    /// build's SOURCE_DATE_EPOCH, and with it the package, does not depend on when it was made).
    public func changelogEntry(distribution: String, date: String) -> String {
        """
        pgvector (\(binaryVersion)) \(distribution); urgency=medium

          * Rebuilt from Debian's pgvector \(sourceVersion) (\(suite)) for PostgreSQL \(pgVersion) on
            Debian \(distribution) by HearthMinds bootstrap (make dist).

         -- HearthMinds bootstrap <root@localhost>  \(date)


        """
    }

    /// What a build made: the package file and its control fields.
    public struct Built: Sendable {
        public let path: String
        public let depends: String
        public let reused: Bool
    }

    /// Builds the package into `outputDirectory`, or finds it there from an earlier build.
    public func build(log: (String) -> Void = { print($0) }) async throws -> Built {
        try validate()
        let architecture = try await Command.check(["dpkg", "--print-architecture"]).trimmingCharacters(in: " \n")
        let target = outputDirectory + "/" + fileName(architecture: architecture)
        if FileSystem.exists(target) {
            let depends = try await checkPackage(target, architecture: architecture)
            log("pgvector package: \(target) (built before; remove it to rebuild)")
            return Built(path: target, depends: depends, reused: true)
        }
        let (mirror, codename) = try AptSources.hostDebianMirror(etcApt: etcApt, osRelease: osRelease)
        guard FileSystem.exists(PgvectorInstaller.debianArchiveKeyring) else {
            throw Failure("\(PgvectorInstaller.debianArchiveKeyring) is missing (debian-archive-keyring)")
        }
        guard geteuid() == 0 else {
            throw Failure(
                "building the pgvector package needs root (a root-owned work directory, apt's _apt sandbox): "
                    + "sudo make dist")
        }
        // The work directory is root's, as the installer's (PgvectorInstaller): apt downloads as
        // _apt into src/, read from there without following a link; the source tree is root's.
        let (workDirectory, work) = try PgvectorInstaller.makeWorkDirectory()
        defer { PgvectorInstaller.removeWorkDirectory(work) }

        // The pinned source, through a temporary apt configuration (the machine's own lists and
        // caches are not touched), checked against the archive's signed index.
        log("pgvector package: fetching Debian's pgvector \(sourceVersion) (\(suite)) from \(mirror)")
        try workDirectory.write("sources.list", PgvectorInstaller.sourcesLine(mirror: mirror, suite: suite), mode: 0o644)
        let apt = SystemAccount.lookup("_apt")
        let lists = try workDirectory.makeDirectory("lists", mode: 0o755)
        let cache = try workDirectory.makeDirectory("cache", mode: 0o755).makeDirectory("archives", mode: 0o755)
        for (parent, name) in [(lists, "partial"), (cache, "partial"), (workDirectory, "src")] {
            _ = try parent.makeDirectory(name, mode: 0o755, uid: apt?.uid ?? 0, gid: apt?.gid ?? 0)
        }
        let options = PgvectorInstaller.temporaryAptOptions(work: work)
        try await Apt.check(options + ["update"])
        let fetch = try await Apt.run(
            options + ["source", "--download-only", "pgvector=\(sourceVersion)"], workingDirectory: work + "/src")
        guard fetch.succeeded else {
            let offered = try? await Command.check(
                ["apt-cache"] + options + ["showsrc", "--only-source", "pgvector"], environment: Apt.environment)
            let versions = (offered ?? "").split(separator: "\n").filter { $0.hasPrefix("Version:") }
                .map { String($0.dropFirst("Version:".count)).trimmingCharacters(in: " ") }
            throw Failure(
                "\(Command.failure(fetch).message)\n\(suite) on \(mirror) offers pgvector "
                    + (versions.isEmpty ? "in no version" : versions.joined(separator: ", "))
                    + ", not the pinned \(sourceVersion): move the pin (PGVECTOR_DEB_SOURCE_VERSION and "
                    + "PGVECTOR_DEB_DSC_SHA256 in the Makefile) after checking the new source")
        }
        let sources = try OpenDirectory.open(work + "/src", trust: .reading)
        guard try sources.list().contains(dscName) else { throw Failure("apt-get source left no \(dscName)") }
        let digest = SHA256.hex(try sources.readBytes(dscName))
        guard digest == dscSHA256 else {
            throw Failure(
                "\(dscName) has SHA-256 \(digest), not the pinned \(dscSHA256): not the source this release pins")
        }
        // (dpkg-source checks the tarballs against the .dsc's checksums)
        let tree = work + "/build"
        try await Command.check(["dpkg-source", "--no-copy", "-x", dscName, tree], workingDirectory: work + "/src")

        // Our rebuild's version, the control file for PG_VERSION only, then Debian's build.
        let debian = try OpenDirectory.open(tree + "/debian")
        let date = try await Command.check(["dpkg-parsechangelog", "-l", tree + "/debian/changelog", "-S", "Date"])
            .trimmingCharacters(in: " \n")
        try debian.write(
            "changelog", changelogEntry(distribution: codename, date: date) + (try debian.readText("changelog")),
            mode: 0o644)
        let pgEnvironment: [String: String?] = ["PG_SUPPORTED_VERSIONS": String(pgVersion)]
        try await Command.check(["pg_buildext", "updatecontrol"], environment: pgEnvironment, workingDirectory: tree)
        // No minimum minor version of the server: pg_buildext would make the Depends
        // `postgresql-<PG> (>> <minor>)` from /etc/postgresql-common/minor_versions (the build
        // machine's newest minor, 15.20 from bookworm-security), which a host with only bookworm's
        // own suite (15.18) cannot satisfy. PostgreSQL keeps the ABI of extensions within a major
        // version (a module is checked by its major at load time, PG_MODULE_MAGIC), so the
        // package depends on `postgresql-<PG>` of any minor; the pgvector step proves the library
        // loads (CREATE EXTENSION and a distance) on the host's server. pg_buildext reads
        // debian/minor_versions before the machine's file: one with no line for PG.
        try debian.write("minor_versions", Self.minorVersionsText, mode: 0o644)
        let control = try debian.readText("control")
        guard control.contains("\nPackage: \(packageName)\n") else {
            throw Failure("pg_buildext updatecontrol made no \(packageName) in debian/control")
        }
        let missing = try await Command.run(["dpkg-checkbuilddeps", "-P", "nocheck"], workingDirectory: tree)
        guard missing.succeeded else {
            throw Failure(
                "the build packages of pgvector are missing here (make setup installs them):\n"
                    + (missing.stderr.isEmpty ? missing.stdout : missing.stderr))
        }
        log("pgvector package: building \(packageName) \(binaryVersion) (dpkg-buildpackage)")
        let jobs = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let built = try await Command.run(
            ["dpkg-buildpackage", "--build=binary", "--no-sign", "--build-profiles=nocheck"],
            environment: pgEnvironment.merging(["DEB_BUILD_OPTIONS": "nocheck parallel=\(jobs)"]) { $1 },
            workingDirectory: tree)
        guard built.succeeded else { throw Command.failure(built) }
        let made = work + "/" + fileName(architecture: architecture)
        let depends = try await checkPackage(made, architecture: architecture)

        try FileSystem.makeDirectories(outputDirectory)
        try await Command.check(["cp", "--", made, target + ".tmp"])
        guard rename(target + ".tmp", target) == 0 else {
            throw Failure("cannot rename \(target).tmp: \(FileSystem.errnoText())")
        }
        log("pgvector package: \(target)\n  Depends: \(depends)")
        return Built(path: target, depends: depends, reused: false)
    }

    /// The package must be ours: its name, version and architecture, a Depends on the server
    /// of PG_VERSION, and pgvector's library and control file (at the upstream version) for
    /// PG_VERSION. Returns its Depends.
    func checkPackage(_ path: String, architecture: String) async throws -> String {
        let fields = try await Command.check(["dpkg-deb", "--field", path, "Package", "Version", "Architecture", "Depends"])
        var values: [String: String] = [:]
        for line in fields.split(separator: "\n") {
            guard let colon = line.firstIndex(of: ":") else { continue }
            values[String(line[..<colon])] = String(line[line.index(after: colon)...]).trimmingCharacters(in: " ")
        }
        let depends = values["Depends"] ?? ""
        guard values["Package"] == packageName, values["Version"] == binaryVersion,
            values["Architecture"] == architecture
        else {
            throw Failure(
                "\(path) is \(values["Package"] ?? "?") \(values["Version"] ?? "?") \(values["Architecture"] ?? "?"), "
                    + "not \(packageName) \(binaryVersion) \(architecture)")
        }
        let server = "postgresql-\(pgVersion)"
        // on the server of any minor version: `postgresql-15`, no `(>> 15.x)`
        guard depends.split(separator: ",").contains(where: { String($0).trimmingCharacters(in: " ") == server }) else {
            throw Failure("\(path) does not depend on \(server) of any minor version (Depends: \(depends))")
        }
        let contents = try await Command.check(["dpkg-deb", "--contents", path])
        for file in ["./usr/lib/postgresql/\(pgVersion)/lib/vector.so", "./usr/share/postgresql/\(pgVersion)/extension/vector.control"]
        where !contents.contains(" " + file + "\n") {
            throw Failure("\(path) does not hold \(file)")
        }
        let (_, unpacked) = try PgvectorInstaller.makeWorkDirectory()
        defer { PgvectorInstaller.removeWorkDirectory(unpacked) }
        try await Command.check(["dpkg-deb", "--extract", path, unpacked])
        let control = try OpenDirectory.open(unpacked + "/usr/share/postgresql/\(pgVersion)/extension")
            .readText("vector.control")
        guard PgvectorVersions.controlDefaultVersion(control) == upstreamVersion else {
            throw Failure("\(path): vector.control is not at version \(upstreamVersion)")
        }
        return depends
    }
}
