import HearthRunner
import HearthSystem
import HearthPG
import ArgumentParser

/// A host step, declared once: its name, its one-line abstract (its line in bootstrap/steps), its
/// help text, the earlier steps whose work it needs, its own flags, and how it is made. Its
/// command is `StepCommand<Self>` and its place among the commands one line of
/// `CommandDefinitions.all`; the executable's `--list`, every `--help`, the man pages (the
/// Makefile asks the executable for its commands), the JSON log and install.sh's list (checked
/// against it: MultiCallTests) all follow from that.
public protocol StepDefinition {
    /// The step's own flags beyond StepOptions (none: NoStepFlags).
    associatedtype Flags: ParsableArguments = NoStepFlags
    /// The step's name (`databases`): its command is `hm-<name>`, its lines in the log say it.
    static var name: String { get }
    /// What it does, in one line: `--help`'s overview, `--list`, bootstrap/steps word for word.
    static var abstract: String { get }
    /// What it does in full (`--help`, the man page), before the exit statuses every step shares.
    static var discussion: String { get }
    /// The earlier steps whose work it needs (they come before it in the list of definitions).
    static var needs: [any StepDefinition.Type] { get }
    /// The step, made with the run's context (StepMain makes it once) and these flags.
    static func build(_ context: StepContext, flags: Flags) throws -> Step
}

extension StepDefinition {
    public static var needs: [any StepDefinition.Type] { [] }
}

/// The flags of a step that has none of its own.
public struct NoStepFlags: ParsableArguments, Sendable {
    public init() {}
}

/// The exit statuses of every step's command (written once: every step's `--help` ends with it).
public enum StepExitStatus {
    public static let paragraph = """
        Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
        75 another run holds the lock (/run/hearthminds/bootstrap.lock).
        """
}

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
