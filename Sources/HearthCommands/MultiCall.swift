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

/// One executable for every command, chosen by the name it is run by (as busybox, or SwiftPM's
/// own `swift-build` and `swift-package`): the release tarball's `bootstrap/bin/hm-<step>` are
/// hard links to `bootstrap/bin/hearthminds`, each with its own flags, help, exit codes and
/// log. `hearthminds <command> ARGS` runs a command by name too (`hearthminds databases
/// --dry-run`, or with its `hm-` prefix). Nine executables with a static Swift runtime each
/// were 143 MiB unpacked; this one is 17 MiB (about 6 MiB in the tarball).
/// One line of the list of commands: a step (its definition) or a tool (its command).
public struct CommandDefinition: @unchecked Sendable {
    public enum Kind: Sendable { case step, tool }
    /// The name without `hm-` (`databases`, `reset`).
    public let name: String
    public let kind: Kind
    public let type: any ParsableCommand.Type
    /// The steps whose work a step needs (by name; none for a tool).
    public let needs: [String]

    /// `hm-<name>`: what the command is run as.
    public var commandName: String { "hm-" + name }
    public var abstract: String { type.configuration.abstract }

    /// A step: its command is StepCommand of its definition.
    public static func step<Definition: StepDefinition>(_ definition: Definition.Type) -> CommandDefinition {
        CommandDefinition(
            name: Definition.name, kind: .step, type: StepCommand<Definition>.self,
            needs: Definition.needs.map { $0.name })
    }

    /// A tool: a command that is not a step (install.sh does not run it in its list).
    public static func tool(_ name: String, _ type: any ParsableCommand.Type) -> CommandDefinition {
        CommandDefinition(name: name, kind: .tool, type: type, needs: [])
    }
}

/// The one list of the commands, as swift-argument-parser's `subcommands: [...]`: the host steps
/// in the order install.sh runs them, then the tools. A new step is its file (its StepDefinition)
/// and a line here; bootstrap/steps, the README's table, docs/steps.md, the Makefile's and
/// lib.sh's tools are held to this list by MultiCallTests (a missing line is named).
public enum CommandDefinitions {
    public static let all: [CommandDefinition] = [
        .step(ServiceUserStep.self),
        .step(PostgresStep.self),
        .step(PgHbaStep.self),
        .step(PgvectorStep.self),
        .step(DatabasesStep.self),
        .step(MigrationsStep.self),
        .step(VectorIndexStep.self),
        .step(BackupStep.self),
        .step(MonitoringStep.self),
        .step(VerifyStep.self),
        // the tools: install.sh runs hm-reset only with --reset, hm-restore with --restore,
        // hm-run-metrics when a run ends
        .tool("reset", ResetCommand.self),
        .tool("migrate", MigrateCommand.self),
        .tool("restore", RestoreCommand.self),
        .tool("run-metrics", RunMetricsCommand.self),
    ]
}

/// One executable for every command, chosen by the name it is run by (as busybox, or SwiftPM's
/// own `swift-build` and `swift-package`): the release tarball's `bootstrap/bin/hm-<step>` are
/// hard links to `bootstrap/bin/hearthminds`, each with its own flags, help, exit codes and
/// log. `hearthminds <command> ARGS` runs a command by name too (`hearthminds databases
/// --dry-run`, or with its `hm-` prefix). Nine executables with a static Swift runtime each
/// were 143 MiB unpacked; this one is 17 MiB (about 6 MiB in the tarball).
/// `hearthminds --list` prints the steps as bootstrap/steps has them (name, tab, abstract),
/// `hearthminds --list-tools` the tools' names: what the Makefile makes links, man pages and
/// completions for.
public struct MultiCall: Sendable {
    /// The name of the executable itself.
    public static let name = "hearthminds"

    /// The commands it serves (CommandDefinitions.all; a test adds its own).
    public let definitions: [CommandDefinition]

    public init(_ definitions: [CommandDefinition] = CommandDefinitions.all) {
        self.definitions = definitions
    }

    /// Every command, by the name it is run as: the steps, then the tools.
    public var commands: [(name: String, type: any ParsableCommand.Type)] { steps + tools }

    /// The host steps, in the order of bootstrap/steps.
    public var steps: [(name: String, type: any ParsableCommand.Type)] {
        definitions.filter { $0.kind == .step }.map { ($0.commandName, $0.type) }
    }

    /// The tools, not steps (bootstrap/steps does not list them; the Makefile's TOOLS, lib.sh's
    /// HM_TOOLS).
    public var tools: [(name: String, type: any ParsableCommand.Type)] {
        definitions.filter { $0.kind == .tool }.map { ($0.commandName, $0.type) }
    }

    public static var commands: [(name: String, type: any ParsableCommand.Type)] { MultiCall().commands }
    public static var steps: [(name: String, type: any ParsableCommand.Type)] { MultiCall().steps }
    public static var tools: [(name: String, type: any ParsableCommand.Type)] { MultiCall().tools }

    /// What `arguments` (argv, the program name first) asks for: the command and its own
    /// arguments; nil when it names none.
    public func resolve(_ arguments: [String]) -> (type: any ParsableCommand.Type, arguments: [String])? {
        guard let program = arguments.first else { return nil }
        let invoked = program.split(separator: "/").last.map(String.init) ?? program
        if let found = command(invoked) { return (found, Array(arguments.dropFirst())) }
        // Run by its own name (or any other): the first argument names the command.
        guard arguments.count > 1, let found = command(arguments[1]) ?? command("hm-" + arguments[1]) else { return nil }
        return (found, Array(arguments.dropFirst(2)))
    }

    public static func resolve(_ arguments: [String]) -> (type: any ParsableCommand.Type, arguments: [String])? {
        MultiCall().resolve(arguments)
    }

    func command(_ name: String) -> (any ParsableCommand.Type)? {
        commands.first { $0.name == name }?.type
    }

    /// `--list`: the steps in order, one line each, "name<TAB>abstract" (bootstrap/steps' lines).
    public var list: String {
        definitions.filter { $0.kind == .step }.map { $0.name + "\t" + $0.abstract + "\n" }.joined()
    }

    /// `--list-tools`: the tools' names, one a line.
    public var toolList: String {
        definitions.filter { $0.kind == .tool }.map { $0.name + "\n" }.joined()
    }

    public var usage: String {
        func list(_ commands: [(name: String, type: any ParsableCommand.Type)]) -> String {
            commands.map { "  " + $0.name.padded(18) + $0.type.configuration.abstract }.joined(separator: "\n")
        }
        return """
            Usage: \(Self.name) COMMAND [ARGS...]   (or run it as COMMAND: bootstrap/bin/hm-<step> are links to it)
                   \(Self.name) --list | --list-tools

            The HearthMinds bootstrap's commands, each with its own --help.
            The steps, in the order install.sh runs them (bootstrap/steps):
            \(list(steps))
            The tools (install.sh runs hm-reset only with --reset):
            \(list(tools))
            """
    }

    public static var usage: String { MultiCall().usage }

    /// The process's entry point: runs the command and exits with its status.
    public static func main(_ arguments: [String] = CommandLine.arguments) async -> Never {
        // (before any thread: no connection takes a password or a server from the environment)
        PGConnection.scrubEnvironment()
        let multiCall = MultiCall()
        guard let (type, rest) = multiCall.resolve(arguments) else {
            // no command named: the lists, the usage
            switch arguments.dropFirst().first {
            case "--list": Console.write(multiCall.list, to: STDOUT_FILENO); exit(ExitStatus.ok)
            case "--list-tools": Console.write(multiCall.toolList, to: STDOUT_FILENO); exit(ExitStatus.ok)
            default: break
            }
            let help = arguments.dropFirst().first.map { ["-h", "--help", "help"].contains($0) } ?? false
            Console.write(multiCall.usage + "\n", to: help ? STDOUT_FILENO : STDERR_FILENO)
            exit(help ? ExitStatus.ok : ExitStatus.usage)
        }
        if let async = type as? any AsyncParsableCommand.Type {
            await async.main(rest)
        } else {
            type.main(rest)
        }
        exit(ExitStatus.ok)
    }
}
