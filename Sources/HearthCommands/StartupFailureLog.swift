import HearthConfiguration
import HearthRunner
import HearthSystem

/// A step that ends before its log is opened (exit 64: the configuration was refused, nothing
/// changed) still leaves one record, so that what drives the suite (the Ansible module) reads
/// the failure's kind and key from the log's fields rather than the console's wording. Where:
/// a configuration refused while it was read goes to `ConfigSources.refusedLogPath` (the
/// environment's or `--set`'s HEARTHMINDS_LOG when valid, else the default: never a value of
/// the refused file); one refused when the step is made (its flags against a configuration that
/// was read and checked) goes to that configuration's log. As root only (the log's directory is
/// root's, and JSONLog's rules for it hold), and quietly: a log that cannot be written is not a
/// second failure.
public enum StartupFailureLog {
    public static func write(_ step: String, _ error: any Error, path: String, dryRun: Bool, environment: [String: String]) {
        guard SystemAccount.isRoot, let log = try? JSONLog(path: path) else { return }
        let failure = error as? Failure
        log.write(
            LogRecord(
                time: Clock.timestamp(), run: StepMain.runID(environment: environment), step: step,
                action: "(configuration)", result: false, changed: false, ms: 0,
                detail: "\(error)", dryRun: dryRun, status: "failed",
                failure: (failure?.kind ?? .configuration).rawValue, key: failure?.key ?? ""))
    }
}
