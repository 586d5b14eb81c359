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
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

/// The flags every step executable takes.
public struct StepOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: ArgumentHelp(
        "Host configuration file, read instead of \(ConfigSources.defaultHostFile).", valueName: "FILE"))
    public var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override one key (repeatable); secrets are refused here, they belong in the file or the environment.",
        valueName: "KEY=VALUE"))
    public var overrides: [String] = []

    @Flag(name: .long, help: "Run the checks only and report what would change; change nothing.")
    public var dryRun = false

    public init() {}

    /// What the arguments alone show (exit 64 before anything runs): each `--set` is KEY=VALUE
    /// and names no secret.
    public func validate() throws {
        for flag in overrides {
            do { _ = try ConfigSources.override(flag) } catch { throw ValidationError("\(error)") }
        }
    }

    /// The layers this invocation reads.
    public func sources(environment: [String: String] = currentEnvironment()) -> ConfigSources {
        ConfigSources(
            shippedFile: ShippedFiles.defaultsFile(environment: environment), hostFile: config,
            environment: environment, overrides: overrides)
    }
}
