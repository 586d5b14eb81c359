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

/// What a dry run reports: the statuses (would change with its preview, unknown naming the step
/// it needs), the masking of the client files' passwords, the statements' verifiers.
@Suite("dry run: statuses, previews, masking")
struct DryRunTests {
    func runner(dryRun: Bool = true) throws -> (StepRunner, Transcript, String) {
        let logPath = TestFiles.temporaryDirectory() + "/log/bootstrap.jsonl"
        let transcript = Transcript()
        let runner = StepRunner(
            console: Console(colour: false, transcript: transcript), log: try JSONLog(path: logPath), runID: "dry",
            dryRun: dryRun)
        return (runner, transcript, logPath)
    }

    func logLines(_ path: String) throws -> [String] {
        try FileSystem.readText(path).split(separator: "\n").map(String.init)
    }

    @Test("would change shows the preview under the action; unknown is its own status naming the step it needs, in the console, the summary and the log")
    func statuses() async throws {
        let (runner, transcript, logPath) = try runner()
        let previewed = Counter()
        let outcome = await runner.run(
            Step("pg-hba", [
                Action("right", check: { true }, apply: {}, preview: { previewed.applied.append("right"); return "x" }),
                Action(
                    "wrong", check: { false }, apply: {},
                    preview: { "--- /etc/f\n+++ /etc/f\n@@ -1 +1 @@\n-old line\n+new line" }),
                Action(
                    "no cluster", check: { throw Failure("there is no cluster 15/x", needs: "postgres") }, apply: {}),
                Action("no idea", check: { throw Failure("something else") }, apply: {}),
                Action("own step", check: { throw Failure("no file yet", needs: "pg-hba") }, apply: {}),
            ]))
        #expect(outcome.status == ExitStatus.ok && outcome.changed == 0)
        #expect(outcome.pending == 4 && outcome.unknown == 3 && outcome.wouldChange == 1)
        #expect(outcome.needs == ["postgres", "pg-hba"])
        #expect(previewed.applied.isEmpty, "a check that is true shows no preview")

        let console = transcript.text
        #expect(console.contains("[would change] wrong"))
        #expect(console.contains("      --- /etc/f\n      +++ /etc/f\n      @@ -1 +1 @@\n      -old line\n      +new line\n"))
        #expect(console.contains("[unknown: needs the postgres step] no cluster"))
        #expect(console.contains("      cannot check yet: there is no cluster 15/x"))
        #expect(console.contains("[unknown]      no idea"))
        #expect(console.contains("[unknown: needs an earlier action] own step"))
        #expect(!console.contains("[would change] no cluster"))
        #expect(
            console.contains(
                "pg-hba: dry run, 1 of 5 actions would change, 3 unknown (needs the postgres step and earlier actions of this step)"),
            "\(console)")

        let lines = try logLines(logPath)
        #expect(lines.count == 6)
        #expect(lines[0].contains(#""status":"ok""#) && !lines[0].contains("preview"))
        #expect(lines[1].contains(#""status":"would_change""#))
        #expect(lines[1].contains(#""detail":"would change""#))
        #expect(lines[1].contains(#""preview":"--- /etc/f\n+++ /etc/f\n@@ -1 +1 @@\n-old line\n+new line""#))
        #expect(lines[2].contains(#""status":"unknown""#) && lines[2].contains(#""needs":"postgres""#))
        #expect(lines[2].contains("cannot check yet: there is no cluster 15/x"))
        #expect(lines[3].contains(#""status":"unknown""#) && !lines[3].contains("needs"))
        #expect(lines[5].contains(#""action":"(step)""#) && lines[5].contains(#""would_change":1,"unknown":3"#))
        #expect(lines[5].contains(#""needs":"postgres,pg-hba""#))
    }

    @Test("a run (not dry) never calls a preview, and logs ok, changed and failed")
    func noPreviewInARun() async throws {
        let (runner, _, logPath) = try runner(dryRun: false)
        let previewed = Counter()
        let state = Counter()
        let outcome = await runner.run(
            Step("s", [
                Action(
                    "fix", check: { state.state["fix"] ?? false }, apply: { state.state["fix"] = true },
                    preview: { previewed.applied.append("fix"); return "x" }),
                Action("broken", check: { throw Failure("no cluster", needs: "postgres") }, apply: {}),
            ]))
        #expect(outcome.status == ExitStatus.failed && outcome.unknown == 0 && outcome.pending == 0)
        #expect(previewed.applied.isEmpty)
        let lines = try logLines(logPath)
        #expect(lines[0].contains(#""status":"changed""#) && lines[1].contains(#""status":"failed""#))
        // (a run names no step it needs: that is a dry run's unknown; its failure says what it was)
        #expect(!lines[1].contains(#""needs":"#) && lines[1].contains(#""failure":"needs_step""#))
    }

    @Test("install.sh's counts line")
    func countsLine() {
        var outcome = StepRunner.Outcome(status: 0, changed: 0, pending: 5, failedAction: nil)
        outcome.unknown = 3
        outcome.needs = ["postgres", "databases"]
        #expect(DryRunCounts.line(outcome) == "2 3 postgres,databases\n")
        #expect(DryRunCounts.line(.init(status: 0, changed: 0, pending: 1, failedAction: nil)) == "1 0 -\n")
    }

    @Test("a password file's passwords are masked on both sides: the same, changed, generated; other lines not shown")
    func maskPasswords() {
        let old = "127.0.0.1:5432:logos_db:logos:s3cret\\:old\n127.0.0.1:5432:hearthminds_db:logos:s3cret\\:old\n"
        let new = "127.0.0.1:5433:logos_db:logos:n3w\\\\pw\n127.0.0.1:5433:hearthminds_db:logos:n3w\\\\pw\n"
        let (maskedOld, maskedNew) = ClientFiles.maskPasswords(old: old, new: new, password: Secret("n3w\\pw"))
        #expect(maskedOld == "127.0.0.1:5432:logos_db:logos:<old password>\n127.0.0.1:5432:hearthminds_db:logos:<old password>\n")
        #expect(maskedNew == "127.0.0.1:5433:logos_db:logos:<new password>\n127.0.0.1:5433:hearthminds_db:logos:<new password>\n")

        let same = ClientFiles.maskPasswords(old: new, new: new, password: Secret("n3w\\pw"))
        #expect(same.0 == same.1 && same.1.contains(":<password>\n"))

        let generated = ClientFiles.maskPasswords(old: nil, new: "h:1:d:logos:\n", password: nil)
        #expect(generated.0 == nil && generated.1 == "h:1:d:logos:<generated password>\n")

        let edited = ClientFiles.maskPasswords(old: "# pw is hunter2\nh:1:d:u:hunter2:extra\n", new: "", password: nil)
        #expect(edited.0 == "\(ClientFiles.maskedLine)\n\(ClientFiles.maskedLine)\n")
        for text in [maskedOld ?? "", maskedNew, edited.0 ?? ""] {
            #expect(!text.contains("s3cret") && !text.contains("n3w") && !text.contains("hunter2"))
        }
        #expect(ClientFiles.maskServiceFile("[x]\n  password = hunter2\nuser=x\n") == "[x]\npassword=<not shown>\nuser=x\n")
    }

    @Test("statements show a masked verifier, never its salt and keys")
    func maskedVerifier() {
        let verifier = "SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVk:c2VydmVy"
        #expect(SQLPlan.maskedVerifier(verifier) == "'<SCRAM-SHA-256 verifier (4096 iterations), masked>'")
        #expect(SQLPlan.maskedVerifier(SQLPlan.verifierPlaceholder(iterations: 10000)).contains("10000 iterations"))
        var plan = SQLPlan()
        plan.add("CREATE DATABASE \"x\"")
        plan.newBatch()
        plan.add("ALTER ROLE \"x\" PASSWORD '\(verifier)'", shown: "ALTER ROLE \"x\" PASSWORD \(SQLPlan.maskedVerifier(verifier))")
        #expect(plan.batches.count == 2)
        #expect(plan.shown == "CREATE DATABASE \"x\";\nALTER ROLE \"x\" PASSWORD '<SCRAM-SHA-256 verifier (4096 iterations), masked>';")
        #expect(!plan.shown.contains("c2Fsd"))
    }
}
