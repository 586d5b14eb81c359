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
