#if canImport(Glibc)
import Glibc
#endif
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

/// The unit tests that need root (a command as another account, files of another owner): here,
/// beside the integration tiers, so that `make check` runs without root.
@Suite("as root: commands as another account, configuration files of another owner")
struct AsRootTests {
    @Test("a command can run as another system account")
    func asUser() async throws {
        let nobody = try #require(SystemAccount.lookup("nobody"))
        #expect(try await Command.check(["id", "-u"], asUser: nobody) == "\(nobody.uid)\n")
    }

    @Test("a child's environment is minimal: no *_PASSWORD or configuration key of ours even when our environment has them; PATH, LC_ALL, HOME and proxies pass (proxies only to root's children)")
    func minimalEnvironment() async throws {
        // Our own environment, as an operator may give it (the configuration's environment
        // layer). Given as the parent's environment, not set in this process: the suites run side
        // by side, and a proxy or AI_NAMES set here reached the children and configurations of
        // the tests beside this one (an apt-get of another suite went to proxy.invalid).
        var ours = currentEnvironment()
        ours.merge(
            ["HEARTHMINDS_PASSWORD": "env-secret-1", "LOGOS_PASSWORD": "env-secret-2",
             "POSTGRES_ADMIN_PASSWORD": "env-secret-3", "AI_NAMES": "logos", "http_proxy": "http://proxy.invalid:3128",
             "PATH": "/opt/hm-test/bin:/usr/bin"]) { _, new in new }
        let child = try Command.childEnvironment(adding: ["DEBIAN_FRONTEND": "noninteractive"], parent: ours)
        #expect(!child.values.contains { $0.contains("env-secret") })
        #expect(!child.keys.contains { $0.uppercased().hasSuffix("_PASSWORD") })
        #expect(child["AI_NAMES"] == nil)
        #expect(Set(child.keys).subtracting(Command.passedThrough) == ["PATH", "LC_ALL", "HOME", "DEBIAN_FRONTEND"])
        #expect(child["LC_ALL"] == "C.UTF-8" && child["http_proxy"] == "http://proxy.invalid:3128")
        #expect(child["PATH"]?.hasPrefix("/opt/hm-test/bin:/usr/bin:") == true && child["PATH"]?.contains("/usr/sbin") == true)

        // As another account: its HOME, USER and LOGNAME, and no proxy (a proxy URL may hold
        // credentials, and that account reads its own processes' /proc/<pid>/environ).
        let nobody = try #require(SystemAccount.lookup("nobody"))
        let asNobody = try Command.childEnvironment(asUser: nobody, parent: ours)
        #expect(!asNobody.values.contains { $0.contains("env-secret") })
        #expect(asNobody["USER"] == "nobody" && asNobody["HOME"] == nobody.home)
        #expect(!asNobody.keys.contains { $0.lowercased().contains("proxy") })

        // And a real child gets exactly that environment, computed from this process's own.
        func printedEnvironment(_ text: String) -> [String: String] {
            var printed: [String: String] = [:]
            for line in text.split(separator: "\n") {
                guard let eq = line.firstIndex(of: "=") else { continue }
                printed[String(line[..<eq])] = String(line[line.index(after: eq)...])
            }
            return printed
        }
        let printed = try await Command.check(["env"], environment: ["DEBIAN_FRONTEND": "noninteractive"])
        #expect(printedEnvironment(printed) == (try Command.childEnvironment(adding: ["DEBIAN_FRONTEND": "noninteractive"])))
        let printedAsNobody = try await Command.check(["env"], asUser: nobody)
        #expect(printedEnvironment(printedAsNobody) == (try Command.childEnvironment(asUser: nobody)))

        // A caller cannot hand a password to a child through the environment.
        await expectFailureAsync(.error) { try await Command.check(["env"], environment: ["X_PASSWORD": "no"]) }
    }

    @Test("a configuration file that holds passwords must be root's and unreadable by others; a host file writable by others is refused")
    func filePermissions() throws {
        let path = try TestFiles.write("HEARTHMINDS_PASSWORD=hunter2\n")
        defer { TestFiles.removeTree(String(path.prefix(upTo: path.lastIndex(of: "/")!))) }
        #expect(throws: Never.self) { try HearthConfig.load(ConfigSources(hostFile: path)) }
        for mode: mode_t in [0o644, 0o604] {
            chmod(path, mode)
            #expect {
                try HearthConfig.load(ConfigSources(hostFile: path))
            } throws: { error in
                let text = "\(error)"
                return text.contains("every user may read it") && text.contains("chmod 600 \(path)") && !text.contains("hunter2")
            }
        }
        // The seed's fixture as it sits in the repository (0644, with passwords) is refused too.
        expectFailure(.configuration) {
            try HearthConfig.load(ConfigSources(hostFile: TestFiles.fixture("seed-example.env")))
        }
        // No secret, but writable by others: it decides what root does.
        try FileSystem.writeAtomically(path, "POSTGRES_PORT=5433\n", mode: 0o666)
        chmod(path, 0o666)
        #expect { try HearthConfig.load(ConfigSources(hostFile: path)) } throws: { "\($0)".contains("writable by other users") }
        // Owned by another user.
        chmod(path, 0o600)
        chown(path, 65534, 65534)
        #expect { try HearthConfig.load(ConfigSources(hostFile: path)) } throws: { "\($0)".contains("not root") }
    }

    @Test("the client files' preview: diffs with every password masked, a link named and not followed, a stray file removed")
    func clientFilesPreview() throws {
        let directory = TestFiles.temporaryDirectory() + "/etc"
        defer { TestFiles.removeTree(String(directory.dropLast(4))) }
        let server = PGServer(socketDirectory: "/s", port: 5432, tcpHost: "127.0.0.1")
        // Before: written with these passwords, and an AI since removed.
        let before = try loadConfig("AI_NAMES=logos,aletheia,nous\nLOGOS_PASSWORD=old-logos-pw\nHEARTHMINDS_PASSWORD=manager-pw\nALETHEIA_PASSWORD=aletheia-pw\nNOUS_PASSWORD=nous-pw")
        try ClientFiles(config: before, server: server, passwords: PasswordBook(before, directory: directory), directory: directory)
            .write()
        // A link in place of aletheia's file, to a file of secrets: not followed.
        let secrets = String(directory.dropLast(4)) + "/secrets"
        try FileSystem.writeAtomically(secrets, "TOP-SECRET-CONTENT\n", mode: 0o600)
        unlink(directory + "/pgpass/aletheia")
        symlink(secrets, directory + "/pgpass/aletheia")

        let after = try loadConfig("AI_NAMES=logos,aletheia\nLOGOS_PASSWORD=new-logos-pw\nHEARTHMINDS_PASSWORD=manager-pw\nALETHEIA_PASSWORD=aletheia-pw")
        let book = PasswordBook(after, directory: directory)
        let preview = try ClientFiles.preview(config: after, server: server, passwords: book, directory: directory)
        for secret in ["old-logos-pw", "new-logos-pw", "manager-pw", "aletheia-pw", "nous-pw", "TOP-SECRET-CONTENT"] {
            #expect(!preview.contains(secret), "\(secret) in:\n\(preview)")
        }
        #expect(preview.contains("""
            --- \(directory)/pgpass/logos
            +++ \(directory)/pgpass/logos
            @@ -1,2 +1,2 @@
            -127.0.0.1:5432:logos_db:logos:<old password>
            -127.0.0.1:5432:hearthminds_db:logos:<old password>
            +127.0.0.1:5432:logos_db:logos:<new password>
            +127.0.0.1:5432:hearthminds_db:logos:<new password>
            """), "\(preview)")
        // The manager's file is unchanged: no diff for it; nor for pg_service.conf's unchanged part.
        #expect(!preview.contains("pgpass/hearthminds"))
        #expect(preview.contains("\(directory)/pgpass/aletheia is a symbolic link"))
        #expect(preview.contains("+127.0.0.1:5432:aletheia_db:aletheia:<password>") == false)
        #expect(preview.contains("+127.0.0.1:5432:aletheia_db:aletheia:<new password>"))
        #expect(preview.contains("--- \(directory)/pgpass/nous\n+++ /dev/null\n@@ -1,2 +0,0 @@\n-127.0.0.1:5432:nous_db:nous:<old password>"))
        #expect(preview.contains("-[nous]"))
        // Nothing was written by the preview.
        #expect(try FileSystem.readText(directory + "/pgpass/logos").contains("old-logos-pw"))
    }

    @Test("clusters are read from their files, as pg_lsclusters lists them: includes, conf.d, ALTER SYSTEM, defaults")
    func probe() throws {
        let root = TestFiles.temporaryDirectory("hm-probe")
        defer { TestFiles.removeTree(root) }
        func write(_ path: String, _ text: String) throws {
            try FileSystem.makeDirectories(root + "/" + String(path[..<path.lastIndex(of: "/")!]))
            try FileSystem.writeAtomically(root + "/" + path, text, mode: 0o644)
        }
        // 15/alpha: the port from conf.d (later files win), a later ALTER SYSTEM port above both.
        try write("etc/15/alpha/postgresql.conf", """
            data_directory = '\(root)/data/alpha'\t\t# use data in another directory
            port = 5433\t\t\t\t# (change requires restart)
            include_dir = 'conf.d'\t\t\t# include files ending in '.conf' from
            some garbage line the probe skips
            """)
        try write("etc/15/alpha/conf.d/10-a.conf", "port = 5500\n")
        try write("etc/15/alpha/conf.d/20-b.conf", "port = 5501\ninclude 'more/extra.conf'\n")
        try write("etc/15/alpha/conf.d/.hidden.conf", "port = 1\n")
        try write("etc/15/alpha/conf.d/ignored.txt", "port = 2\n")
        try write("etc/15/alpha/conf.d/more/extra.conf", "listen_addresses = 'localhost'\n")
        try write("data/alpha/PG_VERSION", "15\n")
        // 15/beta: no port anywhere (5432), its ALTER SYSTEM file sets one; no data_directory: pgdata link.
        try write("etc/15/beta/postgresql.conf", "# nothing\n")
        try write("data/beta/postgresql.auto.conf", "port = '6000'\ndata_directory = '/elsewhere'\n")
        symlink(root + "/data/beta", root + "/etc/15/beta/pgdata")
        // 16/gamma: the defaults; not a cluster: 15/empty (no postgresql.conf), 9.6, a file.
        try write("etc/16/gamma/postgresql.conf", "\n")
        try FileSystem.makeDirectories(root + "/etc/15/empty")
        try write("etc/9.6/old/postgresql.conf", "port = 7000\n")
        try write("etc/15/file", "x\n")
        // A postgresql.conf that is a link to a file of root's: listed, not read.
        try write("other/secret", "port = 9999\n")
        try FileSystem.makeDirectories(root + "/etc/15/linked")
        symlink(root + "/other/secret", root + "/etc/15/linked/postgresql.conf")

        let probe = ClusterProbe(configRoot: root + "/etc")
        let clusters = try probe.clusters()
        #expect(clusters.map(\.id) == ["15/alpha", "15/beta", "15/linked", "16/gamma"])
        let alpha = try #require(clusters.first)
        // (its data directory is root's here: no owner, as postgresql-common accepts none that is root)
        #expect(alpha.port == 5501 && alpha.dataDirectory == root + "/data/alpha" && alpha.owner == nil && !alpha.online)
        #expect(clusters[1].port == 6000 && clusters[1].dataDirectory == root + "/data/beta")
        #expect(clusters[2].port == nil && clusters[2].dataDirectory == nil && clusters[2].owner == nil)
        #expect(clusters[3].port == 5432 && clusters[3].dataDirectory == nil)
        #expect(try probe.cluster(version: 15, name: "alpha") == alpha)
        #expect(try probe.cluster(version: 15, name: "empty") == nil)
        #expect(try probe.cluster(version: 17, name: "alpha") == nil)
        #expect(try ClusterProbe(configRoot: root + "/none").clusters().isEmpty)
    }
}
