/// Runs a step's actions under the contract and reports each boolean to the console and the
/// log. Returns the step's exit status: 0 when every action ends true, 1 at the first false.
public struct StepRunner: Sendable {
    public let console: Console
    public let log: JSONLog?
    public let runID: String
    public let dryRun: Bool

    public init(console: Console = Console(), log: JSONLog?, runID: String, dryRun: Bool) {
        self.console = console
        self.log = log
        self.runID = runID
        self.dryRun = dryRun
    }

    public struct Outcome: Sendable, Equatable {
        public var status: Int32
        public var changed: Int
        public var pending: Int
        public var failedAction: String?
    }

    @discardableResult
    public func run(_ step: Step) async -> Outcome {
        let started = Clock.nowMs()
        var outcome = Outcome(status: ExitStatus.ok, changed: 0, pending: 0, failedAction: nil)
        console.out(console.paint("== \(step.name)", .plain) + (dryRun ? " (dry run: checks only)" : ""))
        for action in step.actions {
            let t0 = Clock.nowMs()
            var result = false
            var changed = false
            var detail = ""
            var tone = Console.Tone.failed
            var label = "FAILED"
            do {
                let already = try await action.check()
                if already {
                    result = true
                    tone = .ok
                    label = "ok"
                } else if action.isAssertion {
                    detail = "check is false"
                } else if dryRun {
                    detail = "would change"
                    tone = .pending
                    label = "would change"
                    outcome.pending += 1
                } else {
                    changed = true
                    try await action.apply()
                    result = try await action.verify()
                    if result {
                        tone = .changed
                        label = "changed"
                        outcome.changed += 1
                    } else {
                        detail = "verify after apply is false"
                    }
                }
            } catch {
                if dryRun && !(error is CheckFailed) {
                    // What a check cannot see yet (the cluster is not there) is a pending change.
                    tone = .pending
                    label = "would change"
                    detail = "cannot check yet: \(error)"
                    outcome.pending += 1
                } else {
                    detail = "\(error)"
                }
            }
            if result, detail.isEmpty, let note = action.note { detail = await note() }
            let ms = Clock.nowMs() - t0
            log?.write(
                LogRecord(
                    time: Clock.timestamp(), run: runID, step: step.name, action: action.name, result: result,
                    changed: changed, ms: ms, detail: detail, dryRun: dryRun))
            var line = "  " + console.paint(pad("[\(label)]", 15), tone) + action.name + "  (\(JSON.number(ms)) ms)"
            if !detail.isEmpty && detail != label { line += "\n" + detail.split(separator: "\n").map { "      \($0)" }.joined(separator: "\n") }
            console.out(line)
            if !result && tone != .pending {
                outcome.status = ExitStatus.failed
                outcome.failedAction = action.name
                if !dryRun { break }
            }
        }
        let total = Clock.nowMs() - started
        let summary: String
        if let failed = outcome.failedAction, !dryRun {
            summary = console.paint("\(step.name): FAILED at '\(failed)'", .failed) + " after \(JSON.number(total)) ms"
        } else if dryRun {
            summary = "\(step.name): dry run, \(outcome.pending) of \(step.actions.count) actions would change"
                + (outcome.failedAction != nil ? ", a check is false" : "") + " (\(JSON.number(total)) ms)"
        } else {
            summary = console.paint("\(step.name): ok", .ok)
                + ", \(step.actions.count) actions, \(outcome.changed) changed (\(JSON.number(total)) ms)"
        }
        log?.write(
            LogRecord(
                time: Clock.timestamp(), run: runID, step: step.name, action: "(step)",
                result: outcome.status == ExitStatus.ok, changed: outcome.changed > 0, ms: total,
                detail: outcome.failedAction.map { "failed at \($0)" } ?? "", dryRun: dryRun))
        console.out(summary)
        return outcome
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
    }
}
