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
/// A step that ends before its log is opened (exit 64: the configuration was refused, nothing
/// changed) still leaves one record, so that what drives the suite (the Ansible module) reads
/// the failure's kind and key from the log's fields rather than the console's wording. The
/// configuration was refused, so the record goes to the HEARTHMINDS_LOG its layers give when
/// read without the rest (`ConfigSources.logPathBestEffort`), or to the default log; as root
/// only (the log's directory is root's, and JSONLog's rules for it hold), and quietly: a log
/// that cannot be written is not a second failure.
public enum StartupFailureLog {
    public static func write(
        _ step: String, _ error: any Error, sources: ConfigSources, dryRun: Bool, environment: [String: String]
    ) {
        guard SystemAccount.isRoot, let log = try? JSONLog(path: sources.logPathBestEffort) else { return }
        let failure = error as? Failure
        log.write(
            LogRecord(
                time: Clock.timestamp(), run: StepMain.runID(environment: environment), step: step,
                action: "(configuration)", result: false, changed: false, ms: 0,
                detail: "\(error)", dryRun: dryRun, status: "failed",
                failure: (failure?.kind ?? .configuration).rawValue, key: failure?.key ?? ""))
    }
}
