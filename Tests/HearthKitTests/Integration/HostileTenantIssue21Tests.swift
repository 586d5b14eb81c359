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

/// Issue 21 (B, C, F): what any local user or an AI could do to every run — hold every password
/// login with a FIFO in place of root's Kerberos credential cache, fail every login to its
/// database with a library that does not exist, veto the reset with a comment.
extension HostileTenantTests {
    /// A directory of root's outside /tmp (the Kerberos test mounts a tmpfs over /tmp).
    static func varTemporaryDirectory() -> String {
        var template = Array("/var/tmp/hm-issue21-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        return String(cString: template)
    }

    @Test("issue 21 B: an ordinary account's FIFO at /tmp/krb5cc_0 holds no password login: migrations, vector-index and verify are true in seconds")
    func kerberosCacheFIFO() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        let work = HostileTenantTests.varTemporaryDirectory()
        defer { TestFiles.spawn(["/bin/rm", "-rf", "--one-file-system", work]) }
        let book = PasswordBook(host.config, directory: host.s.clientDirectory)
        let env = work + "/hearthminds.env"
        try FileSystem.writeAtomically(
            env,
            "HEARTHMINDS_SERVICE_USER=\(host.s.serviceUser)\nPOSTGRES_PORT=\(host.s.cluster.port)\nAI_NAMES=logos,aletheia\nBACKUP=off\n"
                + "PGVECTOR_IVFFLAT_LISTS=auto\nLOGOS_PASSWORD=\(HostileTenantTests.logosPassword)\n"
                + "ALETHEIA_PASSWORD=\(try book.password("aletheia").reveal)\n"
                + "HEARTHMINDS_PASSWORD=\(try book.password(host.config.hearthmindsUser).reveal)\n",
            mode: 0o600, uid: 0, gid: 0)
        // In a mount namespace of its own, so that no other test of this machine meets the FIFO:
        // the cluster's socket directory where the steps look for it, a tmpfs over /tmp (mode
        // 1777, as /tmp), and in it the FIFO, made by an ordinary account (nobody) before root
        // made its own cache. psql with libpq's default gssencmode (prefer) shows the cause.
        let script = """
            mount --bind "$1" /run/postgresql || exit 3
            mount -t tmpfs -o mode=1777 hm-krb5 /tmp || exit 3
            setpriv --reuid=65534 --regid=65534 --clear-groups mkfifo /tmp/krb5cc_0 || exit 3
            timeout 5 psql "host=127.0.0.1 port=\(host.s.cluster.port) dbname=postgres user=logos gssencmode=prefer" -w -c 'SELECT 1' >/dev/null 2>&1
            echo "psql gssencmode=prefer exited $?"
            timeout 5 psql "host=127.0.0.1 port=\(host.s.cluster.port) dbname=postgres user=logos gssencmode=disable" -w -c 'SELECT 1' >/dev/null 2>&1
            echo "psql gssencmode=disable exited $?"
            for step in migrations vector-index verify; do
                start=$(date +%s%N)
                timeout 100 "$2/hm-$step" --config "$3"
                echo "hm-$step exited $? in $(( ($(date +%s%N) - start) / 1000000 )) ms"
            done
            """
        let result = try await Command.run(
            [
                "unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
                host.s.cluster.socketDirectory, String(Hostile.executable("x").dropLast(5)), env,
            ],
            environment: [
                "HEARTHMINDS_LOCK_DIR": work + "/run", "HEARTHMINDS_LOG": work + "/log.jsonl",
                "HEARTHMINDS_ROOT": TestFiles.repositoryRoot, "NO_COLOR": "1",
            ])
        let shown = result.stdout + result.stderr
        // The cause, confirmed: libpq's default reads the cache, and blocks on the FIFO.
        #expect(shown.contains("psql gssencmode=prefer exited 124"), "\(shown)")
        #expect(!shown.contains("psql gssencmode=disable exited 124"), "\(shown)")
        for step in ["migrations", "vector-index", "verify"] {
            let line = shown.split(separator: "\n").first { $0.hasPrefix("hm-\(step) exited") }.map(String.init) ?? ""
            #expect(line.hasPrefix("hm-\(step) exited 0 in "), "\(shown)")
            // (Before: each password login waited out its 15 s deadline, and the step was false.
            // The bound is loose for a loaded CI machine.)
            let ms = Int(line.split(separator: " ").dropLast().last ?? "") ?? Int.max
            #expect(ms < 40_000, "hm-\(step): \(line)")
        }
    }

    @Test("issue 21 C: an AI's local_preload_libraries = 'nonexistent' on its database and its role: the steps' sessions override it, the databases step removes it (a change, named), the host converges")
    func preloadLibraries() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        let tenant = try host.tenant("logos_db")
        try tenant.execute("ALTER DATABASE logos_db SET local_preload_libraries = 'nonexistent'")
        try tenant.execute("ALTER ROLE logos SET local_preload_libraries = 'nonexistent'")
        try tenant.execute("ALTER ROLE logos IN DATABASE hearthminds_db SET local_preload_libraries = 'nonexistent2'")
        // What it does to a login that does not override it: refused.
        #expect { _ = try host.s.admin("logos_db") } throws: { "\($0)".contains("nonexistent") }
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)
        // The migrations step alone (the role-level setting: the AI's own logins): true.
        let t0 = Clock.nowMs()
        let migrations = await runner.run(
            MigrationsStep.make(
                host.config, directory: host.migrations, socketDirectory: host.s.cluster.socketDirectory,
                clientDirectory: host.s.clientDirectory))
        #expect(migrations.status == 0)
        let verify = await runner.run(
            VerifyStep.make(host.config, server: host.s.server, migrations: host.migrations, clientDirectory: host.s.clientDirectory))
        #expect(verify.status == 0)
        #expect(Clock.nowMs() - t0 < 30_000)
        // The databases step removes the three settings: one change.
        let databases = await runner.run(DatabasesStep.make(host.config, server: host.s.server, clientDirectory: host.s.clientDirectory))
        #expect(databases.status == 0 && databases.changed == 1)
        #expect(try host.s.admin().query(
            "SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE c LIKE 'local_preload_libraries=%'").scalar == "0")
        _ = try host.s.admin("logos_db")
        let outcomes = try await host.runEverything("preload libraries removed")
        #expect(outcomes["databases"] == 0 && outcomes["migrations"] == 0 && outcomes["vector-index"] == 0 && outcomes["verify"] == 0, "\(outcomes)")
        #expect(await runner.run(DatabasesStep.make(host.config, server: host.s.server, clientDirectory: host.s.clientDirectory)).changed == 0)
        try host.expectNoEscalation("preload libraries")
    }

    @Test("issue 21 F: an AI's COMMENT ON DATABASE cannot veto the reset: the record of what the suite made (a superuser's table) decides; an old host with only the comment marks is migrated")
    func commentDoesNotVetoReset() async throws {
        let host = try await Host()
        defer { host.s.tearDown() }
        let admin = try host.s.admin()
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "h", dryRun: false)
        func databases() async -> StepRunner.Outcome {
            await runner.run(DatabasesStep.make(host.config, server: host.s.server, clientDirectory: host.s.clientDirectory))
        }
        let ours = "SELECT count(*) FROM pg_database WHERE datname IN ('logos_db', 'aletheia_db', 'hearthminds_db')"

        // The AI comments its database just before the reset: the reset drops it all the same.
        try host.tenant("logos_db").execute("COMMENT ON DATABASE logos_db IS 'mine'")
        let t0 = Clock.nowMs()
        let (reset, failed) = try await Hostile.run(
            ResetStep.make(host.config, server: host.s.server, clientDirectory: host.s.clientDirectory))
        #expect(reset.status == 0, "\(failed)")
        #expect(Clock.nowMs() - t0 < 30_000)
        #expect(try admin.query(ours).scalar == "0")
        #expect(try admin.query("SELECT count(*) FROM hm_bootstrap.databases").scalar == "0")

        // Built again: recorded. The record is the superuser's: the AI can neither read nor write it.
        #expect(await databases().status == 0)
        #expect(try admin.query("SELECT name FROM hm_bootstrap.databases ORDER BY 1").rows.map { $0[0] ?? "" }
            == ["aletheia_db", "hearthminds_db", "logos_db"])
        let logos = try host.s.server.login("postgres", user: "logos", password: Secret(HostileTenantTests.logosPassword))
        #expect { try logos.execute("DELETE FROM hm_bootstrap.databases") } throws: { "\($0)".contains("permission denied") }
        #expect { try logos.execute("CREATE TABLE hm_bootstrap.x (a int)") } throws: { "\($0)".contains("permission denied") }

        // The AI comments its database: the databases step puts the mark back (a courtesy).
        try host.tenant("logos_db").execute("COMMENT ON DATABASE logos_db IS 'mine'")
        let fixed = await databases()
        #expect(fixed.status == 0 && fixed.changed == 1)
        #expect(try admin.query("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = 'logos_db'").scalar
            == Marks.database)

        // An older host, with only the comment marks: the databases step makes the record from
        // what it converges, and the reset trusts it.
        try admin.execute("DROP SCHEMA hm_bootstrap CASCADE")
        let migrated = await databases()
        #expect(migrated.status == 0 && migrated.changed == 4, "\(migrated)")
        #expect(try admin.query("SELECT count(*) FROM hm_bootstrap.databases").scalar == "3")
        try host.tenant("logos_db").execute("COMMENT ON DATABASE logos_db IS NULL")
        #expect(try await Hostile.run(ResetStep.make(host.config, server: host.s.server, clientDirectory: host.s.clientDirectory)).0.status == 0)
        #expect(try admin.query(ours).scalar == "0")
    }
}
