import HearthSystem
/// Runs a step's actions under the contract and reports each boolean to the console and the
/// log. Returns the step's exit status: 0 when every action ends true, 1 at the first false.
/// The actions of an ActionGroup run side by side on worker threads; each is still checked,
/// applied, verified and reported as its own action.
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
        /// In a dry run: the actions not known to be right, those that would change and those
        /// that cannot be checked yet (`unknown` of them).
        public var pending: Int
        public var failedAction: String?
        /// In a dry run: the actions whose check cannot be made yet (the cluster is not there).
        public var unknown = 0
        /// The steps whose work those checks need, in the order first met ("postgres").
        public var needs: [String] = []

        /// In a dry run: the actions whose check is false, that the run would change.
        public var wouldChange: Int { pending - unknown }
    }

    /// What one action came to.
    struct Result {
        var result = false
        var changed = false
        var detail = ""
        var tone = Console.Tone.failed
        var label = "FAILED"
        /// What the dry run shows of the change (a diff, statements): DryRunPreview.
        var preview = ""
        /// A dry run's check that cannot be made yet; `needs`: the step whose work it needs.
        var unknown = false
        var needs: String?
        /// What the error thrown by the check or the apply meant (nil: none was thrown).
        var failure: Failure.Kind?
        var key: String?
        var pending: Bool { tone == .pending || unknown }

        /// The log's name of what the action came to.
        var status: String {
            if unknown { return "unknown" }
            if tone == .pending { return "would_change" }
            return result ? (changed ? "changed" : "ok") : "failed"
        }
    }

    /// Whether the step being run is a dry run, for the few checks that must know (a proof that
    /// would make something to prove: the pgvector step's scratch database). Task-local: the
    /// tests run several runners side by side in one process.
    @TaskLocal public static var dryRunning = false

    @discardableResult
    public func run(_ step: Step) async -> Outcome {
        await StepRunner.$dryRunning.withValue(dryRun) { await runParts(step) }
    }

    private func runParts(_ step: Step) async -> Outcome {
        let started = Clock.nowMs()
        var outcome = Outcome(status: ExitStatus.ok, changed: 0, pending: 0, failedAction: nil)
        let count = step.actions.count
        console.out(console.paint("== \(step.name)", .plain) + (dryRun ? " (dry run: checks only)" : ""))
        parts: for part in step.parts {
            switch part {
            case .action(let action):
                let t0 = Clock.nowMs()
                StepDeadline.started(action.name)
                let result = action.blocking != nil ? evaluateBlocking(action, step.name) : await evaluate(action, step.name)
                StepDeadline.finished(action.name)
                if !report(step, action, result, ms: Clock.nowMs() - t0, into: &outcome) && !dryRun { break parts }
            case .group(let group):
                let shared = Shared(outcome)
                let dryRun = dryRun
                let asking = "(the server's free connections, before \(group.actions.count) actions side by side)"
                StepDeadline.started(asking)
                let width = group.width()
                StepDeadline.finished(asking)
                Workers.run(count: group.actions.count, width: width) { i in
                    let action = group.actions[i]
                    let t0 = Clock.nowMs()
                    StepDeadline.started(action.name)
                    let result = evaluateBlocking(action, step.name)
                    StepDeadline.finished(action.name)
                    let ms = Clock.nowMs() - t0
                    let ok = shared.mutex.locked { report(step, action, result, ms: ms, into: &shared.outcome) }
                    return ok || dryRun
                }
                group.finished()
                outcome = shared.outcome
                if outcome.failedAction != nil && !dryRun { break parts }
            }
        }
        let total = Clock.nowMs() - started
        let summary: String
        if let failed = outcome.failedAction, !dryRun {
            summary = console.paint("\(step.name): FAILED at '\(failed)'", .failed) + " after \(JSON.number(total)) ms"
        } else if dryRun {
            summary = "\(step.name): dry run, \(outcome.wouldChange) of \(count) actions would change"
                + DryRunStatus.unknownSummary(outcome, step: step.name)
                + (outcome.failedAction != nil ? ", a check is false" : "") + " (\(JSON.number(total)) ms)"
        } else {
            summary = console.paint("\(step.name): ok", .ok)
                + ", \(count) actions, \(outcome.changed) changed (\(JSON.number(total)) ms)"
        }
        log?.write(
            LogRecord(
                time: Clock.timestamp(), run: runID, step: step.name, action: "(step)",
                result: outcome.status == ExitStatus.ok, changed: outcome.changed > 0, ms: total,
                detail: outcome.failedAction.map { "failed at \($0)" } ?? "", dryRun: dryRun,
                needs: outcome.needs.joined(separator: ","), counts: dryRun ? (outcome.wouldChange, outcome.unknown) : nil))
        // The log of every result is part of the contract: a run that could not write it is not
        // true (JSONLog.write said so on standard error when it happened).
        if let failure = log?.failure {
            console.out(summary)
            console.err(console.paint("\(step.name): FAILED: \(failure)", .failed))
            outcome.status = ExitStatus.failed
            return outcome
        }
        console.out(summary)
        return outcome
    }

    /// The outcome the workers of a group add to.
    private final class Shared: @unchecked Sendable {
        let mutex = Mutex()
        var outcome: Outcome

        init(_ outcome: Outcome) { self.outcome = outcome }
    }

    private func evaluate(_ action: Action, _ stepName: String) async -> Result {
        var r = Result()
        do {
            if try await action.check() {
                r.result = true
            } else if action.isAssertion || dryRun {
                decline(action, &r)
            } else {
                r.changed = true
                try await action.apply()
                r.result = try await action.verify()
            }
            settle(&r)
            if r.result, r.detail.isEmpty, let note = action.note { r.detail = await note() }
        } catch {
            failure(error, stepName, &r)
        }
        return r
    }

    /// The same as `evaluate`, with the action's blocking calls (on a worker thread).
    private func evaluateBlocking(_ action: Action, _ stepName: String) -> Result {
        guard let blocking = action.blocking else { preconditionFailure("\(action.name) is not a blocking action") }
        defer { blocking.done() }
        var r = Result()
        do {
            if try blocking.check() {
                r.result = true
            } else if action.isAssertion || dryRun {
                decline(action, &r)
            } else {
                r.changed = true
                try blocking.apply()
                r.result = try blocking.verify()
            }
            settle(&r)
        } catch {
            failure(error, stepName, &r)
        }
        return r
    }

    /// A false check of an assertion, or of any action in a dry run.
    private func decline(_ action: Action, _ r: inout Result) {
        if action.isAssertion {
            r.detail = "check is false"
        } else {
            r.detail = "would change"
            r.tone = .pending
            r.label = "would change"
            if dryRun, let preview = action.preview { r.preview = DryRunStatus.preview(preview) }
        }
    }

    private func settle(_ r: inout Result) {
        if r.result {
            r.tone = r.changed ? .changed : .ok
            r.label = r.changed ? "changed" : "ok"
        } else if r.changed {
            r.detail = "verify after apply is false"
        }
    }

    private func failure(_ error: any Error, _ stepName: String, _ r: inout Result) {
        let failure = error as? Failure
        r.result = false
        r.failure = failure?.kind ?? .error
        r.key = failure?.key
        if dryRun && r.failure != .hostWrong {
            // What a check cannot see yet (the cluster is not there) is unknown, not a change:
            // its own status, naming the step whose work it needs when the error says.
            r.unknown = true
            r.needs = failure?.needs
            r.tone = .unknown
            r.label = DryRunStatus.unknownLabel(needs: r.needs, step: stepName)
            r.detail = "cannot check yet: \(error)"
        } else {
            r.tone = .failed
            r.label = "FAILED"
            r.detail = "\(error)"
        }
    }

    /// Logs and shows one action's result and adds it to the outcome; false when it failed.
    private func report(_ step: Step, _ action: Action, _ r: Result, ms: Double, into outcome: inout Outcome) -> Bool {
        if r.pending { outcome.pending += 1 }
        if r.unknown {
            outcome.unknown += 1
            if let needs = r.needs, !outcome.needs.contains(needs) { outcome.needs.append(needs) }
        }
        if r.result && r.changed { outcome.changed += 1 }
        // What the log and the console get of it is bounded (a tenant's value in a server's
        // error can be of any size).
        var r = r
        r.detail = Bounded.text(r.detail)
        log?.write(
            LogRecord(
                time: Clock.timestamp(), run: runID, step: step.name, action: action.name, result: r.result,
                changed: r.changed, ms: ms, detail: r.detail, dryRun: dryRun, status: r.status, needs: r.needs ?? "",
                preview: r.preview, failure: r.failure?.rawValue ?? "", key: r.key ?? ""))
        var line = "  " + console.paint("[\(r.label)]".padded(15), r.tone) + action.name + "  (\(JSON.number(ms)) ms)"
        if !r.detail.isEmpty && r.detail != r.label {
            line += "\n" + r.detail.split(separator: "\n").map { "      \($0)" }.joined(separator: "\n")
        }
        if !r.preview.isEmpty { line += "\n" + DryRunStatus.indented(r.preview, console) }
        console.out(line)
        if !r.result && !r.pending {
            outcome.status = ExitStatus.failed
            if outcome.failedAction == nil { outcome.failedAction = action.name }
            return false
        }
        return true
    }
}
