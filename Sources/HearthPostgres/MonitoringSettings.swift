import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The server settings of monitoring (issue 23), a group of their own in our conf.d file
/// (ServerSettings): pg_stat_statements preloaded, for the top statements of each AI. Its
/// view lives in the `postgres` database only (the monitoring step creates it there), which
/// no AI may connect to; an AI's own session shows the texts of its own statements only.
public enum MonitoringSettings {
    public static let preloadLibraries = "pg_stat_statements"

    /// Settings a change of which takes a restart.
    public static let restartSettings: Set<String> = ["shared_preload_libraries"]

    /// name → value, as pg_settings shows them.
    public static let values: [(name: String, value: String)] = [
        ("shared_preload_libraries", preloadLibraries)
    ]

    public static let rendered = """
        # Monitoring (hm-monitoring, docs/monitoring.md): query statistics per role and database,
        # read by the monitoring role only. A change here is the one restart hm-postgres does.
        shared_preload_libraries = '\(preloadLibraries)'

        """
}
