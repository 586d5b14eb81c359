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

/// The postgres and pg-hba steps against real Debian clusters made by pg_createcluster
/// (hmtest<random>, a free port), removed after. Serialized: each makes and starts a cluster.
@Suite("postgres and pg-hba steps (integration, real Debian clusters)", .serialized)
struct HostStepsTests {
    func settings(_ connection: PGConnection) throws -> [String: String] {
        let rows = try connection.query(
            "SELECT name, setting FROM pg_settings WHERE name IN ('port', 'listen_addresses', 'password_encryption', "
                + "'server_encoding')"
        ).rows
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0[1]!) })
    }

    @Test("postgres: dry run changes nothing; a run creates, configures and starts the cluster; a rerun applies nothing")
    func postgresConverges() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let config = try cluster.config()
        let paths = cluster.paths

        let (dry, dryMs) = await timed(PostgresStep.make(config), dryRun: true)
        #expect(dry.status == 0 && dry.changed == 0)
        #expect(dry.pending >= 5)
        #expect(try DebianClusters.find(paths) == nil)
        #expect(!FileSystem.exists(paths.configDirectory))

        let (first, firstMs) = await timed(PostgresStep.make(config))
        #expect(first.status == 0)
        #expect(first.changed >= 3)
        let found = try #require(try DebianClusters.find(paths))
        #expect(found.online && found.port == cluster.port)
        #expect(try FileSystem.readText(paths.settingsFile) == ServerSettings(config).render(clusterID: paths.id))
        #expect(try PostgresStep.startMode(paths) == "auto")
        #expect(
            try FileSystem.readText(DebianClusters.createClusterDropIn).contains("\ncreate_main_cluster = false\n"))
        let connection = try PGServer.running(paths).admin()
        #expect(
            try settings(connection) == [
                "port": String(cluster.port), "listen_addresses": "127.0.0.1",
                "password_encryption": "scram-sha-256", "server_encoding": "UTF8",
            ])
        #expect(connection.serverVersion / 10000 == 15)

        let (second, secondMs) = await timed(PostgresStep.make(config))
        #expect(second.status == 0 && second.changed == 0)
        print("timing hm-postgres: dry run \(Int(dryMs)) ms, fresh cluster \(Int(firstMs)) ms, rerun \(Int(secondMs)) ms")

        // A hand edit of our settings file is replaced (the server kept the right settings).
        try FileSystem.writeAtomically(paths.settingsFile, "port = 1\n", mode: 0o644, trust: ClusterPaths.configTrust)
        let (edited, _) = await timed(PostgresStep.make(config))
        #expect(edited.status == 0 && edited.changed == 1)
        #expect(try FileSystem.readText(paths.settingsFile) == ServerSettings(config).render(clusterID: paths.id))

        // A new port: the file changes and the server restarts on it.
        let newPort = TestCluster.freePort()
        let moved = try cluster.config(port: newPort)
        let (restart, restartMs) = await timed(PostgresStep.make(moved))
        #expect(restart.status == 0 && restart.changed == 2)
        #expect(try DebianClusters.find(paths)?.port == newPort)
        #expect(try settings(try PGServer.running(paths).admin())["port"] == String(newPort))
        print("timing hm-postgres: port change with restart \(Int(restartMs)) ms")

        // A setting that a reload takes: password_encryption set back by a later conf.d file
        // is a clear false that names the file, not a silent success.
        let rogue = paths.confDirectory + "/zz-rogue.conf"
        try FileSystem.writeAtomically(
            rogue, "password_encryption = 'md5'\n", mode: 0o644, trust: ClusterPaths.configTrust)
        try await Command.check(["pg_ctlcluster", "15", cluster.name, "reload"])
        let (overridden, _) = await timed(PostgresStep.make(moved))
        #expect(overridden.status == ExitStatus.failed)
        #expect(overridden.failedAction?.contains("our settings") == true)
        FileSystem.remove(rogue, trust: ClusterPaths.configTrust)
        let (healed, _) = await timed(PostgresStep.make(moved))
        #expect(healed.status == 0 && healed.changed == 1)
        #expect(try settings(try PGServer.running(paths).admin())["password_encryption"] == "scram-sha-256")
    }

    @Test("the cluster probe reads what pg_lsclusters shows: online and stopped, a port from ALTER SYSTEM")
    func probeAgreesWithLsclusters() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        #expect(await testRunner().run(PostgresStep.make(try cluster.config())).status == 0)
        let paths = cluster.paths

        /// pg_lsclusters' line of the cluster, and the probe's view as such a line.
        func compare(_ when: String) async throws {
            let lines = try await Command.check(["pg_lsclusters", "--no-header", "15", cluster.name])
            let fields = Array(lines.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init).prefix(6))
            let info = try #require(try DebianClusters.find(paths))
            let probed = [
                String(info.version), info.name, info.port.map(String.init) ?? "?", info.online ? "online" : "down",
                info.owner ?? "?", info.dataDirectory ?? "?",
            ]
            #expect(probed == fields, "\(when)")
        }
        try await compare("running")
        let admin = try PGServer.running(paths).admin()
        let altered = TestCluster.freePort()
        try admin.execute("ALTER SYSTEM SET port = \(altered)")
        try await compare("port set by ALTER SYSTEM (not yet restarted)")
        #expect(try DebianClusters.find(paths)?.port == altered)
        try admin.execute("ALTER SYSTEM RESET port")
        try await Command.check(["pg_ctlcluster", "15", cluster.name, "stop"])
        try await compare("stopped")
        #expect(try DebianClusters.find(paths)?.online == false)
        #expect(try DebianClusters.list().contains { $0.id == paths.id && $0.port == cluster.port })
    }

    @Test("postgres: another cluster's port or a cluster name of another version is a false, before any change")
    func postgresConflicts() async throws {
        let owner = DebianTestCluster()
        defer { owner.drop() }
        #expect(await testRunner().run(PostgresStep.make(try owner.config())).status == 0)

        // Another cluster on the same port: false in a dry run and in a run; nothing is created.
        let other = DebianTestCluster()
        defer { other.drop() }
        for dryRun in [true, false] {
            let outcome = await testRunner(dryRun: dryRun).run(PostgresStep.make(try other.config(port: owner.port)))
            #expect(outcome.status == ExitStatus.failed, "dry run \(dryRun)")
            #expect(outcome.failedAction == "port \(owner.port) is not another cluster's")
        }
        #expect(try DebianClusters.find(other.paths) == nil)
        #expect(!FileSystem.exists(other.paths.configDirectory))

        // Our cluster's name with another PG_VERSION: false before any package is installed.
        let wrongVersion = try loadConfig(
            "PG_VERSION=16\nPG_CLUSTER_NAME=\(owner.name)\nPOSTGRES_PORT=\(TestCluster.freePort())")
        let outcome = await testRunner(dryRun: true).run(PostgresStep.make(wrongVersion))
        #expect(outcome.status == ExitStatus.failed)
        #expect(outcome.failedAction == "no cluster named \(owner.name) of another PostgreSQL version")
        #expect(!FileSystem.exists("/etc/postgresql/16/\(owner.name)"))
        // Both conflicts are looked for before anything is installed or written.
        let names = PostgresStep.make(wrongVersion).actions.map(\.name)
        let firstChange = try #require(names.firstIndex { $0.hasPrefix("postgresql-common creates") })
        #expect(names.firstIndex { $0.hasPrefix("no cluster named") }! < firstChange)
        #expect(names.firstIndex { $0.hasPrefix("port ") }! < firstChange)
        #expect(names.firstIndex { $0.hasPrefix("packages ") }! > firstChange)
    }

    @Test("postgres: a POSTGRES_HOST this host does not have is a false, in a dry run too")
    func postgresForeignHost() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        for dryRun in [true, false] {
            let outcome = await testRunner(dryRun: dryRun).run(
                PostgresStep.make(try cluster.config("POSTGRES_HOST=203.0.113.77")))
            #expect(outcome.status == ExitStatus.failed)
            #expect(outcome.failedAction == "POSTGRES_HOST 203.0.113.77 is an address of this host")
        }
        #expect(!FileSystem.exists(cluster.paths.configDirectory))
    }

    @Test("pg-hba: dry run changes nothing; a run writes both files and reloads; a rerun applies nothing; tampering is undone")
    func pgHbaConverges() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let service = "hmtest-svc\(Int.random(in: 1000..<9999))"
        defer {
            DebianTestClusters.spawnAndWait(["/usr/sbin/userdel", service])
            DebianTestClusters.spawnAndWait(["/usr/sbin/groupdel", service])
        }
        try await Command.check(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", service])
        let serviceAccount = try #require(SystemAccount.lookup(service))
        // Networks beyond loopback are hostssl: the server needs a certificate (this host may
        // have no snakeoil pair), given as PG_SSL_CERT_FILE and PG_SSL_KEY_FILE.
        let tls = try await TestTLS.make()
        defer { TestFiles.removeTree(tls.directory) }
        let config = try cluster.config(
            "HEARTHMINDS_SERVICE_USER=\(service)\nHEARTHMINDS_DB=hmtest_shared\nPOSTGRES_ADMIN_USER=hmtest_admin\n"
                + "PG_ALLOWED_NETWORKS=10.99.0.0/16,fd00:99::/64\nAI_NAMES=hmtest_ai,hmtest_other\n"
                + "PG_SSL_CERT_FILE=\(tls.cert)\nPG_SSL_KEY_FILE=\(tls.key)")
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        let paths = cluster.paths
        let templates = try HbaRenderer.Templates.load(root: TestFiles.repositoryRoot)
        let rendered = try HbaRenderer.render(templates, config)

        // Roles and databases to log in to: the service account's, two AIs with passwords and
        // their databases, a password role that is no AI, the admin.
        let admin = try PGServer.running(paths).admin()
        #expect(try admin.query("SHOW ssl").scalar == "on")
        for statement in [
            "CREATE ROLE \(try admin.identifier(service)) LOGIN",
            "CREATE DATABASE hmtest_shared OWNER \(try admin.identifier(service))",
            "CREATE ROLE hmtest_pw LOGIN PASSWORD \(try admin.literal(try admin.scramVerifier(Secret("s3cret pw"), user: "hmtest_pw")))",
            "CREATE ROLE hmtest_ai LOGIN PASSWORD \(try admin.literal(try admin.scramVerifier(Secret("s3cret pw"), user: "hmtest_ai")))",
            "CREATE ROLE hmtest_other LOGIN PASSWORD \(try admin.literal(try admin.scramVerifier(Secret("other pw"), user: "hmtest_other")))",
            "CREATE DATABASE hmtest_ai_db OWNER hmtest_ai",
            "CREATE DATABASE hmtest_other_db OWNER hmtest_other",
            "CREATE ROLE hmtest_admin LOGIN SUPERUSER",
        ] {
            try admin.execute(statement)
        }

        let before = try FileSystem.readText(paths.hbaFile)
        let (dry, dryMs) = await timed(try PgHbaStep.make(config, templates: templates), dryRun: true)
        #expect(dry.status == 0 && dry.changed == 0 && dry.pending >= 2)
        #expect(try FileSystem.readText(paths.hbaFile) == before)

        let (first, firstMs) = await timed(try PgHbaStep.make(config, templates: templates))
        #expect(first.status == 0 && first.changed == 3)
        #expect(try FileSystem.readText(paths.hbaFile) == rendered.hba)
        #expect(try FileSystem.readText(paths.identFile) == rendered.ident)
        let status = try #require(FileSystem.status(paths.hbaFile))
        #expect(status.mode == 0o640 && status.uid == SystemAccount.lookup("postgres")?.uid)

        let (second, secondMs) = await timed(try PgHbaStep.make(config, templates: templates))
        #expect(second.status == 0 && second.changed == 0)
        print("timing hm-pg-hba: dry run \(Int(dryMs)) ms, fresh cluster \(Int(firstMs)) ms, rerun \(Int(secondMs)) ms")

        // What the rules allow, by real logins.
        let (_, pid) = try DebianClusters.running(paths)
        func viaSocket(_ user: String, _ database: String = "postgres", as account: SystemAccount?, password: Secret? = nil)
            throws -> PGConnection
        {
            try PGConnection(
                PGTarget(
                    host: pid.socketDirectory, port: pid.port, database: database, user: user, password: password,
                    asSystemUser: account))
        }
        func tcp(_ user: String, _ database: String = "hmtest_ai_db", password: Secret?) throws -> PGConnection {
            try PGConnection(
                PGTarget(host: "127.0.0.1", port: pid.port, database: database, user: user, password: password))
        }
        func refusedByHba(_ body: () throws -> PGConnection) -> Bool {
            do { _ = try body(); return false } catch { return "\(error)".contains("no pg_hba.conf entry") }
        }
        // root administers: as postgres and as the admin role, through the map.
        #expect(try viaSocket("postgres", as: nil).query("SELECT current_user").scalar == "postgres")
        #expect(try viaSocket("hmtest_admin", as: nil).query("SELECT current_user").scalar == "hmtest_admin")
        // The service account reaches its own database by peer, and nothing else.
        #expect(
            try viaSocket(service, "hmtest_shared", as: serviceAccount).query("SELECT current_user").scalar == service)
        expectFailure(.database) { try viaSocket(service, "postgres", as: serviceAccount) }
        // root cannot pose as another role by peer.
        expectFailure(.database) { try viaSocket(service, "hmtest_shared", as: nil) }
        // An AI: scram-sha-256 over the socket and TCP to its own database and the shared one; a
        // wrong or missing password fails.
        let pw = Secret("s3cret pw")
        #expect(try tcp("hmtest_ai", password: pw).query("SELECT 1").scalar == "1")
        #expect(try tcp("hmtest_ai", "hmtest_shared", password: pw).query("SELECT 1").scalar == "1")
        #expect(try viaSocket("hmtest_ai", "hmtest_ai_db", as: nil, password: pw).query("SELECT 1").scalar == "1")
        expectFailure(.database) { try tcp("hmtest_ai", password: Secret("wrong")) }
        expectFailure(.database) { try tcp("hmtest_ai", password: nil) }
        // ... and nothing else, whatever the grants say: not another AI's database, not postgres
        // or template1 (a stolen AI password opens nothing more).
        try admin.execute("GRANT CONNECT ON DATABASE hmtest_other_db TO hmtest_ai")
        for database in ["hmtest_other_db", "postgres", "template1"] {
            #expect(refusedByHba { try tcp("hmtest_ai", database, password: pw) }, "\(database)")
            #expect(refusedByHba { try viaSocket("hmtest_ai", database, as: nil, password: pw) }, "\(database)")
        }
        // A password role that is no configured AI has no line at all.
        #expect(refusedByHba { try tcp("hmtest_pw", "hmtest_shared", password: pw) })

        // Tampering: a trust line appended and loaded lets anyone in ...
        try FileSystem.writeAtomically(
            paths.hbaFile, "host all all 127.0.0.1/32 trust\n" + rendered.hba, mode: 0o640,
            uid: status.uid, gid: status.gid, trust: ClusterPaths.configTrust)
        try await Command.check(["pg_ctlcluster", "15", cluster.name, "reload"])
        var trusted = false
        for _ in 0..<50 where !trusted {
            trusted = (try? tcp("hmtest_ai", password: nil)) != nil
            if !trusted { usleep(100_000) }
        }
        #expect(trusted, "the tampered file was loaded")
        // ... until the next run replaces the file and reloads.
        let (healed, healedMs) = await timed(try PgHbaStep.make(config, templates: templates))
        #expect(healed.status == 0 && healed.changed == 2)
        #expect(try FileSystem.readText(paths.hbaFile) == rendered.hba)
        expectFailure(.database) { try tcp("hmtest_ai", password: nil) }
        let methods = try admin.query("SELECT DISTINCT auth_method FROM pg_hba_file_rules ORDER BY 1").rows.map { $0[0]! }
        #expect(methods == ["peer", "scram-sha-256"])
        print("timing hm-pg-hba: after tampering \(Int(healedMs)) ms")
    }

    @Test("pg-hba: without the cluster it is a false (pending in a dry run), and nothing is written")
    func pgHbaWithoutCluster() async throws {
        let cluster = DebianTestCluster()
        let config = try cluster.config()
        let templates = try HbaRenderer.Templates.load(root: TestFiles.repositoryRoot)
        let dry = await testRunner(dryRun: true).run(try PgHbaStep.make(config, templates: templates))
        #expect(dry.status == 0 && dry.changed == 0)
        let run = await testRunner().run(try PgHbaStep.make(config, templates: templates))
        #expect(run.status == ExitStatus.failed)
        #expect(run.failedAction?.hasPrefix("cluster \(cluster.paths.id) is running") == true)
        #expect(!FileSystem.exists(cluster.paths.configDirectory))
        cluster.drop()
    }
}

/// A self-signed certificate and key for a test cluster's TLS (this host may have no snakeoil
/// pair): the key is the postgres account's, mode 0600, as the server requires.
struct TestTLS {
    let directory: String
    let cert: String
    let key: String

    static func make() async throws -> TestTLS {
        let directory = TestFiles.temporaryDirectory("hm-tls")
        chmod(directory, 0o755)
        let tls = TestTLS(directory: directory, cert: directory + "/server.crt", key: directory + "/server.key")
        try await Command.check([
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=hm-test",
            "-keyout", tls.key, "-out", tls.cert,
        ])
        let postgres = try #require(SystemAccount.lookup("postgres"))
        try FileSystem.setOwner(tls.key, uid: postgres.uid, gid: postgres.gid, mode: 0o600)
        chmod(tls.cert, 0o644)
        return tls
    }
}
