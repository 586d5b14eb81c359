#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser
import Testing
@testable import HearthCommands
@testable import HearthKit
@testable import HearthPgvector
@testable import HearthPostgres
@testable import HearthClient
@testable import HearthMigrations
@testable import HearthMonitoring
@testable import HearthBackup
@testable import HearthPG
@testable import HearthRunner
@testable import HearthConfiguration
@testable import HearthSystem

/// A step that exists only here: its definition is all there is of it (no command struct, no
/// line anywhere else in the sources).
enum ThrowawayStep: StepDefinition {
    static let name = "throwaway-test"
    static let abstract = "a step of the tests alone: one check, always true"
    static let discussion = "Declared by its definition and one line of a list of commands (StepDefinitionTests)."
    static var needs: [any StepDefinition.Type] { [PostgresStep.self] }

    static func build(_ context: StepContext, flags: NoStepFlags) throws -> Step {
        Step(name, [.assertion("the throwaway step's one check") { true }])
    }
}

@Suite("a step declared once: its definition and a line in the list of commands (StepDefinition)")
struct StepDefinitionTests {
    let multiCall = MultiCall(CommandDefinitions.all + [.step(ThrowawayStep.self)])

    @Test("a throwaway step added by one definition appears in --list, the usage, its --help (with the exit statuses) and its man page's source: nothing else touched")
    func throwawayStep() async throws {
        // --list (what the Makefile and install.sh's list follow) and the executable's usage
        #expect(multiCall.list.hasSuffix("verify\tcheck the whole host, read-only\nthrowaway-test\t\(ThrowawayStep.abstract)\n"))
        #expect(multiCall.usage.contains("hm-throwaway-test " + ThrowawayStep.abstract))
        #expect(multiCall.definitions.last?.needs == ["postgres"])
        // run by its name
        let resolved = try #require(multiCall.resolve(["/opt/hm/bootstrap/bin/hm-throwaway-test", "--dry-run"]))
        #expect(resolved.type == StepCommand<ThrowawayStep>.self && resolved.arguments == ["--dry-run"])
        #expect(MultiCall().resolve(["hm-throwaway-test"]) == nil)
        // --help: the abstract, the discussion, the exit statuses every step shares, the flags
        let help = StepCommand<ThrowawayStep>.helpMessage()
        #expect(help.contains("OVERVIEW: " + ThrowawayStep.abstract))
        #expect(help.contains("USAGE: hm-throwaway-test"))
        // (--help wraps the text at 80 columns)
        #expect(help.contains("Declared by its definition"))
        #expect(help.contains("Exit status: 0 every action true,"))
        #expect(help.contains("--dry-run") && help.contains("--config"))
        // The man page: generate-manual renders what the command prints for
        // --experimental-dump-help (the Makefile runs it for every name of `--list`).
        var dump = ""
        do {
            _ = try StepCommand<ThrowawayStep>.parseAsRoot(["--experimental-dump-help"])
            Issue.record("--experimental-dump-help parsed as a run")
        } catch {
            dump = StepCommand<ThrowawayStep>.fullMessage(for: error)
        }
        #expect(dump.contains(#""commandName" : "hm-throwaway-test""#) || dump.contains(#""commandName":"hm-throwaway-test""#), "\(dump.prefix(300))")
        #expect(dump.contains(ThrowawayStep.abstract) && dump.contains("Exit status"))
        // The JSON log: StepDefinitionLogTests (as root: a step's command runs only as root).
    }
}

@Suite("one context for every step (StepContext)")
struct StepContextTests {
    @Test("the plumbing every step needs is made in StepContext alone: the server, the superuser's connections, the passwords, the credentials, the width")
    func madeOnce() async throws {
        // Each is built once, in Steps/StepContext.swift; a copy elsewhere is named. (The cluster
        // restore's check reads the client files as they are when it runs, on purpose.)
        let patterns = [
            "PGServer(config:", "PasswordBook(", "Credentials(config", "AdminConnections(", "?? Workers.defaultWidth",
        ]
        for pattern in patterns {
            let found = try await Command.run(["grep", "-rnF", pattern, TestFiles.repositoryRoot + "/Sources"])
            let copies = found.stdout.split(separator: "\n").filter {
                !$0.contains("/Steps/StepContext.swift:") && !$0.contains("///")
                    && !($0.contains("/Steps/ClusterRestore.swift:") && pattern == "PasswordBook(")
            }
            #expect(copies.isEmpty, "\(pattern) outside StepContext: \(copies.joined(separator: "\n"))")
        }
    }

    @Test("the width of a group: 1 with --jobs 1 and when the server does not answer; the server the context was given, or the configured one")
    func width() throws {
        let config = try loadConfig()
        let nowhere = PGServer(socketDirectory: "/nonexistent", port: 1)
        #expect(StepContext(config, server: nowhere, jobs: 1).width()() == 1)
        #expect(StepContext(config, server: nowhere, jobs: 4).width()() == 1)
        let configured = StepContext(config)
        #expect(configured.server.port == config.port && configured.server.socketDirectory == PGTarget.debianSocketDirectory)
        #expect(StepContext(config, socketDirectory: "/tmp/x").server.socketDirectory == "/tmp/x")
    }
}
