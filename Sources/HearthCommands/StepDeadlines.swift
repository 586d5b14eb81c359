import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import HearthKit
import HearthConfiguration
import HearthRunner

/// The steps' own deadlines, beside the list of them: StepDeadline (the runner's watchdog) knows
/// no step.
extension StepDeadline {
    /// The deadline of `step` in seconds: STEP_TIMEOUT, or for `auto` (nil) by what the step
    /// may have to do on a first run: install packages (postgres, pgvector: apt, a build from
    /// source), work on data that grows without bound (migrations, vector-index: a revision that
    /// rewrites a table, an index trained on millions of rows), or the rest (seconds on a
    /// converged host, a few minutes for 200 AIs); a backup or a restore copies the whole
    /// cluster (a day).
    public static func seconds(step: String, configured: Int?) -> Int {
        if let configured { return configured }
        switch step {
        case PostgresStep.name, PgvectorStep.name: return 1800
        case MigrationsStep.name, VectorIndexStep.name: return 3600
        // a full backup, a test restore or a restore of the whole cluster: hours on a large one
        case BackupStep.name, ClusterRestore.name: return 86_400
        default: return 300
        }
    }
}
