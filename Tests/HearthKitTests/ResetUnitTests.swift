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

@Suite("reset: confirmation, what is ours")
struct ResetUnitTests {
    @Test("--yes confirms; no terminal refuses without reading; on a terminal yes or the cluster name confirms")
    func confirmation() {
        var asked = 0
        let answer = { (text: String?) in { () -> String? in asked += 1; return text } }
        #expect(ResetConfirmation.decide(yes: true, isTerminal: false, clusterName: "main", readAnswer: answer("no")) == .confirmed)
        guard case .refused(let why) = ResetConfirmation.decide(
            yes: false, isTerminal: false, clusterName: "main", readAnswer: answer("yes"))
        else { Issue.record("not refused"); return }
        #expect(why.contains("--yes") && why.contains("nothing was changed"))
        #expect(asked == 0)
        #expect(ResetConfirmation.decide(yes: false, isTerminal: true, clusterName: "main", readAnswer: answer("yes\n")) == .confirmed)
        #expect(ResetConfirmation.decide(yes: false, isTerminal: true, clusterName: "hm", readAnswer: answer(" hm ")) == .confirmed)
        for wrong in ["", "y", "YES", "no", "main"] as [String] {
            #expect(ResetConfirmation.decide(yes: false, isTerminal: true, clusterName: "hm", readAnswer: answer(wrong)) != .confirmed)
        }
        #expect(ResetConfirmation.decide(yes: false, isTerminal: true, clusterName: "hm", readAnswer: answer(nil)) != .confirmed)
    }

    @Test("the roles and databases a reset drops: ours only, never postgres or the admin")
    func ours() throws {
        let config = try loadConfig("AI_NAMES=logos,aletheia\nPOSTGRES_ADMIN_USER=dba")
        #expect(ResetStep.roles(config) == ["hearthminds", "hearthminds-service", "logos", "aletheia"])
        #expect(ResetStep.databases(config) == ["hearthminds_db", "logos_db", "aletheia_db"])
        let step = ResetStep.make(config, scope: ResetScope(cluster: true, serviceUser: true))
        #expect(step.name == "reset")
        #expect(step.actions.map(\.name).contains("cluster 15/main is gone (pg_dropcluster --stop)"))
        #expect(!step.actions.contains { $0.name.contains("role postgres") || $0.name.contains("role dba") })
    }

    @Test("a home is removed only from under /var/lib: a system directory named as the home is refused, not removed")
    func homes() throws {
        let uidMax = SystemAccount.systemUIDMax()
        for home in ["/etc", "/root", "/var/lib", "/var/log", "/tmp", "/usr/lib", "/var/lib/postgresql", "/var/lib/postgresql/15"] {
            let config = try loadConfig("HEARTHMINDS_SERVICE_HOME=\(home)\nHEARTHMINDS_SERVICE_USER=hmtest-nobody\(Int.random(in: 1000..<9999))")
            expectFailure(.hostWrong, "\(home)") { _ = try ResetStep.removableHome(config, uidMax: uidMax) }
        }
        // Nothing there: nothing to remove.
        let missing = try loadConfig("HEARTHMINDS_SERVICE_HOME=/var/lib/hmtest-none-\(Int.random(in: 1000..<9999))")
        #expect(try ResetStep.removableHome(missing, uidMax: uidMax) == nil)
    }

    @Test("array parameters are quoted")
    func arrays() {
        #expect(PGArray.literal(["a", "hearthminds-service", "q\"b\\"]) == #"{"a","hearthminds-service","q\"b\\"}"#)
    }
}
