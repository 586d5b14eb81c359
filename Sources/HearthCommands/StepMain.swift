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
/// The body of every step executable: load and validate the configuration (exit 64 on any
/// error, before anything changes), take the run lock (exit 75 when another run holds it),
/// make the run's StepContext, build the step with it, open the log, run it.
public enum StepMain {
    public static func run(
        _ name: String, _ options: StepOptions, requiresRoot: Bool = true,
        environment: [String: String] = currentEnvironment(), build: (StepContext) throws -> Step
    ) async -> Int32 {
        let context: StepContext
        switch start(name, options, requiresRoot: requiresRoot, environment: environment) {
        case .ready(let made): context = made
        case .exit(let status): return status
        }
        let step: Step
        do {
            step = try build(context)
        } catch let error as Failure where error.kind == .configuration {
            refused(name, error, log: context.config.logPath, options, environment: environment, console: context.console)
            return ExitStatus.usage
        } catch {
            context.console.err("hm-\(name): \(error)")
            return ExitStatus.failed
        }
        return await execute(step, name: name, context: context, dryRun: options.dryRun, environment: environment)
    }

    /// What the start-up gives: the run's context, or the exit status it ended with (said on
    /// stderr already).
    public enum Started {
        case ready(StepContext)
        case exit(Int32)
    }

    /// The start-up every step and hm-reset share: the validated configuration (64), root (64),
    /// the run lock (75; 1 when its directory fails the rules), and from them the run's one
    /// StepContext. Its log is opened by `execute`, once the step is made (a reset not confirmed
    /// logs nothing; a refused configuration, exit 64, one record: StartupFailureLog).
    public static func start(
        _ name: String, _ options: StepOptions, requiresRoot: Bool = true, environment: [String: String],
        console: Console = Console()
    ) -> Started {
        guard let config = prepare(name, options, requiresRoot: requiresRoot, environment: environment, console: console)
        else { return .exit(ExitStatus.usage) }
        if let status = lock(name, environment: environment, console: console) { return .exit(status) }
        return .ready(
            StepContext(config, migrations: MigrationSet.defaultDirectory(environment: environment), console: console))
    }

    /// The validated configuration, once the caller is known to be root (when it must be);
    /// nil after saying why on stderr (the caller exits 64: nothing has changed). `logRefusal`:
    /// whether a refused configuration is recorded in the log (StartupFailureLog); not for
    /// hm-run-metrics, which install.sh runs after the step that refused it already said so.
    public static func prepare(
        _ name: String, _ options: StepOptions, requiresRoot: Bool = true, environment: [String: String],
        console: Console, logRefusal: Bool = true
    ) -> HearthConfig? {
        guard let config = configuration(name, options, environment: environment, console: console, logRefusal: logRefusal)
        else { return nil }
        if requiresRoot && !requireRoot(name, console: console) { return nil }
        return config
    }

    /// The validated configuration of the layers `options` names; nil after saying why on
    /// stderr (the caller exits 64: nothing has changed).
    public static func configuration(
        _ name: String, _ options: StepOptions, environment: [String: String], console: Console,
        logRefusal: Bool = true
    ) -> HearthConfig? {
        let sources = options.sources(environment: environment)
        do {
            return try HearthConfig.load(sources)
        } catch {
            refused(name, error, log: logRefusal ? sources.refusedLogPath : nil, options, environment: environment, console: console)
            return nil
        }
    }

    /// A refused configuration: said on stderr, and recorded in `log` (StartupFailureLog) unless nil.
    static func refused(
        _ name: String, _ error: any Error, log: String?, _ options: StepOptions, environment: [String: String],
        console: Console
    ) {
        console.err("hm-\(name): configuration error: \(error)")
        if let log { StartupFailureLog.write(name, error, path: log, dryRun: options.dryRun, environment: environment) }
    }

    /// True when running as root; false after saying so on stderr (the caller exits 64).
    public static func requireRoot(_ name: String, console: Console) -> Bool {
        if SystemAccount.isRoot { return true }
        console.err("hm-\(name): must run as root (sudo hm-\(name))")
        return false
    }

    /// Takes the run lock (RunLock: install.sh's descriptor when it passed one); nil when held,
    /// else the exit status after saying why on stderr: 75 when another run holds it, 1 when
    /// the lock's directory or file fails the rules.
    public static func lock(_ name: String, environment: [String: String], console: Console) -> Int32? {
        do {
            switch try RunLock.acquire(environment: environment) {
            case .held: return nil
            case .busy:
                console.err("hm-\(name): another run holds the lock (\(RunLock.path)); not starting")
                return ExitStatus.busy
            }
        } catch {
            console.err("hm-\(name): cannot take the lock \(RunLock.path): \(error)")
            return ExitStatus.failed
        }
    }

    /// Opens the context's log and runs the step under the run id install.sh set (or a new one).
    public static func execute(
        _ step: Step, name: String, context: StepContext, dryRun: Bool, environment: [String: String]
    ) async -> Int32 {
        let (config, console) = (context.config, context.console)
        do {
            try context.openLog()
        } catch {
            console.err("hm-\(name): \(error)")
            return ExitStatus.failed
        }
        let runID = Self.runID(environment: environment)
        StepDeadline.arm(
            step: name, seconds: StepDeadline.seconds(step: name, configured: config.stepTimeout), runID: runID,
            log: context.log, console: console)
        let runner = StepRunner(console: console, log: context.log, runID: runID, dryRun: dryRun)
        let counts = DryRunCounts.claim(environment)
        let started = Clock.nowMs()
        let outcome = await runner.run(step)
        DryRunCounts.report(outcome, to: counts)
        // The run's textfile metrics (issue 23): not in a dry run, which changes nothing.
        if !dryRun {
            RunMetrics.recordStep(
                name, status: outcome.status, seconds: (Clock.nowMs() - started) / 1000, changed: outcome.changed,
                actions: step.actions.count, config: config, console: console)
        }
        return outcome.status
    }

    /// The run id of the log's lines: the one install.sh set for its whole run, or a new one.
    public static func runID(environment: [String: String]) -> String {
        environment["HEARTHMINDS_RUN_ID"].flatMap { $0.isEmpty ? nil : $0 } ?? Clock.newRunID()
    }
}
