import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import HearthKit
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
import ArgumentParser

/// `hm-run-metrics`: install.sh's last word on a run, as textfile metrics
/// (NODE_EXPORTER_TEXTFILE_DIR/hearthminds_run.prom): its exit status, duration, the step that
/// ended it false, when it ended, when a run last ended true. Not a step; takes no lock (it runs
/// under install.sh's).
public struct RunMetricsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-run-metrics",
        abstract: "write the run's textfile metrics (install.sh runs it when a run ends)",
        discussion: """
            Writes hearthminds_run.prom in NODE_EXPORTER_TEXTFILE_DIR (none when it is empty), whole and \
            atomically: hearthminds_run_success, _exit_status, _duration_seconds, _failed_step, \
            _last_run_timestamp_seconds and _last_success_timestamp_seconds (kept from the file it replaces \
            when this run ended false). A dry run writes nothing. \
            Exit status: 0 written (or nothing to write), 1 it could not be written, 64 bad usage or configuration.
            """)

    @Option(name: .long, help: "The run's exit status.")
    var exitStatus: Int32

    @Option(name: .long, help: "How long the run took, in seconds.")
    var seconds: Double = 0

    @Option(name: .long, help: "The step that ended the run false, if one did.")
    var failedStep: String = ""

    /// --config, --set, --dry-run (a dry run writes nothing), as every step takes them.
    @OptionGroup var options: StepOptions

    public init() {}

    public func run() async throws {
        if options.dryRun { return }
        let console = Console()
        let environment = currentEnvironment()
        guard let loaded = StepMain.prepare(
            "run-metrics", options, environment: environment, console: console, logRefusal: false)
        else {
            throw ExitCode(ExitStatus.usage)
        }
        let metrics = RunMetrics.run(
            status: exitStatus, seconds: seconds, failedStep: failedStep, dryRun: options.dryRun, now: TextfileMetrics.wallClock(),
            previous: TextfileMetrics.read(RunMetrics.runFile, loaded))
        do {
            try metrics.write(RunMetrics.runFile, loaded)
        } catch {
            console.err("hm-run-metrics: \(RunMetrics.runFile) not written: \(error)")
            throw ExitCode(ExitStatus.failed)
        }
    }
}
