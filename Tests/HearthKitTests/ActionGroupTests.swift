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

/// What the actions of a group record, from several worker threads.
final class GroupRecord: @unchecked Sendable {
    let mutex = Mutex()
    /// Each action once, in the order its check first ran (a verify checks again).
    var started: [Int] = []
    var applied: [Int] = []
    var workers: Set<Int> = []
    var running = 0
    var mostAtOnce = 0
}

@Suite("action groups: actions side by side on worker threads")
struct ActionGroupTests {
    func runner(dryRun: Bool = false) throws -> (StepRunner, String) {
        let logPath = TestFiles.temporaryDirectory() + "/log/bootstrap.jsonl"
        return (StepRunner(console: Console(colour: false), log: try JSONLog(path: logPath), runID: "g", dryRun: dryRun), logPath)
    }

    /// n actions; action `failing` (if any) is false and cannot be fixed; the others are wrong
    /// until applied. Each takes a few milliseconds, so that workers overlap.
    func group(_ n: Int, width: Int, failing: Int? = nil, record: GroupRecord) -> ActionGroup {
        var fixed = Array(repeating: false, count: n)
        let lock = Mutex()
        let actions: [Action] = (0..<n).map { i in
            .blocking(
                "item \(i)",
                check: {
                    record.mutex.locked {
                        if !record.started.contains(i) { record.started.append(i) }
                        record.workers.insert(Workers.current)
                        record.running += 1
                        record.mostAtOnce = max(record.mostAtOnce, record.running)
                    }
                    usleep(5_000)
                    record.mutex.locked { record.running -= 1 }
                    if i == failing { throw Failure.hostWrong("item \(i) is broken") }
                    return lock.locked { fixed[i] }
                },
                apply: {
                    record.mutex.locked { record.applied.append(i) }
                    lock.locked { fixed[i] = true }
                })
        }
        return ActionGroup(actions, width: { width })
    }

    @Test("every action of a group is checked, applied, verified and logged as its own; a rerun changes nothing")
    func converges() async throws {
        let record = GroupRecord()
        let g = group(12, width: 4, record: record)
        let (runner, logPath) = try runner()
        let step = Step("s", parts: [.group(g)])
        let first = await runner.run(step)
        #expect(first.status == 0 && first.changed == 12)
        #expect(Set(record.applied) == Set(0..<12))
        #expect(record.mostAtOnce > 1 && record.mostAtOnce <= 4)
        #expect(record.workers.count > 1 && !record.workers.contains(0))
        let lines = try FileSystem.readText(logPath).split(separator: "\n")
        #expect(lines.count == 13)
        for i in 0..<12 {
            #expect(lines.contains { $0.contains("\"action\":\"item \(i)\",\"result\":true,\"changed\":true") })
        }
        let second = await runner.run(step)
        #expect(second.status == 0 && second.changed == 0)
    }

    @Test("the first false starts no other action (those running finish, logged) and names itself; width 1 is a list")
    func firstFalse() async throws {
        for width in [1, 4] {
            let record = GroupRecord()
            let (runner, logPath) = try runner()
            let after = Action("after the group", check: { true }, apply: {})
            let outcome = await runner.run(Step("s", parts: [.group(group(20, width: width, failing: 3, record: record)), .action(after)]))
            #expect(outcome.status == ExitStatus.failed)
            #expect(outcome.failedAction == "item 3")
            let log = try FileSystem.readText(logPath)
            #expect(log.contains("\"action\":\"item 3\",\"result\":false"))
            #expect(log.contains("item 3 is broken"))
            #expect(!log.contains("after the group"))
            // Nothing started after item 3 failed but what the other workers had begun.
            #expect(record.started.count <= 4 + width - 1, "width \(width): \(record.started)")
            if width == 1 { #expect(record.started == [0, 1, 2, 3]) }
            // Each started action is logged, the failure included.
            #expect(log.split(separator: "\n").count == record.started.count + 1)
        }
    }

    @Test("a dry run checks every action of the group and changes nothing")
    func dryRun() async throws {
        let record = GroupRecord()
        let (runner, _) = try runner(dryRun: true)
        let outcome = await runner.run(Step("s", parts: [.group(group(10, width: 3, failing: 2, record: record))]))
        #expect(Set(record.started) == Set(0..<10))
        #expect(record.applied.isEmpty)
        #expect(outcome.pending == 9 && outcome.status == ExitStatus.failed)
    }

    @Test("workers have numbers of their own, also the workers a worker starts; outside them it is 0")
    func workerNumbers() {
        #expect(Workers.current == 0)
        let mutex = Mutex()
        var outer: Set<Int> = []
        var inner: Set<Int> = []
        Workers.run(count: 4, width: 4) { _ in
            let me = Workers.current
            mutex.locked { _ = outer.insert(me) }
            Workers.run(count: 2, width: 2) { _ in
                mutex.locked { _ = inner.insert(Workers.current) }
                usleep(1_000)
                return true
            }
            return true
        }
        #expect(!outer.contains(0) && !inner.contains(0))
        #expect(outer.isDisjoint(with: inner))
        #expect(Workers.defaultWidth >= 1 && Workers.defaultWidth <= 8)
    }
}
