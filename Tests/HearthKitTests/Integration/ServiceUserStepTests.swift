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

/// The service-user step against this machine's real account database (useradd, groupadd),
/// with a throwaway account name and home.
@Suite("service-user step (integration, real useradd)", .serialized)
struct ServiceUserStepTests {
    func config(user: String, home: String) throws -> HearthConfig {
        try loadConfig("HEARTHMINDS_SERVICE_USER=\(user)\nHEARTHMINDS_SERVICE_HOME=\(home)")
    }

    func cleanUp(_ user: String, _ home: String) async {
        _ = try? await Command.run(["userdel", user])
        _ = try? await Command.run(["groupdel", user])
        if home.hasPrefix("/tmp/") { TestFiles.removeTree(home) }
    }

    func runner(dryRun: Bool = false) -> StepRunner {
        StepRunner(console: Console(colour: false), log: nil, runID: "test", dryRun: dryRun)
    }

    @Test("dry run changes nothing; a run creates the account; a rerun applies nothing")
    func converges() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let user = "hmtest-\(Int.random(in: 10000..<99999))"
        let home = TestFiles.temporaryDirectory() + "/home"
        defer { Task { await cleanUp(user, home) } }
        let config = try config(user: user, home: home)

        let dry = await runner(dryRun: true).run(ServiceUserStep.make(config))
        #expect(dry.status == 0 && dry.pending == 4 && dry.changed == 0)
        #expect(SystemAccount.lookup(user) == nil)
        #expect(SystemAccount.groupID(user) == nil)
        #expect(!FileSystem.exists(home))

        let first = await runner().run(ServiceUserStep.make(config))
        #expect(first.status == 0)
        let account = try #require(SystemAccount.lookup(user))
        #expect(account.uid <= SystemAccount.systemUIDMax())
        #expect(account.gid == SystemAccount.groupID(user))
        #expect(account.home == home)
        #expect(account.shell == "/usr/sbin/nologin")
        let status = try #require(FileSystem.status(home))
        #expect(status.isDirectory && status.uid == account.uid && status.mode == 0o750)

        let second = await runner().run(ServiceUserStep.make(config))
        #expect(second.status == 0 && second.changed == 0)

        // A hand change (a login shell) is put right on the next run.
        try await Command.check(["usermod", "--shell", "/bin/bash", user])
        let third = await runner().run(ServiceUserStep.make(config))
        #expect(third.status == 0 && third.changed == 1)
        #expect(SystemAccount.lookup(user)?.shell == "/usr/sbin/nologin")
        await cleanUp(user, home)
    }

    @Test("an ordinary (non-system) user of that name is a false result, not silently changed")
    func ordinaryUser() async throws {
        let user = "hmtest-\(Int.random(in: 10000..<99999))"
        let home = TestFiles.temporaryDirectory() + "/home"
        try await Command.check(["useradd", "--no-create-home", "--shell", "/bin/sh", user])
        let before = try #require(SystemAccount.lookup(user))
        let outcome = await runner().run(ServiceUserStep.make(try config(user: user, home: home)))
        #expect(outcome.status == ExitStatus.failed)
        #expect(outcome.failedAction?.contains("system uid") == true)
        #expect(SystemAccount.lookup(user) == before)
        await cleanUp(user, home)
    }
}
