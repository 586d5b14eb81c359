import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
import ArgumentParser

// The steps' own flags (a StepDefinition's Flags), beyond StepOptions.

/// hm-pgvector's.
public struct PgvectorFlags: ParsableArguments, Sendable {
    @Flag(name: .long, help: """
        Install the extension's files only and skip the cluster checks \
        (build and test hosts; `make setup` uses it).
        """)
    public var installOnly = false

    public init() {}
}

/// hm-backup's.
public struct BackupFlags: ParsableArguments, Sendable {
    @Flag(help: "Prove the newest backup: restore it into a throwaway cluster and check it.")
    public var testRestore = false

    @Flag(help: "Only write the backup metrics (hearthminds_backup_<stanza>.prom): the timers' units run it after each backup.")
    public var writeMetrics = false

    public init() {}

    public func validate() throws {
        if testRestore && writeMetrics { throw ValidationError("--test-restore and --write-metrics exclude each other") }
    }
}
