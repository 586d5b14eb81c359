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

/// A mutable box the actions of a test step share.
final class Counter: @unchecked Sendable {
    var applied: [String] = []
    var state: [String: Bool] = [:]
}

@Suite("step runner")
struct RunnerTests {
    func runner(dryRun: Bool = false) throws -> (StepRunner, String) {
        let logPath = TestFiles.temporaryDirectory() + "/log/bootstrap.jsonl"
        let log = try JSONLog(path: logPath)
        return (StepRunner(console: Console(colour: false), log: log, runID: "test-run", dryRun: dryRun), logPath)
    }

    func flag(_ name: String, _ counter: Counter, fixes: Bool = true) -> Action {
        Action(
            name, check: { counter.state[name] ?? false },
            apply: {
                counter.applied.append(name)
                if fixes { counter.state[name] = true }
            })
    }

    func logLines(_ path: String) throws -> [String] {
        try FileSystem.readText(path).split(separator: "\n").map(String.init)
    }

    @Test("an action already right is checked and not applied; a wrong one is applied and verified")
    func applyAndSkip() async throws {
        let counter = Counter()
        counter.state["a"] = true
        let (runner, logPath) = try runner()
        let outcome = await runner.run(Step("s", [flag("a", counter), flag("b", counter)]))
        #expect(outcome.status == 0)
        #expect(outcome.changed == 1)
        #expect(counter.applied == ["b"])
        let lines = try logLines(logPath)
        #expect(lines.count == 3)
        #expect(lines[0].contains(#""action":"a","result":true,"changed":false"#))
        #expect(lines[1].contains(#""action":"b","result":true,"changed":true"#))
        #expect(lines[2].contains(#""action":"(step)","result":true"#))
        for line in lines {
            for field in ["time", "run", "step", "action", "result", "changed", "ms", "detail"] {
                #expect(line.contains("\"\(field)\":"), "\(field) in \(line)")
            }
            #expect(line.contains(#""run":"test-run""#))
        }
    }

    @Test("a rerun of a converged step applies nothing")
    func rerun() async throws {
        let counter = Counter()
        let (runner, _) = try runner()
        let step = Step("s", [flag("a", counter), flag("b", counter)])
        _ = await runner.run(step)
        let second = await runner.run(step)
        #expect(second.status == 0 && second.changed == 0)
        #expect(counter.applied == ["a", "b"])
    }

    @Test("a false verify stops the step: later actions do not run, exit status 1")
    func failFast() async throws {
        let counter = Counter()
        let (runner, logPath) = try runner()
        let outcome = await runner.run(
            Step("s", [flag("a", counter, fixes: false), flag("b", counter)]))
        #expect(outcome.status == ExitStatus.failed)
        #expect(outcome.failedAction == "a")
        #expect(counter.applied == ["a"])
        let lines = try logLines(logPath)
        #expect(lines[0].contains(#""result":false"#) && lines[0].contains("verify after apply is false"))
        #expect(!lines.contains { $0.contains(#""action":"b""#) })
    }

    @Test("an error thrown by apply is a false result with the error as detail")
    func applyThrows() async throws {
        let (runner, logPath) = try runner()
        let outcome = await runner.run(
            Step("s", [Action("boom", check: { false }, apply: { throw Failure("disk on fire") })]))
        #expect(outcome.status == ExitStatus.failed)
        #expect(try logLines(logPath)[0].contains("disk on fire"))
        #expect(try logLines(logPath)[0].contains(#""failure":"error""#))
    }

    @Test("what a failure means is the log's `failure` field, one per kind; a false check without an error has none")
    func failureKinds() async throws {
        let thrown: [(Failure, String)] = [
            (Failure("plain"), "error"), (Failure("no cluster", needs: PostgresStep.name), "needs_step"),
            (Failure.hostWrong("uid 1001"), "host_wrong"), (Failure.migration("0003: bad"), "migration"),
            (Failure.database(message: "denied", sqlState: "42501"), "database"), (Failure.tooLarge("big"), "too_large"),
            (Failure.configuration(key: "POSTGRES_PORT", "not a port"), "configuration"),
        ]
        #expect(Set(thrown.map(\.1)) == Set(Failure.Kind.allCases.map(\.rawValue)))
        for dryRun in [false, true] {
            let (runner, logPath) = try runner(dryRun: dryRun)
            var actions = thrown.map { failure, _ in Action("throws \(failure.kind)", check: { throw failure }, apply: {}) }
            actions.append(.assertion("false") { false })
            // (a run stops at its first false action: one step per action)
            for action in actions { _ = await runner.run(Step("s", [action])) }
            let lines = try logLines(logPath).filter { !$0.contains(#""action":"(step)""#) }
            #expect(lines.count == thrown.count + 1)
            for (line, (_, kind)) in zip(lines, thrown) {
                #expect(line.contains(#""failure":"\#(kind)""#), "\(line)")
            }
            #expect(lines.first { $0.contains("configuration") }?.contains(#""key":"POSTGRES_PORT""#) == true)
            #expect(lines.last.map { !$0.contains(#""failure""#) && $0.contains(#""status":"failed""#) } == true)
            // in a dry run, only the host found wrong is false; the others cannot check yet
            if dryRun {
                #expect(lines.filter { $0.contains(#""status":"unknown""#) }.count == thrown.count - 1)
                #expect(lines.first { $0.contains("needs_step") }?.contains(#""needs":"postgres""#) == true)
            }
        }
    }

    @Test("an action's note is the detail of a true result, checked or applied; a failure keeps its error")
    func note() async throws {
        let counter = Counter()
        counter.state["done"] = true
        let (runner, logPath) = try runner()
        let noted = { (name: String, fixes: Bool) in
            Action(
                name, check: { counter.state[name] ?? false },
                apply: { if fixes { counter.state[name] = true } },
                note: { "\(name): done by method x" })
        }
        let outcome = await runner.run(Step("s", [noted("done", true), noted("todo", true), noted("broken", false)]))
        #expect(outcome.status == ExitStatus.failed && outcome.failedAction == "broken")
        let lines = try logLines(logPath)
        #expect(lines[0].contains(#""result":true"#) && lines[0].contains(#""detail":"done: done by method x""#))
        #expect(lines[1].contains(#""changed":true"#) && lines[1].contains(#""detail":"todo: done by method x""#))
        #expect(lines[2].contains(#""result":false"#) && lines[2].contains("verify after apply is false"))
    }

    @Test("a false assertion fails the step without applying")
    func assertion() async throws {
        let (runner, _) = try runner()
        let outcome = await runner.run(Step("s", [.assertion("holds") { false }]))
        #expect(outcome.status == ExitStatus.failed)
        #expect(outcome.changed == 0)
    }

    @Test("a dry run applies nothing, reports what would change and exits 0")
    func dryRun() async throws {
        let counter = Counter()
        let (runner, logPath) = try runner(dryRun: true)
        let outcome = await runner.run(
            Step("s", [
                flag("a", counter),
                Action("cannot see yet", check: { throw Failure("no cluster") }, apply: {}),
                flag("b", counter),
            ]))
        #expect(outcome.status == 0)
        #expect(outcome.pending == 3)
        #expect(counter.applied.isEmpty)
        let lines = try logLines(logPath)
        #expect(lines.filter { $0.contains(#""dry_run":true"#) }.count == 4)
        #expect(lines[1].contains("cannot check yet: no cluster"))
    }

    @Test("a dry run reports a check that found the host wrong beyond repair as false")
    func dryRunDefiniteFalse() async throws {
        let (runner, _) = try runner(dryRun: true)
        let outcome = await runner.run(Step("s", [.assertion("uid") { throw Failure.hostWrong("uid 1001") }]))
        #expect(outcome.status == ExitStatus.failed)
    }

    @Test("log lines are JSON with escaped text")
    func jsonEscaping() {
        #expect(JSON.string("a\"b\\c\nd\u{1}") == #""a\"b\\c\nd\u0001""#)
        #expect(JSON.number(3.14159) == "3.1")
        #expect(JSON.number(2) == "2")
    }

    @Test("the console shows control characters from outside in caret notation: no terminal escape sequence but our colours reaches the operator")
    func printable() {
        let hostile = "at revision '\u{1B}]2;pwned\u{07}'\r\u{1B}[2Jgone\u{9B}6n\u{7F}"
        #expect(Console.printable(hostile) == "at revision '^[]2;pwned^G'^M^[[2Jgone\u{FFFD}6n^?")
        let ours = Console(colour: true).paint("ok", .ok) + "\n\tline two"
        #expect(Console.printable(ours) == ours)
        // Other SGR sequences would hide what follows (a revision id ending in "conceal").
        #expect(Console.printable("rev\u{1B}[8m hidden \u{1B}[30;40m black") == "rev^[[8m hidden ^[[30;40m black")
        // every tone, unknown included (its code was missing from ourColours: a raw ^[[35m)
        for tone in Console.Tone.allCases {
            let painted = Console(colour: true).paint("x", tone)
            #expect(Console.printable(painted) == painted)
        }
    }
}
