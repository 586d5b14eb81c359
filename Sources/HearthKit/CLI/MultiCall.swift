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
public enum MultiCall {
    /// The name of the executable itself.
    public static let name = "hearthminds"

    /// Every command, by the name it is run as: the steps, then the tools.
    public static var commands: [(name: String, type: any ParsableCommand.Type)] { steps + tools }

    /// The host steps, in the order of bootstrap/steps (MultiCallTests holds them to it).
    public static var steps: [(name: String, type: any ParsableCommand.Type)] {
        [
            ("hm-service-user", ServiceUserCommand.self),
            ("hm-postgres", PostgresCommand.self),
            ("hm-pg-hba", PgHbaCommand.self),
            ("hm-pgvector", PgvectorCommand.self),
            ("hm-databases", DatabasesCommand.self),
            ("hm-migrations", MigrationsCommand.self),
            ("hm-vector-index", VectorIndexCommand.self),
            ("hm-backup", BackupCommand.self),
            ("hm-monitoring", MonitoringCommand.self),
            ("hm-verify", VerifyCommand.self),
        ]
    }

    /// The tools, not steps (bootstrap/steps does not list them; the Makefile's TOOLS, lib.sh's
    /// HM_TOOLS): hm-reset, which install.sh runs only with --reset, hm-migrate, and
    /// hm-run-metrics, which install.sh runs when a run ends.
    public static var tools: [(name: String, type: any ParsableCommand.Type)] {
        [
            ("hm-reset", ResetCommand.self),
            ("hm-migrate", MigrateCommand.self),
            ("hm-restore", RestoreCommand.self),
            ("hm-run-metrics", RunMetricsCommand.self),
        ]
    }

    /// What `arguments` (argv, the program name first) asks for: the command and its own
    /// arguments; nil when it names none.
    public static func resolve(_ arguments: [String]) -> (type: any ParsableCommand.Type, arguments: [String])? {
        guard let program = arguments.first else { return nil }
        let invoked = program.split(separator: "/").last.map(String.init) ?? program
        if let found = command(invoked) { return (found, Array(arguments.dropFirst())) }
        // Run by its own name (or any other): the first argument names the command.
        guard arguments.count > 1, let found = command(arguments[1]) ?? command("hm-" + arguments[1]) else { return nil }
        return (found, Array(arguments.dropFirst(2)))
    }

    static func command(_ name: String) -> (any ParsableCommand.Type)? {
        commands.first { $0.name == name }?.type
    }

    public static var usage: String {
        func list(_ commands: [(name: String, type: any ParsableCommand.Type)]) -> String {
            commands.map { "  " + $0.name.padded(18) + $0.type.configuration.abstract }.joined(separator: "\n")
        }
        return """
            Usage: \(name) COMMAND [ARGS...]   (or run it as COMMAND: bootstrap/bin/hm-<step> are links to it)

            The HearthMinds bootstrap's commands, each with its own --help.
            The steps, in the order install.sh runs them (bootstrap/steps):
            \(list(steps))
            The tools (install.sh runs hm-reset only with --reset):
            \(list(tools))
            """
    }

    /// The process's entry point: runs the command and exits with its status.
    public static func main(_ arguments: [String] = CommandLine.arguments) async -> Never {
        // (before any thread: no connection takes a password or a server from the environment)
        PGConnection.scrubEnvironment()
        guard let (type, rest) = resolve(arguments) else {
            let help = arguments.dropFirst().first.map { ["-h", "--help", "help"].contains($0) } ?? false
            Console.write(usage + "\n", to: help ? STDOUT_FILENO : STDERR_FILENO)
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
