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

/// The lines shown under the console line of the action named `action` (a dry run's preview or
/// detail), without their indent.
func shownUnder(_ action: String, in console: String) -> [String] {
    let lines = console.split(separator: "\n", omittingEmptySubsequences: false)
    guard let at = lines.firstIndex(where: { $0.hasPrefix("  [") && $0.contains("] " + action + "  (") }) else { return [] }
    return lines[(at + 1)...].prefix(while: { $0.hasPrefix("      ") }).map { String($0.dropFirst(6)) }
}

/// The changed lines of a unified diff (without its ---/+++ headers).
func changedLines(_ lines: [String]) -> [String] {
    lines.filter { ($0.hasPrefix("-") && !$0.hasPrefix("---")) || ($0.hasPrefix("+") && !$0.hasPrefix("+++")) }
}

/// The log's record of `action` (the last one of it).
func logRecord(_ log: String, step: String, action: String) -> String? {
    log.split(separator: "\n").last { $0.contains("\"step\":\(JSON.string(step))") && $0.contains("\"action\":\(JSON.string(action))") }
        .map(String.init)
}

/// Dry runs that show the change (issue 12): the diffs of the files the suite owns, the
/// statements of roles and grants with masked verifiers, and checks that cannot be made yet,
/// against real PostgreSQL 15 clusters.
@Suite("dry run: diffs, statements and unknown checks (integration, real PostgreSQL 15)", .serialized)
struct DryRunIntegrationTests {
    func runner(_ logPath: String, dryRun: Bool = true) throws -> (StepRunner, Transcript) {
        let transcript = Transcript()
        return (
            StepRunner(
                console: Console(colour: false, transcript: transcript), log: try JSONLog(path: logPath), runID: "dry",
                dryRun: dryRun),
            transcript
        )
    }

    @Test("pg-hba: after a hand edit, the dry run's diff shows exactly the edited lines (and a mode change); a link in place of pg_ident.conf is named, not followed")
    func pgHbaHandEdit() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let config = try cluster.config()
        let paths = cluster.paths
        let templates = try HbaRenderer.Templates.load(root: TestFiles.repositoryRoot)
        let rendered = try HbaRenderer.render(templates, config)
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        #expect(await testRunner().run(try PgHbaStep.make(config, templates: templates)).status == 0)

        // The hand edit: one line's method changed, a trust line appended, the mode opened.
        var lines = rendered.hba.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        let index = try #require(lines.firstIndex { !$0.hasPrefix("#") && $0.hasSuffix("scram-sha-256") })
        let original = lines[index]
        lines[index] = original.replacing("scram-sha-256", with: "md5")
        let edited = lines.joined(separator: "\n") + "host all all 0.0.0.0/0 trust\n"
        let status = try #require(FileSystem.status(paths.hbaFile))
        try FileSystem.writeAtomically(
            paths.hbaFile, edited, mode: 0o644, uid: status.uid, gid: status.gid, trust: ClusterPaths.configTrust)

        let directory = TestFiles.temporaryDirectory()
        defer { TestFiles.removeTree(directory) }
        let (dry, transcript) = try runner(directory + "/log.jsonl")
        let outcome = await dry.run(try PgHbaStep.make(config, templates: templates))
        #expect(outcome.status == 0 && outcome.changed == 0)
        let console = transcript.text
        let hbaAction = "\(paths.hbaFile): peer for system accounts, scram-sha-256 for passwords, no trust/md5"
        let shown = shownUnder(hbaAction, in: console)
        #expect(shown.first == "\(paths.hbaFile): mode 0644 -> 0640", "\(console)")
        #expect(shown.contains("--- \(paths.hbaFile)") && shown.contains("+++ \(paths.hbaFile)"))
        #expect(changedLines(shown) == ["-" + lines[index], "+" + original, "-host all all 0.0.0.0/0 trust"], "\(shown)")
        // pg_ident.conf is right: no diff; the edit made the server's load stale: would change.
        let identAction = "\(paths.identFile): admin map \(HbaRenderer.adminMap) (postgres, root)"
        #expect(console.contains("[ok]" + String(repeating: " ", count: 11) + identAction) && shownUnder(identAction, in: console).isEmpty, "\(console)")
        // The same diff in the log, as the record's preview.
        let log = try FileSystem.readText(directory + "/log.jsonl")
        let record = try #require(logRecord(log, step: "pg-hba", action: hbaAction))
        #expect(record.contains(#""status":"would_change""#))
        #expect(record.contains("\"preview\":\(JSON.string(shown.joined(separator: "\n")))"))
        // Nothing changed.
        #expect(try FileSystem.readText(paths.hbaFile) == edited)

        // A link in place of pg_ident.conf, to a file of root's: named, never read through.
        let secret = directory + "/secret"
        try FileSystem.writeAtomically(secret, "SECRET-IDENT-MARKER\n", mode: 0o600)
        let identStatus = try #require(FileSystem.status(paths.identFile))
        let link = paths.identFile
        #expect(unlink(link) == 0 && symlink(secret, link) == 0)
        defer {
            unlink(link)
            try? FileSystem.writeAtomically(
                link, rendered.ident, mode: 0o640, uid: identStatus.uid, gid: identStatus.gid, trust: ClusterPaths.configTrust)
        }
        let (again, linkTranscript) = try runner(directory + "/log2.jsonl")
        #expect(await again.run(try PgHbaStep.make(config, templates: templates)).status == 0)
        let identShown = shownUnder(identAction, in: linkTranscript.text)
        #expect(identShown.first?.hasPrefix("\(paths.identFile) is a symbolic link (owned by root") == true, "\(identShown)")
        #expect(identShown.contains("--- /dev/null"))
        #expect(!linkTranscript.text.contains("SECRET-IDENT-MARKER"))
        #expect(!(try FileSystem.readText(directory + "/log2.jsonl")).contains("SECRET-IDENT-MARKER"))
    }

    @Test("a cluster-less host: pg-hba, databases and migrations report unknown, needing the postgres step, not would change; the postgres step shows its settings file as new")
    func freshHost() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let config = try cluster.config("AI_NAMES=logos")
        let directory = TestFiles.temporaryDirectory()
        defer { TestFiles.removeTree(directory) }
        let logPath = directory + "/log.jsonl"

        let (dry, transcript) = try runner(logPath)
        let hba = await dry.run(try PgHbaStep.make(config, templates: HbaRenderer.Templates.load(root: TestFiles.repositoryRoot)))
        #expect(hba.status == 0 && hba.unknown == 5 && hba.wouldChange == 0 && hba.needs == ["postgres"], "\(hba)")
        var console = transcript.text
        #expect(console.contains("[unknown: needs the postgres step] cluster \(cluster.paths.id) is running"))
        #expect(console.contains("pg-hba: dry run, 0 of 5 actions would change, 5 unknown (needs the postgres step)"), "\(console)")
        #expect(!console.contains("[would change]"))
        let log = try FileSystem.readText(logPath)
        let records = log.split(separator: "\n").filter { $0.contains(#""step":"pg-hba""#) && !$0.contains(#""action":"(step)""#) }
        #expect(records.count == 5)
        #expect(records.allSatisfy { $0.contains(#""status":"unknown""#) && $0.contains(#""needs":"postgres""#) })
        #expect(log.contains(#""would_change":0,"unknown":5"#))

        // The databases and migrations steps, with no server where the configuration points.
        let nowhere = PGServer(socketDirectory: directory + "/no-socket", port: TestCluster.freePort(), tcpHost: "127.0.0.1")
        let clients = directory + "/etc"
        let (dbDry, dbTranscript) = try runner(logPath)
        let databases = await dbDry.run(DatabasesStep.make(config, server: nowhere, clientDirectory: clients, jobs: 1))
        #expect(databases.status == 0 && databases.wouldChange == 1 && databases.unknown == databases.pending - 1)
        #expect(databases.needs == ["postgres"], "\(databases)")
        console = dbTranscript.text
        #expect(console.contains("[unknown: needs the postgres step] role logos"), "\(console)")
        // The client files are new: diffs from /dev/null, the passwords to be generated masked.
        #expect(console.contains("      --- /dev/null\n      +++ \(clients)/pgpass/logos\n      @@ -0,0 +1,2 @@\n"))
        #expect(console.contains("      +127.0.0.1:\(nowhere.port):logos_db:logos:<generated password>\n"))
        #expect(!FileSystem.exists(clients))

        let (mDry, mTranscript) = try runner(logPath)
        let migrations = await mDry.run(
            MigrationsStep.make(
                config, directory: TestFiles.repositoryRoot + "/Migrations", socketDirectory: nowhere.socketDirectory,
                clientDirectory: clients, jobs: 1))
        #expect(migrations.status == 0 && migrations.unknown == 2 && migrations.needs == ["postgres"], "\(mTranscript.text)")
        #expect(mTranscript.text.contains("[unknown: needs the postgres step] database logos_db at the head revision"))

        // The postgres step itself: the cluster would be made; its settings file is new (a diff
        // from /dev/null), what needs the cluster is unknown until the earlier actions have run.
        let (pDry, pTranscript) = try runner(logPath)
        let postgres = await pDry.run(PostgresStep.make(config))
        #expect(postgres.status == 0 && postgres.needs == ["postgres"] && postgres.unknown >= 2, "\(pTranscript.text)")
        let settings = shownUnder(
            "\(cluster.paths.settingsFile): listen_addresses '127.0.0.1', port \(cluster.port), scram-sha-256",
            in: pTranscript.text)
        let lines = ServerSettings(config).render(clusterID: cluster.paths.id).split(separator: "\n", omittingEmptySubsequences: false).count - 1
        #expect(Array(settings.prefix(3)) == ["--- /dev/null", "+++ \(cluster.paths.settingsFile)", "@@ -0,0 +1,\(lines) @@"], "\(settings)")
        // (the monitoring group: pg_stat_statements preloaded)
        #expect(settings.contains("+shared_preload_libraries = 'pg_stat_statements'"))
        #expect(settings.contains("+port = \(cluster.port)"))
        // The server sized to this machine (issue 24): each tuned setting is shown.
        for (name, _) in ServerSettings(config).tuning.values {
            #expect(settings.contains { $0.hasPrefix("+\(name) ") }, "\(name) not in the dry run's diff")
        }
        #expect(pTranscript.text.contains("[unknown: needs an earlier action] cluster \(cluster.paths.id) answers"))
        #expect(!FileSystem.exists(cluster.paths.configDirectory))
    }

    @Test("install.sh --dry-run: the summary counts each step's would change and unknown apart, and adds them up")
    func installSummary() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let tree = try TestFiles.installTree(for: cluster)
        defer { TestFiles.removeTree(tree) }
        let run = try await Command.run(
            [tree + "/install.sh", "--only", "pg-hba", "--dry-run", "--config", tree + "/hm.env"],
            environment: ["HEARTHMINDS_LOCK_DIR": tree + "/lock"])
        #expect(run.status == 0, "\(run.stdout)\n\(run.stderr)")
        #expect(run.stdout.contains("[unknown: needs the postgres step] cluster \(cluster.paths.id) is running"))
        let summary = run.stdout.split(separator: "\n").filter { $0.hasPrefix("  pg-hba ") }
        #expect(summary.count == 1 && summary[0].hasSuffix("s  0 would change, 5 unknown (needs postgres)"), "\(run.stdout)")
        #expect(
            run.stdout.contains(
                "dry run complete: 0 action(s) would change, 5 unknown until an earlier step has run; nothing was changed"),
            "\(run.stdout)")
        #expect(!FileSystem.exists(cluster.paths.configDirectory))
    }

    @Test("databases: a changed password is an ALTER ROLE with a masked verifier and masked client files, never the password; the plan shown is the plan run; a probes setting is an ALTER DATABASE")
    func changedPassword() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        let first = "first-Secret-pw-1234"
        let second = "second-Secret-pw-5678"
        let config = try s.config("AI_NAMES=logos\nLOGOS_PASSWORD=\(first)\nEMBEDDING_DIM=8")
        #expect(try await s.run(config).status == 0)
        #expect(try await s.verify(config).status == 0)

        // The password changes, a grant to PUBLIC is added by hand, the probes are set by hand.
        let changed = try s.config("AI_NAMES=logos\nLOGOS_PASSWORD=\(second)\nEMBEDDING_DIM=8")
        try s.admin().execute("GRANT CONNECT ON DATABASE logos_db TO PUBLIC")
        try s.admin().execute("ALTER DATABASE logos_db SET ivfflat.probes = 77")
        let directory = TestFiles.temporaryDirectory()
        defer { TestFiles.removeTree(directory) }
        let logPath = directory + "/log.jsonl"

        // The vector-index step's setting (its owner logs in with the password still in force):
        // put back by the statement it shows.
        let (vDry, vTranscript) = try runner(logPath)
        #expect(await vDry.run(s.vectorIndexStep(config)).status == 0)
        let wanted = try #require(VectorIndex.wantedSetting(config, indexLists: 100))
        #expect(
            shownUnder("database logos_db: \(VectorIndexStep.describeSetting(config)!)", in: vTranscript.text)
                == ["ALTER DATABASE \"logos_db\" SET \(wanted.name) = \(wanted.value);"], "\(vTranscript.text)")

        let (dry, transcript) = try runner(logPath)
        let outcome = await dry.run(DatabasesStep.make(changed, server: s.server, clientDirectory: s.clientDirectory, jobs: 1))
        #expect(outcome.status == 0 && outcome.changed == 0 && outcome.unknown == 0 && outcome.wouldChange == 3, "\(transcript.text)")
        let console = transcript.text

        let role = shownUnder("role logos: LOGIN, no other attribute, password, marked", in: console)
        let iterations = try SCRAMVerifier.serverIterations(s.admin())
        #expect(
            role == [
                "COMMENT ON ROLE \"logos\" IS '\(Marks.role)';",
                "ALTER ROLE \"logos\" WITH NOSUPERUSER INHERIT NOCREATEROLE NOCREATEDB LOGIN NOREPLICATION NOBYPASSRLS "
                    + "CONNECTION LIMIT -1 VALID UNTIL 'infinity';",
                "ALTER ROLE \"logos\" PASSWORD '<SCRAM-SHA-256 verifier (\(iterations) iterations), masked>';",
            ], "\(console)")
        // (the monitoring role connects too: issue 23)
        let grants = shownUnder("database logos_db: CONNECT for logos, hearthminds-monitor; none for PUBLIC", in: console)
        #expect(grants.first == "REVOKE ALL ON DATABASE \"logos_db\" FROM PUBLIC;" && grants.count == 4, "\(grants)")
        let clients = shownUnder(
            "client files: \(s.clientDirectory)/pg_service.conf and password files (0600), a password for every role", in: console)
        #expect(changedLines(clients) == [
            "-127.0.0.1:\(s.cluster.port):logos_db:logos:<old password>",
            "-127.0.0.1:\(s.cluster.port):hearthminds_db:logos:<old password>",
            "+127.0.0.1:\(s.cluster.port):logos_db:logos:<new password>",
            "+127.0.0.1:\(s.cluster.port):hearthminds_db:logos:<new password>",
        ], "\(clients)")
        let log = try FileSystem.readText(logPath)
        for text in [console, log] {
            #expect(!text.contains(first) && !text.contains(second))
            #expect(!text.contains("SCRAM-SHA-256$"))
        }
        #expect(log.contains(#""preview":"COMMENT ON ROLE \"logos\""#))

        // The run runs that plan: the new password logs in, the grant is gone, nothing is left to do.
        #expect(try await s.run(changed).status == 0)
        #expect(try s.cluster.connectTCP(database: "logos_db", user: "logos", password: Secret(second)).query("SELECT 1").scalar == "1")
        #expect(try s.admin().query("SELECT has_database_privilege('public', 'logos_db', 'CONNECT')").scalar == "f")
        let (after, afterTranscript) = try runner(logPath)
        let converged = await after.run(DatabasesStep.make(changed, server: s.server, clientDirectory: s.clientDirectory))
        #expect(converged.pending == 0, "\(afterTranscript.text)")
    }
}
