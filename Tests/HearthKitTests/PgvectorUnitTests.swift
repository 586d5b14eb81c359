import Testing
@testable import HearthCommands
@testable import HearthKit
@testable import HearthPgvector
@testable import HearthPostgres
@testable import HearthClient
@testable import HearthMigrations
@testable import HearthMonitoring
@testable import HearthBackup
@testable import HearthPG
@testable import HearthRunner
@testable import HearthConfiguration
@testable import HearthSystem

@Suite("apt sources: the host's Debian mirror")
struct AptSourcesTests {
    // Debian 12's default deb822 file (the mirror host is sample text, not ours).
    let deb822 = """
        Types: deb
        # http://snapshot.example.org/archive/debian/20250520T000000Z
        URIs: http://mirror.example.org/debian
        Suites: bookworm bookworm-updates
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

        Types: deb
        URIs: http://mirror.example.org/debian-security
        Suites: bookworm-security
        Components: main
        Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
        """

    @Test("deb822: the entry whose Suites hold the codename, not -security")
    func deb822Mirror() {
        let entries = AptSources.parseDeb822(deb822)
        #expect(entries.count == 2)
        #expect(entries[0].suites == ["bookworm", "bookworm-updates"])
        #expect(AptSources.debianMirror(entries, codename: "bookworm") == "http://mirror.example.org/debian")
        #expect(AptSources.debianMirror(entries, codename: "trixie") == nil)
    }

    @Test("deb822: security listed first, disabled stanzas, continuation lines, trailing slash")
    func deb822Shapes() {
        let text = """
            Types: deb deb-src
            URIs: https://mirror.example.org/debian-security/
            Suites: bookworm-security
            Components: main contrib

            Enabled: no
            Types: deb
            URIs: http://disabled.example.org/debian
            Suites: bookworm
            Components: main

            Types: deb
            URIs: https://one.example.org/debian/
             http://two.example.org/debian
            Suites: bookworm
            Components: contrib
             main non-free-firmware
            """
        let entries = AptSources.parseDeb822(text)
        #expect(entries.count == 2)
        #expect(entries[1].uris == ["https://one.example.org/debian/", "http://two.example.org/debian"])
        #expect(entries[1].components == ["contrib", "main", "non-free-firmware"])
        #expect(AptSources.debianMirror(entries, codename: "bookworm") == "https://one.example.org/debian")
    }

    @Test("one-line sources.list: options in brackets, comments, deb-src, security lines")
    func oneLine() {
        let text = """
            # deb cdrom:[Debian GNU/Linux 12.5.0 _Bookworm_ - Official amd64 DVD]/ bookworm main
            deb http://mirror.example.org/debian-security bookworm-security main
            deb [ arch=amd64 signed-by=/usr/share/keyrings/debian-archive-keyring.gpg ] http://mirror.example.org/debian/ bookworm main non-free-firmware
            deb-src http://mirror.example.org/debian/ bookworm main
            deb http://mirror.example.org/debian bookworm-updates main # updates
            """
        let entries = AptSources.parseOneLine(text)
        #expect(entries.count == 4)
        #expect(entries[1].uris == ["http://mirror.example.org/debian/"])
        #expect(entries[1].components == ["main", "non-free-firmware"])
        #expect(entries[3].components == ["main"])
        #expect(AptSources.debianMirror(entries, codename: "bookworm") == "http://mirror.example.org/debian")
    }

    @Test("no usable entry: only cdrom, only contrib, only -security")
    func none() {
        let entries = AptSources.parseOneLine("""
            deb cdrom:/media/cdrom bookworm main
            deb http://mirror.example.org/debian bookworm contrib
            deb http://mirror.example.org/debian-security bookworm-security main
            """)
        #expect(entries.count == 3)
        #expect(AptSources.debianMirror(entries, codename: "bookworm") == nil)
    }

    @Test("the codename comes from os-release")
    func codename() {
        #expect(AptSources.codename(osRelease: "NAME=\"Debian GNU/Linux\"\nVERSION_CODENAME=bookworm\nID=debian\n") == "bookworm")
        #expect(AptSources.codename(osRelease: "VERSION_CODENAME=\"trixie\"") == "trixie")
        #expect(AptSources.codename(osRelease: "ID=debian\n") == nil)
    }

    @Test("files on disk: deb822 first, then sources.list; a clear error when there is no mirror")
    func hostFiles() throws {
        let root = TestFiles.temporaryDirectory()
        defer { TestFiles.removeTree(root) }
        try FileSystem.makeDirectories(root + "/apt/sources.list.d")
        try FileSystem.writeAtomically(root + "/os-release", "ID=debian\nVERSION_CODENAME=bookworm\n")
        expectFailure(.error) { try AptSources.hostDebianMirror(etcApt: root + "/apt", osRelease: root + "/os-release") }
        do {
            _ = try AptSources.hostDebianMirror(etcApt: root + "/apt", osRelease: root + "/os-release")
        } catch {
            #expect(error.message.contains("no Debian mirror for 'bookworm main'"))
        }
        try FileSystem.writeAtomically(root + "/apt/sources.list", "deb http://old.example.org/debian bookworm main\n")
        #expect(try AptSources.hostDebianMirror(etcApt: root + "/apt", osRelease: root + "/os-release").mirror
            == "http://old.example.org/debian")
        try FileSystem.writeAtomically(root + "/apt/sources.list.d/debian.sources", deb822)
        let found = try AptSources.hostDebianMirror(etcApt: root + "/apt", osRelease: root + "/os-release")
        #expect(found.mirror == "http://mirror.example.org/debian" && found.codename == "bookworm")
        expectFailure(.error) {
            try AptSources.hostDebianMirror(etcApt: root + "/apt", osRelease: root + "/missing")
        }
    }

    @Test("the temporary apt configuration leaves the host's apt alone")
    func temporaryApt() {
        let options = PgvectorInstaller.temporaryAptOptions(work: "/tmp/w")
        #expect(options.contains("Dir::Etc::SourceList=/tmp/w/sources.list"))
        #expect(options.contains("Dir::Etc::SourceParts=/dev/null"))
        #expect(options.contains("Dir::State::Lists=/tmp/w/lists"))
        #expect(options.contains("Dir::Cache=/tmp/w/cache"))
        #expect(PgvectorInstaller.sourcesLine(mirror: "http://m.example.org/debian", suite: "trixie")
            == "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://m.example.org/debian trixie main\n")
    }
}

@Suite("pgvector versions")
struct PgvectorVersionTests {
    @Test("control file default_version")
    func control() {
        let text = """
            comment = 'vector data type and ivfflat and hnsw access methods'
            default_version = '0.8.0'
            module_pathname = '$libdir/vector'
            relocatable = true
            """
        #expect(PgvectorVersions.controlDefaultVersion(text) == "0.8.0")
        #expect(PgvectorVersions.controlDefaultVersion("default_version='0.7.4' # comment") == "0.7.4")
        #expect(PgvectorVersions.controlDefaultVersion("comment = 'x'") == nil)
    }

    @Test("upstream part of a Debian version")
    func upstream() {
        #expect(PgvectorVersions.upstream("0.8.0-1") == "0.8.0")
        #expect(PgvectorVersions.upstream("0.8.0-1.pgdg120+1") == "0.8.0")
        #expect(PgvectorVersions.upstream("1:0.8.0-2~bpo12+1") == "0.8.0")
        #expect(PgvectorVersions.upstream("0.8.0") == "0.8.0")
    }

    @Test(".dsc Version field, inside a PGP signature")
    func dsc() {
        let text = """
            -----BEGIN PGP SIGNED MESSAGE-----
            Hash: SHA512

            Format: 3.0 (quilt)
            Source: pgvector
            Binary: postgresql-17-pgvector
            Version: 0.8.0-1
            """
        #expect(PgvectorVersions.dscVersion(text) == "0.8.0-1")
        #expect(PgvectorVersions.dscVersion("Source: pgvector\n") == nil)
    }

    @Test("apt-cache policy candidate")
    func candidate() {
        let offered = """
            postgresql-15-pgvector:
              Installed: (none)
              Candidate: 0.8.0-1.pgdg120+1
              Version table:
                 0.8.0-1.pgdg120+1 500
            """
        #expect(PgvectorVersions.aptCandidate(offered) == "0.8.0-1.pgdg120+1")
        #expect(PgvectorVersions.aptCandidate("postgresql-15-pgvector:\n  Installed: (none)\n  Candidate: (none)\n") == nil)
        #expect(PgvectorVersions.aptCandidate("") == nil)
    }
}

@Suite("pgvector: the shipped package and the build's packages")
struct PgvectorPackagingTests {
    @Test("dpkg's record: installed, config files only, not installed")
    func dpkgParse() {
        let packages = DpkgPackages.parse(
            """
            gcc\tinstalled
            libc6:amd64\tinstalled
            cpp-12\tconfig-files
            make\tnot-installed
            half\thalf-configured
            \tinstalled
            garbage line

            """)
        #expect(packages.installed == ["gcc", "libc6:amd64", "half"])
        #expect(packages.configOnly == ["cpp-12"])
    }

    @Test("dpkg's status file: one package's state and version")
    func statusRecord() {
        let status = """
            Package: libc6
            Status: install ok installed
            Architecture: amd64
            Version: 2.36-9+deb12u10

            Package: postgresql-15-pgvector
            Status: install ok installed
            Priority: optional
            Version: 0.8.0-1~hm12+1
            Depends: postgresql-15 (>> 15.20)

            Package: cpp-12
            Status: deinstall ok config-files
            Version: 12.2.0-14

            """
        #expect(DpkgStatus.record(of: "postgresql-15-pgvector", inStatus: status)! == ("installed", "0.8.0-1~hm12+1"))
        #expect(DpkgStatus.record(of: "cpp-12", inStatus: status)! == ("config-files", "12.2.0-14"))
        #expect(DpkgStatus.record(of: "postgresql-15", inStatus: status) == nil)
        #expect(DpkgStatus.record(of: "x", statusFile: "/nonexistent/status") == nil)
    }

    @Test("what a build added: purged when new, removed when only its configuration files were there")
    func added() {
        let before = DpkgPackages(installed: ["libc6:amd64", "perl"], configOnly: ["cpp-12"])
        let after = DpkgPackages(installed: ["libc6:amd64", "perl", "gcc-12", "cpp-12", "make"], configOnly: [])
        let (purge, remove) = after.added(since: before)
        #expect(purge == ["gcc-12", "make"])
        #expect(remove == ["cpp-12"])
        #expect(before.added(since: before) == ([], []))
    }

    @Test("apt-get --simulate: what it would install and remove")
    func simulated() {
        let output = """
            Reading package lists...
            The following packages will be REMOVED:
              gcc* make*
            Purg gcc [4:12.2.0-3]
            Purg make [4.3-4.1]
            Remv libisl23:amd64 [0.25-1.1]
            Inst foo (1.0 Debian:12/stable [amd64])
            Conf foo (1.0 Debian:12/stable [amd64])
            """
        let changes = DpkgPackages.simulatedChanges(output)
        #expect(changes.remove == ["gcc", "make", "libisl23"])
        #expect(changes.install == ["foo"])
    }

    @Test("the shipped file: postgresql-<PG_VERSION>-pgvector for this architecture, nothing else")
    func shippedFile() throws {
        let installer = PgvectorInstaller(try loadConfig("PG_VERSION=15"))
        let names = [
            "postgresql-16-pgvector_0.8.0-1~hm12+1_amd64.deb", "postgresql-15-pgvector_0.8.0-1~hm12+1_arm64.deb",
            "postgresql-15-pgvector_0.8.0-1~hm12+1_amd64.deb", "postgresql-15-pgvector-dbgsym_0.8.0-1_amd64.deb",
            "README",
        ]
        #expect(installer.shippedFile(among: names, architecture: "amd64") == "postgresql-15-pgvector_0.8.0-1~hm12+1_amd64.deb")
        #expect(installer.shippedFile(among: names, architecture: "arm64") == "postgresql-15-pgvector_0.8.0-1~hm12+1_arm64.deb")
        #expect(installer.shippedFile(among: names, architecture: "riscv64") == nil)
        #expect(installer.shippedFile(among: ["postgresql-15-pgvector__amd64.deb"], architecture: "amd64") == nil)
    }

    @Test("shippedPackage: found in packages/, or why not (no directory, another version or architecture)")
    func shippedPackage() async throws {
        let directory = TestFiles.temporaryDirectory("hm-pgv-shipped")
        defer { TestFiles.removeTree(directory) }
        let architecture = try await Command.check(["dpkg", "--print-architecture"]).trimmingCharacters(in: " \n")
        var installer = PgvectorInstaller(try loadConfig("PG_VERSION=15"))

        installer.packageDirectory = directory + "/packages"
        guard case .none(let notTarball) = try await installer.shippedPackage() else {
            Issue.record("a missing packages/ directory found a package")
            return
        }
        #expect(notTarball.contains("not a release tarball"))

        try FileSystem.makeDirectories(directory + "/packages")
        try FileSystem.writeAtomically(directory + "/packages/postgresql-16-pgvector_0.8.0-1_\(architecture).deb", "x")
        guard case .none(let other) = try await installer.shippedPackage() else {
            Issue.record("a package of PostgreSQL 16 was taken for 15")
            return
        }
        #expect(other.contains("postgresql-15-pgvector_*_\(architecture).deb") && other.contains("postgresql-16-pgvector"))

        let file = directory + "/packages/postgresql-15-pgvector_0.8.0-1~hm12+1_\(architecture).deb"
        try FileSystem.writeAtomically(file, "x")
        #expect(try await installer.shippedPackage() == .package(file))

        installer.destDir = directory + "/stage"
        guard case .none = try await installer.shippedPackage() else {
            Issue.record("a staged install took the package")
            return
        }
    }

    @Test("the install's summary names the method, why, and the build's packages removed")
    func summary() {
        let shipped = PgvectorInstaller.Installed(
            method: .shipped, version: "0.8.0", why: "auto: no apt source offers postgresql-15-pgvector")
        #expect(shipped.summary == "pgvector 0.8.0 by method shipped (auto: no apt source offers postgresql-15-pgvector)")
        let built = PgvectorInstaller.Installed(
            method: .debianSource, version: "0.8.0", why: "PGVECTOR_INSTALL_METHOD=debian-source",
            removedBuildPackages: ["gcc", "make"])
        #expect(built.summary.hasSuffix("; the 2 packages installed for the build removed again"))
    }
}

@Suite("pgvector: make dist's package build")
struct PgvectorPackageBuildTests {
    func build(_ version: String = "0.8.0-1", suffix: String = "~hm12+1", sha: String = String(repeating: "a1", count: 32))
        -> PgvectorPackageBuild
    {
        PgvectorPackageBuild(
            pgVersion: 15, suite: "trixie", sourceVersion: version, dscSHA256: sha, versionSuffix: suffix,
            outputDirectory: "/tmp/out")
    }

    @Test("names: the .dsc, the package file (no epoch), the version of the rebuild")
    func names() {
        #expect(build().dscName == "pgvector_0.8.0-1.dsc")
        #expect(build().fileName(architecture: "amd64") == "postgresql-15-pgvector_0.8.0-1~hm12+1_amd64.deb")
        #expect(build("1:0.8.1-2").fileName(architecture: "arm64") == "postgresql-15-pgvector_0.8.1-2~hm12+1_arm64.deb")
        #expect(build("1:0.8.1-2").dscName == "pgvector_0.8.1-2.dsc")
        #expect(build().binaryVersion == "0.8.0-1~hm12+1" && build().upstreamVersion == "0.8.0")
        #expect(PgvectorVersions.withoutEpoch("2:1.0-1") == "1.0-1" && PgvectorVersions.withoutEpoch("1.0") == "1.0")
    }

    @Test("the pins are checked: a Debian version, a plain suffix, 64 hex digits, a suite name")
    func validate() throws {
        try build().validate()
        expectFailure(.error) { try build("0.8.0-1; rm -rf /").validate() }
        expectFailure(.error) { try build("").validate() }
        expectFailure(.error) { try build(suffix: "-hm1").validate() }
        expectFailure(.error) { try build(sha: "abc").validate() }
        expectFailure(.error) { try build(sha: String(repeating: "g", count: 64)).validate() }
        var other = build()
        other.suite = "trixie main"
        expectFailure(.error) { try other.validate() }
        // upper-case digests are taken as lower-case
        try build(sha: String(repeating: "A1", count: 32)).validate()
    }

    @Test("the changelog entry of the rebuild: version, distribution, the source's own date")
    func changelog() {
        let entry = build().changelogEntry(distribution: "bookworm", date: "Sat, 02 Nov 2024 13:19:07 +0100")
        let lines = entry.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "pgvector (0.8.0-1~hm12+1) bookworm; urgency=medium")
        #expect(entry.contains("\n -- HearthMinds bootstrap <root@localhost>  Sat, 02 Nov 2024 13:19:07 +0100\n\n"))
        #expect(entry.hasSuffix("\n\n"))
    }
}
