import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The textfile metrics of every run (issue 23): each step writes
/// `hearthminds_step_<step>.prom` when it ends (not in a dry run), and install.sh, through
/// `hm-run-metrics`, writes `hearthminds_run.prom` when the run ends. Each file is replaced
/// whole; the time of the last true run is carried over from the file it replaces.
public enum RunMetrics {
    public static func stepFile(_ step: String) -> String { "hearthminds_step_\(step.replacingDashes).prom" }
    public static let runFile = "hearthminds_run.prom"

    /// A step's metrics: its result, exit status, duration, changed and total actions, when it
    /// last ran and last ended true (`previous`: the file this one replaces).
    public static func step(
        _ step: String, status: Int32, seconds: Double, changed: Int, actions: Int, now: Double, previous: String?
    ) -> TextfileMetrics {
        let labels = [("step", step)]
        let lastTrue = status == 0
            ? now : previous.flatMap { TextfileMetrics.value(of: "hearthminds_step_last_success_timestamp_seconds", labels: labels, in: $0) }
        var families: [TextfileMetrics.Family] = [
            .init("hearthminds_step_success", help: "1 when the step's last run ended true, 0 when false.", [.init(labels, status == 0 ? 1 : 0)]),
            .init("hearthminds_step_exit_status", help: "The exit status of the step's last run (0 true, 1 false, 64 configuration).", [.init(labels, Double(status))]),
            .init("hearthminds_step_duration_seconds", help: "How long the step's last run took.", [.init(labels, seconds)]),
            .init("hearthminds_step_changed_actions", help: "Actions the step's last run changed (0 on a converged host).", [.init(labels, Double(changed))]),
            .init("hearthminds_step_actions", help: "Actions of the step.", [.init(labels, Double(actions))]),
            .init("hearthminds_step_last_run_timestamp_seconds", help: "When the step last ended (Unix time).", [.init(labels, now)]),
        ]
        if let lastTrue {
            families.append(.init(
                "hearthminds_step_last_success_timestamp_seconds", help: "When the step last ended true (Unix time).",
                [.init(labels, lastTrue)]))
        }
        return TextfileMetrics(families)
    }

    /// The run's metrics (install.sh's): its exit status, when it ended, when a run last ended
    /// true, how long it took, which step ended it false ("" when none did).
    public static func run(status: Int32, seconds: Double, failedStep: String, dryRun: Bool, now: Double, previous: String?)
        -> TextfileMetrics
    {
        let lastTrue = status == 0
            ? now : previous.flatMap { TextfileMetrics.value(of: "hearthminds_run_last_success_timestamp_seconds", labels: [], in: $0) }
        var families: [TextfileMetrics.Family] = [
            .init("hearthminds_run_success", help: "1 when the last run of install.sh ended true, 0 when false.", [.init([], status == 0 ? 1 : 0)]),
            .init("hearthminds_run_exit_status", help: "The exit status of the last run of install.sh.", [.init([], Double(status))]),
            .init("hearthminds_run_duration_seconds", help: "How long the last run of install.sh took.", [.init([], seconds)]),
            .init("hearthminds_run_last_run_timestamp_seconds", help: "When the last run of install.sh ended (Unix time).", [.init([], now)]),
            .init("hearthminds_run_failed_step", help: "The step that ended the last run false (1), if one did.",
                  failedStep.isEmpty ? [] : [.init([("step", failedStep)], 1)]),
        ]
        if let lastTrue {
            families.append(.init(
                "hearthminds_run_last_success_timestamp_seconds", help: "When a run of install.sh last ended true (Unix time).",
                [.init([], lastTrue)]))
        }
        return TextfileMetrics(families)
    }

    /// Writes a step's file; a failure to write is said on standard error and changes nothing
    /// of the step's result (the metrics are a report of the run, not part of it).
    public static func recordStep(
        _ step: String, status: Int32, seconds: Double, changed: Int, actions: Int, config: HearthConfig, console: Console
    ) {
        let file = stepFile(step)
        let metrics = Self.step(
            step, status: status, seconds: seconds, changed: changed, actions: actions, now: TextfileMetrics.wallClock(),
            previous: TextfileMetrics.read(file, config))
        do {
            try metrics.write(file, config)
        } catch {
            console.err("hm-\(step): note: the run's metrics were not written (\(file)): \(error)")
        }
    }
}

extension String {
    /// `vector-index` → `vector_index`, for file names a collector reads.
    package var replacingDashes: String { String(map { $0 == "-" ? "_" : $0 }) }
}
