import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// Installs pgvector's files (vector.control, vector.so, its SQL scripts) into PostgreSQL
/// PG_VERSION, by the configured method. Debian 12 has no pgvector package, so `auto` tries,
/// in order: the `apt` package when the host's sources offer one (PGDG), then the package the
/// release tarball ships (`shipped`, built by `make dist` from Debian's source package), then
/// Debian's source package from a newer suite (`debian-source`), then a pinned tarball
/// (`tarball`, only when PGVECTOR_SOURCE is set). Sources are built against the cluster's own
/// pg_config, portable (no -march=native); the packages a build installs (the compiler, the
/// server headers) are removed again afterwards, so no toolchain stays on the host.
public struct PgvectorInstaller: Sendable {
    public typealias Method = HearthConfig.PgvectorMethod

    public let pgVersion: Int
    public let method: Method
    public let suite: String
    public let source: String
    public let sha256: String
    /// Where apt's configuration lives (the host's; tests may point elsewhere).
    public var etcApt = "/etc/apt"
    public var osRelease = "/etc/os-release"
    /// A staging root for `make install DESTDIR=` (tests build into one and leave the host's
    /// PostgreSQL alone); empty for the host itself. The apt method does not stage.
    public var destDir = ""
    /// Where the release tarball ships its packages (`packages/` beside install.sh); nil when
    /// this is not a release tarball.
    public var packageDirectory: String? = ShippedFiles.root().map { $0 + "/packages" }

    public init(_ config: HearthConfig) {
        pgVersion = config.pgVersion
        method = config.pgvectorMethod
        suite = config.pgvectorSuite
        source = config.pgvectorSource
        sha256 = config.pgvectorSHA256
    }

    // MARK: Debian's layout for PostgreSQL PG_VERSION

    public var binDirectory: String { "/usr/lib/postgresql/\(pgVersion)/bin" }
    public var pgConfig: String { binDirectory + "/pg_config" }
    public var serverBinary: String { binDirectory + "/postgres" }
    public var controlFile: String { destDir + "/usr/share/postgresql/\(pgVersion)/extension/vector.control" }
    public var libraryFile: String { destDir + "/usr/lib/postgresql/\(pgVersion)/lib/vector.so" }
    public var aptPackage: String { "postgresql-\(pgVersion)-pgvector" }
    public static let debianArchiveKeyring = "/usr/share/keyrings/debian-archive-keyring.gpg"

    /// The pgvector version installed for PG_VERSION (the control file's default_version when
    /// the library is there too), or nil. Reads two files: cheap on a converged host.
    public func installedVersion() -> String? {
        guard FileSystem.exists(libraryFile), let text = try? FileSystem.readText(controlFile) else { return nil }
        return PgvectorVersions.controlDefaultVersion(text)
    }

    /// What an install did: the method that did it, the pgvector version it installed, why that
    /// method, and the packages a build installed and removed again.
    public struct Installed: Sendable, Equatable {
        public let method: Method
        public let version: String
        public var why = ""
        public var removedBuildPackages: [String] = []

        /// One line for the console and the log.
        public var summary: String {
            var text = "pgvector \(version) by method \(method.rawValue)" + (why.isEmpty ? "" : " (\(why))")
            if !removedBuildPackages.isEmpty {
                text += "; the \(removedBuildPackages.count) packages installed for the build removed again"
            }
            return text
        }
    }

    /// Installs by the configured method (for `auto`, the first that applies), saying which and why.
    public func install() async throws -> Installed {
        let chosen = "PGVECTOR_INSTALL_METHOD=\(method.rawValue)"
        switch method {
        case .apt:
            guard let version = try await installFromApt(updateWhenMissing: true) else {
                throw Failure(
                    "PGVECTOR_INSTALL_METHOD=apt: the host's apt sources offer no \(aptPackage) (apt-cache policy "
                        + "shows no candidate); add the PostgreSQL project's repository (PGDG) or use "
                        + "shipped, debian-source or tarball")
            }
            return Installed(method: .apt, version: version, why: chosen)
        case .shipped:
            switch try await shippedPackage() {
            case .package(let path):
                return Installed(method: .shipped, version: try await installShipped(path), why: "\(chosen): \(path)")
            case .none(let reason):
                throw Failure("PGVECTOR_INSTALL_METHOD=shipped: \(reason)")
            }
        case .debianSource:
            return try await building(.debianSource, why: chosen) { try await installFromDebianSource() }
        case .tarball:
            return try await building(.tarball, why: chosen) { try await installFromTarball() }
        case .auto:
            if let version = try await installFromApt(updateWhenMissing: false) {
                return Installed(method: .apt, version: version, why: "auto: the host's apt sources offer \(aptPackage)")
            }
            var passed = ["auto: no apt source offers \(aptPackage)"]
            switch try await shippedPackage() {
            case .package(let path):
                let version = try await installShipped(path)
                return Installed(
                    method: .shipped, version: version,
                    why: (passed + ["the release ships \(path)"]).joined(separator: "; "))
            case .none(let reason):
                passed.append(reason)
            }
            do {
                return try await building(.debianSource, why: passed.joined(separator: "; ")) {
                    try await installFromDebianSource()
                }
            } catch {
                guard !source.isEmpty else { throw error }
                do {
                    passed.append("debian-source failed")
                    return try await building(.tarball, why: passed.joined(separator: "; ")) {
                        try await installFromTarball()
                    }
                } catch let tarballError {
                    throw Failure("debian-source failed: \(error)\nthen tarball failed: \(tarballError)")
                }
            }
        }
    }

    /// Runs a method that builds from source; afterwards, whether it worked or not, every package
    /// dpkg has then that it did not have before (the compiler, make, the server headers and
    /// what they pulled in) is removed again: no toolchain stays on the host.
    func building(_ method: Method, why: String, _ build: () async throws -> String) async throws -> Installed {
        let before = try await DpkgPackages.current()
        let version: String
        do {
            version = try await build()
        } catch {
            do {
                try await DpkgPackages.removeAdded(since: before)
            } catch let removal {
                throw Failure("\(error)\nand afterwards: \(removal)")
            }
            throw error
        }
        let removed = try await DpkgPackages.removeAdded(since: before)
        return Installed(method: method, version: version, why: why, removedBuildPackages: removed)
    }

    /// What the install action says about pgvector when it was there already: its version, and
    /// the package that owns it (or that no package does: built from source).
    public func installedNote() async -> String {
        guard let version = installedVersion() else { return "" }
        // (dpkg's status file, read: a converged host's step spawns no process for this)
        if let record = DpkgStatus.record(of: aptPackage), record.state == "installed" {
            return "pgvector \(version) installed already (package \(aptPackage) \(record.version))"
        }
        return "pgvector \(version) installed already (its files belong to no package: built from source)"
    }

    // MARK: apt

    /// The candidate version of postgresql-<ver>-pgvector in the host's apt sources, or nil.
    public func aptCandidate() async throws -> String? {
        let result = try await Command.run(["apt-cache", "policy", aptPackage])
        guard result.succeeded else { return nil }
        return PgvectorVersions.aptCandidate(result.stdout)
    }

    /// Installs the package when the host's sources offer it; nil when they do not.
    func installFromApt(updateWhenMissing: Bool) async throws -> String? {
        guard destDir.isEmpty else { return nil }
        var candidate = try await aptCandidate()
        if candidate == nil && updateWhenMissing {
            try await Apt.check(["update"])
            candidate = try await aptCandidate()
        }
        guard candidate != nil else { return nil }
        try await Apt.check(["-y", "--no-install-recommends", "install", aptPackage])
        let installed = try await Command.check(["dpkg-query", "-W", "-f", "${Version}", aptPackage])
        return PgvectorVersions.upstream(installed.trimmingCharacters(in: " \n"))
    }

    // MARK: build dependencies

    /// The packages a source build needs (build-essential's C part, dpkg-dev for
    /// dpkg-source, the server headers and PGXS).
    public var buildPackages: [String] {
        ["gcc", "make", "libc6-dev", "dpkg-dev", "postgresql-server-dev-\(pgVersion)"]
    }

    static func isInstalled(_ package: String) async -> Bool {
        guard let result = try? await Command.run(["dpkg-query", "-W", "-f", "${Status}", package]) else { return false }
        return result.succeeded && result.stdout.contains("install ok installed")
    }

    /// apt-get installs the build packages that are missing (after an apt-get update when the
    /// first try fails on stale lists).
    func ensureBuildDependencies() async throws {
        var missing: [String] = []
        for package in buildPackages where !(await Self.isInstalled(package)) { missing.append(package) }
        guard !missing.isEmpty else { return }
        try await Apt.install(missing)
    }

    // MARK: debian-source

    /// The temporary apt configuration of a debian-source fetch: the options that point apt at
    /// `work` for its sources, lists and caches, and the one sources line. The host's own
    /// configuration, lists and caches are not touched.
    public static func temporaryAptOptions(work: String) -> [String] {
        [
            "-o", "Dir::Etc::SourceList=\(work)/sources.list",
            "-o", "Dir::Etc::SourceParts=/dev/null",
            "-o", "Dir::State::Lists=\(work)/lists",
            "-o", "Dir::Cache=\(work)/cache",
        ]
    }

    public static func sourcesLine(mirror: String, suite: String) -> String {
        "deb-src [signed-by=\(debianArchiveKeyring)] \(mirror) \(suite) main\n"
    }

    /// Fetches Debian's `pgvector` source package for PGVECTOR_DEBIAN_SUITE from the host's
    /// own mirror (checked by apt against the archive's signed Sources index), then builds
    /// and installs it. Returns the upstream version built.
    func installFromDebianSource() async throws -> String {
        let (mirror, _) = try AptSources.hostDebianMirror(etcApt: etcApt, osRelease: osRelease)
        guard FileSystem.exists(Self.debianArchiveKeyring) else {
            throw Failure("\(Self.debianArchiveKeyring) is missing (package debian-archive-keyring): apt cannot check the source package")
        }
        try await ensureBuildDependencies()
        let (workDirectory, work) = try Self.makeWorkDirectory()
        defer { Self.removeWorkDirectory(work) }

        try workDirectory.write("sources.list", Self.sourcesLine(mirror: mirror, suite: suite), mode: 0o644)
        // apt downloads as its _apt account where it can write.
        let apt = SystemAccount.lookup("_apt")
        let lists = try workDirectory.makeDirectory("lists", mode: 0o755)
        let cache = try workDirectory.makeDirectory("cache", mode: 0o755).makeDirectory("archives", mode: 0o755)
        for (parent, name) in [(lists, "partial"), (cache, "partial"), (workDirectory, "src")] {
            _ = try parent.makeDirectory(name, mode: 0o755, uid: apt?.uid ?? 0, gid: apt?.gid ?? 0)
        }
        let options = Self.temporaryAptOptions(work: work)
        try await Apt.check(options + ["update"])
        try await Apt.check(options + ["source", "--download-only", "pgvector"], workingDirectory: work + "/src")
        // src is _apt's: read there without following a link.
        let sources = try OpenDirectory.open(work + "/src", trust: .reading)
        guard let dsc = try sources.list().first(where: { $0.hasSuffix(".dsc") }) else {
            throw Failure("apt-get source pgvector (suite \(suite), \(mirror)) left no .dsc file")
        }
        let dscText = try sources.readText(dsc)
        guard let debianVersion = PgvectorVersions.dscVersion(dscText) else {
            throw Failure("\(dsc) has no Version field")
        }
        try await Command.check(
            ["dpkg-source", "--no-copy", "-x", dsc, work + "/build"], workingDirectory: work + "/src")
        let version = PgvectorVersions.upstream(debianVersion)
        try await build(work + "/build", expecting: version)
        return version
    }

    // MARK: tarball

    /// Fetches PGVECTOR_SOURCE (a path or an http(s) URL), checks it against PGVECTOR_SHA256
    /// before anything is extracted, then builds and installs it.
    func installFromTarball() async throws -> String {
        guard !source.isEmpty, !sha256.isEmpty else {
            throw Failure("the tarball method needs PGVECTOR_SOURCE and PGVECTOR_SHA256")
        }
        let (workDirectory, work) = try Self.makeWorkDirectory()
        defer { Self.removeWorkDirectory(work) }
        let archive = try await fetchVerifiedTarball(into: work)
        try await ensureBuildDependencies()
        _ = try workDirectory.makeDirectory("build", mode: 0o755)
        try await Command.check(
            ["tar", "-x", "-f", archive, "-C", work + "/build", "--no-same-owner", "--no-same-permissions"])
        let tree = try Self.sourceTree(work + "/build")
        guard let text = try? FileSystem.readText(tree + "/vector.control"),
            let version = PgvectorVersions.controlDefaultVersion(text)
        else {
            throw Failure("PGVECTOR_SOURCE \(source): not a pgvector source tree (no vector.control with a default_version)")
        }
        try await build(tree, expecting: version)
        return version
    }

    /// A copy of PGVECTOR_SOURCE in `work`, root's (downloaded first when it is a URL), after
    /// the copy's SHA-256 has matched PGVECTOR_SHA256: what is hashed is what is extracted,
    /// whatever happens to the original (or the download) afterwards. On a mismatch the copy
    /// is gone.
    public func fetchVerifiedTarball(into work: String) async throws -> String {
        let workDirectory = try OpenDirectory.open(work)
        let bytes: [UInt8]
        if source.hasPrefix("http://") || source.hasPrefix("https://") {
            // A fresh download directory (a stale one is no part of this fetch).
            try workDirectory.removeTree(Self.downloadDirectory)
            _ = try workDirectory.makeDirectory(Self.downloadDirectory, mode: 0o755)
            let download = work + "/" + Self.downloadDirectory + "/" + Self.copyName
            if Command.resolve("curl") != nil {
                try await Command.check(["curl", "-fsSL", "--proto", "=http,https", "-o", download, "--", source])
            } else {
                if let apt = SystemAccount.lookup("_apt") {
                    try workDirectory.setOwner(Self.downloadDirectory, uid: apt.uid, gid: apt.gid, mode: 0o755)
                }
                try await Command.check(["/usr/lib/apt/apt-helper", "download-file", source, download])
            }
            // The download directory may be _apt's: read without following a link.
            bytes = try OpenDirectory.open(work + "/" + Self.downloadDirectory, trust: .reading).readBytes(Self.copyName)
            try workDirectory.removeTree(Self.downloadDirectory)
        } else {
            guard source.hasPrefix("/") || source.hasPrefix("./") || !source.contains(":") else {
                throw Failure("PGVECTOR_SOURCE \(source): not a local path or an http(s) URL")
            }
            guard FileSystem.exists(source), !FileSystem.isDirectory(source) else {
                throw Failure("PGVECTOR_SOURCE \(source): no such file")
            }
            bytes = try FileSystem.readBytes(source)
        }
        // Copied first: the hash and the extraction both read the copy.
        try workDirectory.write(Self.copyName, bytes: bytes, mode: 0o644, uid: 0, gid: 0)
        let path = work + "/" + Self.copyName
        // The copy read back and hashed in this process (libcrypto): no sha256sum to start.
        let actual = SHA256.hex(try workDirectory.readBytes(Self.copyName))
        guard actual == sha256 else {
            try? workDirectory.remove(Self.copyName)
            throw Failure(
                "PGVECTOR_SHA256: PGVECTOR_SOURCE \(source) has SHA-256 \(actual), not the configured \(sha256); "
                    + "nothing was extracted")
        }
        return path
    }

    static let downloadDirectory = "download"
    /// The copy of PGVECTOR_SOURCE in the work directory that is hashed and extracted.
    static let copyName = "pgvector.tar"

    /// The directory of an extracted tarball that holds pgvector's Makefile: the one
    /// top-level directory, or the extraction directory itself.
    static func sourceTree(_ directory: String) throws -> String {
        if FileSystem.exists(directory + "/Makefile") { return directory }
        let entries = try FileSystem.list(directory)
        if entries.count == 1, FileSystem.exists(directory + "/" + entries[0] + "/Makefile") {
            return directory + "/" + entries[0]
        }
        throw Failure("the tarball holds no single source directory with a Makefile (found: \(entries.joined(separator: ", ")))")
    }

    // MARK: build

    /// `make` and `make install` against PG_VERSION's pg_config, portable: OPTFLAGS empty
    /// replaces pgvector's default -march=native. Then the installed control file must state
    /// the version built.
    func build(_ tree: String, expecting version: String) async throws {
        guard FileSystem.exists(pgConfig) else {
            throw Failure("\(pgConfig) is missing: postgresql-server-dev-\(pgVersion) did not install it")
        }
        let jobs = max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        let variables = ["PG_CONFIG=\(pgConfig)", "OPTFLAGS="]
        try await Command.check(["make", "-C", tree, "-j\(jobs)"] + variables)
        try await Command.check(
            ["make", "-C", tree, "install"] + variables + (destDir.isEmpty ? [] : ["DESTDIR=\(destDir)"]))
        guard let installed = installedVersion() else {
            throw Failure("make install left no \(controlFile) and \(libraryFile)")
        }
        guard installed == version else {
            throw Failure("\(controlFile) states version \(installed), but \(version) was built")
        }
    }

    // MARK: work directories

    /// A new directory /tmp/hm-pgvector-XXXXXX (mkdtemp), root's, mode 0755 set on its
    /// descriptor (apt's _apt account must reach the directories it downloads into).
    static func makeWorkDirectory() throws -> (OpenDirectory, String) {
        var template = Array("\(workPrefix)XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer -> String? in
            mkdtemp(buffer.baseAddress!) == nil ? nil : String(cString: buffer.baseAddress!)
        }
        guard let path = made else {
            throw Failure("cannot make a temporary directory in /tmp: \(FileSystem.errnoText())")
        }
        let (parent, name) = try OpenDirectory.split(path)
        try OpenDirectory.open(parent).setOwner(name, uid: 0, gid: 0, mode: 0o755, owner: 0)
        return (try OpenDirectory.open(path), path)
    }

    static let workPrefix = "/tmp/hm-pgvector-"

    /// Removes a work directory by descriptors (what apt and the build left in it included).
    static func removeWorkDirectory(_ path: String) {
        guard path.hasPrefix(workPrefix), let (parent, name) = try? OpenDirectory.split(path) else { return }
        try? OpenDirectory.open(parent).removeTree(name, directoryOnly: true)
    }
}
