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

/// What is not ours is never adopted or removed: the service-user step and the reset's
/// --service-user items against this machine's real account database, with throwaway accounts
/// and homes under /var/lib. In the serialized suite of the service-user step.
extension ServiceUserStepTests {
    func removeAccount(_ user: String, homes: [String] = []) async {
        _ = try? await Command.run(["userdel", user])
        _ = try? await Command.run(["groupdel", user])
        for home in homes where home.hasPrefix("/var/lib/hmtest-") {
            DebianTestClusters.spawnAndWait(["/bin/rm", "-rf", "--one-file-system", home])
        }
    }

    func name() -> String { "hmtest-\(Int.random(in: 10000..<99999))" }

    @Test("service-user: an existing home not owned by the account, or a link as the home, is refused (named) and left as it was; removed, the step converges")
    func foreignHome() async throws {
        let user = name()
        let home = "/var/lib/\(user)-home"
        defer { Task { await removeAccount(user, homes: [home]) } }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let before = victim.snapshot()
        let config = try config(user: user, home: home)

        // A directory of root's (/etc would be one) and one of another account's.
        for (owner, group) in [(UInt32(0), UInt32(0)), (Hostile.postgres.uid, Hostile.postgres.gid)] {
            let made = try await Hostile.asRoot(
                "rm -rf \(home) && mkdir -m 0755 \(home) && echo x > \(home)/file && chown -R \(owner):\(group) \(home)")
            #expect(made.succeeded, "\(made.stderr)")
            let tree = Hostile.Tree.snapshot(home)
            let (outcome, detail) = try await Hostile.run(ServiceUserStep.make(config))
            #expect(outcome.status == ExitStatus.failed)
            #expect(outcome.failedAction == "home \(home) owned by \(user), mode 0750")
            #expect(detail.contains("\(home) exists and is owned by \(OpenDirectory.userName(owner))"), "\(detail)")
            #expect(Hostile.Tree.snapshot(home) == tree, "owner \(owner): left as it was")
        }
        // A link as the home: not followed.
        try await Hostile.asRoot("rm -rf \(home); ln -s \(victim.path)/dir \(home)")
        let (linked, why) = try await Hostile.run(ServiceUserStep.make(config))
        #expect(linked.status == ExitStatus.failed)
        #expect(why.contains("\(home) is a symbolic link"), "\(why)")
        #expect(victim.snapshot() == before)

        unlink(home)
        let healed = await runner().run(ServiceUserStep.make(config))
        #expect(healed.status == 0)
        let account = try #require(SystemAccount.lookup(user))
        #expect(FileSystem.status(home) == FileSystem.Status(uid: account.uid, gid: account.gid, mode: 0o750, isDirectory: true))
    }

    @Test("service-user: an existing system account without our mark is not adopted (named, unchanged); marked, it is")
    func unmarkedAccount() async throws {
        let user = name()
        let home = "/var/lib/\(user)-home"
        defer { Task { await removeAccount(user, homes: [home]) } }
        try await Command.check(["useradd", "--system", "--no-create-home", "--shell", "/bin/sh", user])
        let before = try #require(SystemAccount.lookup(user))
        let config = try config(user: user, home: home)
        for dryRun in [true, false] {
            let (outcome, detail) = try await Hostile.run(ServiceUserStep.make(config), dryRun: dryRun)
            #expect(outcome.status == ExitStatus.failed, "dry run \(dryRun)")
            #expect(outcome.failedAction?.hasPrefix("user \(user), if it exists,") == true)
            #expect(detail.contains("exists without our mark"), "\(detail)")
            #expect(detail.contains("usermod --comment 'HearthMinds service account' \(user)"))
        }
        #expect(SystemAccount.lookup(user) == before)
        #expect(!FileSystem.exists(home))

        // The operator's way out: the mark; then the step converges it.
        try await Command.check(["usermod", "--comment", ServiceAccount.mark, user])
        #expect(await runner().run(ServiceUserStep.make(config)).status == 0)
        #expect(SystemAccount.lookup(user)?.shell == ServiceUserStep.shell)
    }

    /// The reset's items for the service account alone.
    func resetAccount(_ config: HearthConfig, dryRun: Bool = false) async throws -> (StepRunner.Outcome, String) {
        try await Hostile.run(Step(ResetStep.name, ResetStep.serviceAccountItems(config).map(\.action)), dryRun: dryRun)
    }

    @Test("reset --service-user: a configured daemon or an account without our mark is refused, not userdel'd")
    func resetRefusesForeignAccounts() async throws {
        // daemon: checks only (a dry run and the listing): a real run would be one mistake away
        // from removing the machine's daemon account.
        let daemon = try loadConfig("HEARTHMINDS_SERVICE_USER=daemon")
        let (dry, why) = try await resetAccount(daemon, dryRun: true)
        #expect(dry.status == ExitStatus.failed)
        #expect(dry.failedAction == "system user daemon is gone (userdel)")
        #expect(why.contains("daemon (uid 1) exists without our mark"), "\(why)")
        #expect(SystemAccount.lookup("daemon") != nil)

        let user = name()
        defer { Task { await removeAccount(user) } }
        try await Command.check(["useradd", "--system", "--user-group", "--no-create-home", "--shell", "/usr/sbin/nologin", user])
        let before = try #require(SystemAccount.lookup(user))
        let (refused, detail) = try await resetAccount(try loadConfig("HEARTHMINDS_SERVICE_USER=\(user)"))
        #expect(refused.status == ExitStatus.failed && refused.changed == 0)
        #expect(detail.contains("exists without our mark"), "\(detail)")
        #expect(SystemAccount.lookup(user) == before)
        #expect(SystemAccount.groupID(user) != nil)
    }

    @Test("reset --service-user: a home outside /var/lib, not the passwd home, another account's, or a link, is refused and kept (so is the account); the right one goes")
    func resetRefusesForeignHomes() async throws {
        let user = name()
        let home = "/var/lib/\(user)-home"
        let other = "/var/lib/\(user)-other"
        let outside = TestFiles.temporaryDirectory("hm-home") + "/home"
        defer {
            Task { await removeAccount(user, homes: [home, other]) }
            TestFiles.removeTree(String(outside.dropLast(5)))
        }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let before = victim.snapshot()
        #expect(await runner().run(ServiceUserStep.make(try config(user: user, home: home))).status == 0)
        let account = try #require(SystemAccount.lookup(user))

        func refused(_ config: HearthConfig, _ expected: String) async throws {
            let (outcome, detail) = try await resetAccount(config)
            #expect(outcome.status == ExitStatus.failed && outcome.changed == 0, "\(expected)")
            #expect(outcome.failedAction == "home \(config.serviceHome) is gone", "\(expected)")
            #expect(detail.contains(expected), "\(detail)")
            #expect(SystemAccount.lookup(user) != nil)
        }
        // Outside /var/lib (the account's passwd home, its owner: still not removed).
        try await Hostile.asRoot("mkdir -p \(outside) && chown \(account.uid):\(account.gid) \(outside)")
        try await Command.check(["usermod", "--home", outside, user])
        try await refused(try config(user: user, home: outside), "is not under /var/lib/")
        #expect(FileSystem.isDirectory(outside))
        try await Command.check(["usermod", "--home", home, user])
        // Not the passwd home.
        try await Hostile.asRoot("mkdir -p \(other) && chown \(account.uid):\(account.gid) \(other)")
        try await refused(try config(user: user, home: other), "is not the home of \(user) (its passwd home is \(home))")
        #expect(FileSystem.isDirectory(other))
        // Another account's.
        try await Hostile.asRoot("chown root:root \(home)")
        try await refused(try config(user: user, home: home), "is owned by root (uid 0), not by \(user)")
        #expect(FileSystem.status(home)?.uid == 0)
        // A link.
        try await Hostile.asRoot("rm -rf \(home) && ln -s \(victim.path)/dir \(home)")
        try await refused(try config(user: user, home: home), "is a symbolic link")
        #expect(victim.snapshot() == before)

        // The right one: the account's own directory under /var/lib, its passwd home.
        unlink(home)
        #expect(await runner().run(ServiceUserStep.make(try config(user: user, home: home))).status == 0)
        try await Hostile.asRoot("mkdir -p \(home)/a/b && ln -s \(victim.path)/secret \(home)/a/link && chown -hR \(account.uid):\(account.gid) \(home)")
        let (done, detail) = try await resetAccount(try config(user: user, home: home))
        #expect(done.status == 0, "\(detail)")
        #expect(!FileSystem.exists(home) && SystemAccount.lookup(user) == nil && SystemAccount.groupID(user) == nil)
        #expect(victim.snapshot() == before)
    }
}

extension ServiceUserStepTests {
    @Test("hostile service account: while reset --service-user removes its home, its own loop keeps planting links to root's files and moving directories; root's files unchanged; once it stops, the reset converges")
    func resetWhileTheAccountPlants() async throws {
        let user = name()
        let home = "/var/lib/\(user)-home"
        defer { Task { await removeAccount(user, homes: [home]) } }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let before = victim.snapshot()
        let config = try config(user: user, home: home)
        #expect(await runner().run(ServiceUserStep.make(config)).status == 0)
        let account = try #require(SystemAccount.lookup(user))
        let v = victim.path
        // The account's own process, as it could run: a tree of links to root's files, its
        // directories renamed and replaced by links to root's directory, over and over.
        let argv = [
            "/usr/bin/setpriv", "--reuid=\(account.uid)", "--regid=\(account.gid)", "--clear-groups", "--", "/bin/sh", "-c",
            """
            cd \(home) || exit 1
            while :; do
              mkdir -p a/b/c 2>/dev/null
              ln -sfn \(v)/secret a/b/c/secret 2>/dev/null
              ln -sfn \(v)/dir a/b/dir 2>/dev/null
              mv -T a/b a/b.away 2>/dev/null && ln -sfn \(v)/dir a/b 2>/dev/null
              rm -f a/b 2>/dev/null; mv -T a/b.away a/b 2>/dev/null
            done
            """,
        ]
        // In a process group of its own, so that the loop and whatever it is running at the
        // moment (a mkdir, a mv) are stopped together.
        var pid: pid_t = 0
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let env: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { (cArgs + env).forEach { free($0) } }
        #expect(posix_spawn(&pid, argv[0], nil, &attributes, cArgs, env) == 0)
        usleep(200_000)
        let (during, detail) = try await resetAccount(config)
        kill(-pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        // What the loop had started when it was killed ends too.
        for _ in 0..<50 where kill(-pid, 0) == 0 { usleep(20_000) }
        print("hostile service account: reset while planting: \(during.status) \(detail.prefix(300))")
        #expect(victim.snapshot() == before)
        // Stopped, the reset removes what is left, the account and its group.
        let (done, doneDetail) = try await resetAccount(config)
        #expect(done.status == 0, "\(doneDetail)")
        #expect(!FileSystem.exists(home) && SystemAccount.lookup(user) == nil)
        #expect(victim.snapshot() == before)
    }
}
