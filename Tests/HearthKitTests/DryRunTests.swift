#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HearthKit

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
                    "no cluster", check: { throw HearthError("there is no cluster 15/x", needs: "postgres") }, apply: {}),
                Action("no idea", check: { throw HearthError("something else") }, apply: {}),
                Action("own step", check: { throw HearthError("no file yet", needs: "pg-hba") }, apply: {}),
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
                Action("broken", check: { throw HearthError("no cluster", needs: "postgres") }, apply: {}),
            ]))
        #expect(outcome.status == ExitStatus.failed && outcome.unknown == 0 && outcome.pending == 0)
        #expect(previewed.applied.isEmpty)
        let lines = try logLines(logPath)
        #expect(lines[0].contains(#""status":"changed""#) && lines[1].contains(#""status":"failed""#))
        #expect(!lines[1].contains("needs"))
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
