import Testing
@testable import HearthKit

@Suite("dpkg's status file, read in process")
struct DpkgStatusTests {
    @Test("a package is installed when its stanza's Status is 'install ok installed'")
    func parse() {
        let text = """
            Package: libpq5
            Status: install ok installed
            Architecture: amd64

            Package: postgresql-15
            Status: deinstall ok config-files
            Architecture: amd64

            Package: postgresql-client-15
            Architecture: amd64
            Status: install ok installed
            Description: the client
             Package: not-a-stanza
            """
        #expect(
            DpkgStatus.parse(text, wanted: ["libpq5", "postgresql-15", "postgresql-client-15", "not-a-stanza", "nothing"])
                == ["libpq5", "postgresql-client-15"])
    }

    @Test("pending journal entries: no answer (dpkg-query decides); a missing database: no answer")
    func pending() throws {
        let directory = TestFiles.temporaryDirectory("hm-dpkg")
        defer { TestFiles.removeTree(directory) }
        try FileSystem.writeAtomically(directory + "/status", "Package: a\nStatus: install ok installed\n\n")
        try FileSystem.makeDirectories(directory + "/updates")
        #expect(DpkgStatus.installed(["a", "b"], directory: directory) == ["a"])
        try FileSystem.writeAtomically(directory + "/updates/tmp.i", "")
        #expect(DpkgStatus.installed(["a"], directory: directory) == ["a"])
        try FileSystem.writeAtomically(directory + "/updates/0001", "Package: b\nStatus: install ok installed\n\n")
        #expect(DpkgStatus.installed(["a"], directory: directory) == nil)
        #expect(DpkgStatus.installed(["a"], directory: directory + "/none") == nil)
    }

    @Test("this host's status file says what dpkg-query says")
    func agreesWithDpkgQuery() async throws {
        let packages = ["libpq5", "postgresql-15", "postgresql-client-15", "bash", "hm-no-such-package", "postgresql-14"]
        let installed = try #require(DpkgStatus.installed(Set(packages)))
        for package in packages {
            let result = try await Command.run(["dpkg-query", "--show", "--showformat=${Status}", package])
            #expect(installed.contains(package) == (result.succeeded && result.stdout == "install ok installed"), "\(package)")
        }
    }
}
