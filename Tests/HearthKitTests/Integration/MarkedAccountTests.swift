#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HearthKit
@testable import HearthPgvector
@testable import HearthPostgres
@testable import HearthClient
@testable import HearthMigrations
@testable import HearthMonitoring
@testable import HearthBackup
@testable import HearthRunner
@testable import HearthSystem

/// The monitoring step's account (MarkedAccount, as the service-user step's) against this
/// machine's real account database, with a throwaway name: in the serialized suite of the
/// service-user step, which adds and removes accounts too.
extension ServiceUserStepTests {
    /// The shadow file's password field of `user`.
    func shadowPassword(_ user: String) throws -> String? {
        for line in try FileSystem.readText("/etc/shadow").split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            if fields.count > 1, fields[0] == user { return String(fields[1]) }
        }
        return nil
    }

    @Test("monitoring account: made a system account of its own group, no shell, no home, its password locked, marked; a rerun changes nothing; a login shell or an unlocked password put right")
    func monitoringAccount() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let user = "hmtest-\(Int.random(in: 10000..<99999))"
        defer { Task { await cleanUp(user, "/nonexistent") } }
        func step() -> Step { Step(MonitoringStep.name, MonitoringStep.accountActions(user)) }

        let dry = await runner(dryRun: true).run(step())
        #expect(dry.status == 0 && dry.pending == 2 && dry.changed == 0)
        #expect(SystemAccount.lookup(user) == nil && SystemAccount.groupID(user) == nil)

        let first = await runner().run(step())
        #expect(first.status == 0 && first.changed == 2)
        let account = try #require(SystemAccount.lookup(user))
        #expect(account.uid <= SystemAccount.systemUIDMax())
        #expect(account.gid == SystemAccount.groupID(user))
        #expect(account.home == MonitoringStep.home && account.shell == MonitoringStep.shell)
        #expect(account.comment == MonitoringStep.mark)
        #expect(!FileSystem.exists(MonitoringStep.home))
        let locked = try #require(try shadowPassword(user))
        #expect(locked.hasPrefix("!") || locked.hasPrefix("*"), "\(locked)")

        let second = await runner().run(step())
        #expect(second.status == 0 && second.changed == 0)

        // By hand: a login shell and a password (a hash of nothing anyone knows): both put right.
        try await Command.check(["usermod", "--shell", "/bin/bash", "--password", "$6$x$y", user])
        #expect(try shadowPassword(user) == "$6$x$y")
        let third = await runner().run(step())
        #expect(third.status == 0 && third.changed == 1)
        #expect(SystemAccount.lookup(user)?.shell == MonitoringStep.shell)
        #expect(try shadowPassword(user)?.hasPrefix("!") == true)
        await cleanUp(user, "/nonexistent")
    }

    @Test("monitoring account: a system account of that name without our mark is not adopted (named, unchanged)")
    func unmarkedMonitoringAccount() async throws {
        let user = "hmtest-\(Int.random(in: 10000..<99999))"
        defer { Task { await cleanUp(user, "/nonexistent") } }
        try await Command.check(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", user])
        let before = try #require(SystemAccount.lookup(user))
        for dryRun in [true, false] {
            let (outcome, detail) = try await Hostile.run(
                Step(MonitoringStep.name, MonitoringStep.accountActions(user)), dryRun: dryRun)
            #expect(outcome.status == ExitStatus.failed, "dry run \(dryRun)")
            #expect(outcome.failedAction == "user \(user), if it exists, is a system account with our mark ('\(MonitoringStep.mark)')")
            #expect(detail.contains("exists without our mark"), "\(detail)")
        }
        #expect(SystemAccount.lookup(user) == before)
        await cleanUp(user, "/nonexistent")
    }
}
