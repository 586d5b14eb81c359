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

/// The command of a step: StepOptions, the step's own flags, its help from its definition, and
/// StepMain's start-up (configuration, root, lock, log) around the step it builds.
public struct StepCommand<Definition: StepDefinition>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "hm-" + Definition.name,
            abstract: Definition.abstract,
            discussion: Definition.discussion + " " + StepExitStatus.paragraph)
    }

    @OptionGroup public var options: StepOptions
    @OptionGroup public var flags: Definition.Flags

    public init() {}

    public func run() async throws {
        throw ExitCode(await execute(environment: currentEnvironment()))
    }

    /// The run, with the environment it reads (`run()`: the process's); its exit status.
    public func execute(environment: [String: String]) async -> Int32 {
        let flags = flags
        return await StepMain.run(Definition.name, options, environment: environment) {
            try Definition.build($0, flags: flags)
        }
    }
}
