import Testing
@testable import HearthKit

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
        #expect(throws: HearthError.self) { try AptSources.hostDebianMirror(etcApt: root + "/apt", osRelease: root + "/os-release") }
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
        #expect(throws: HearthError.self) {
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
