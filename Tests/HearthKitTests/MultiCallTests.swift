#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HearthKit

@Suite("one executable, a command per name (MultiCall)")
struct MultiCallTests {
    @Test("the name it runs by picks the command; `hearthminds COMMAND` too; anything else is no command")
    func resolve() throws {
        let byLink = try #require(MultiCall.resolve(["/opt/hm/bootstrap/bin/hm-databases", "--dry-run"]))
        #expect(byLink.type == DatabasesCommand.self && byLink.arguments == ["--dry-run"])
        let bare = try #require(MultiCall.resolve(["hm-migrate", "up", "--sql"]))
        #expect(bare.type == MigrateCommand.self && bare.arguments == ["up", "--sql"])
        let byArgument = try #require(MultiCall.resolve(["./hearthminds", "pg-hba", "--help"]))
        #expect(byArgument.type == PgHbaCommand.self && byArgument.arguments == ["--help"])
        #expect(try #require(MultiCall.resolve(["hearthminds", "hm-reset"])).type == ResetCommand.self)
        #expect(MultiCall.resolve(["hearthminds"]) == nil)
        #expect(MultiCall.resolve(["hearthminds", "--help"]) == nil)
        #expect(MultiCall.resolve(["hearthminds", "nosuch"]) == nil)
        #expect(MultiCall.resolve(["hm-nosuch", "databases"])?.type == DatabasesCommand.self)
        // Every step of bootstrap/steps, and reset, migrate and run-metrics, has its command.
        let steps = try FileSystem.readText(TestFiles.repositoryRoot + "/bootstrap/steps").split(separator: "\n")
            .filter { !$0.hasPrefix("#") && !$0.isEmpty }.map { "hm-" + $0.prefix(while: { $0 != "\t" }) }
        #expect(Set(MultiCall.commands.map(\.name)) == Set(steps + ["hm-reset", "hm-migrate", "hm-restore", "hm-run-metrics"]))
    }

    @Test("bootstrap/steps is the one list of the steps: the step commands in its order, each one's abstract its line word for word; the tools are the same in MultiCall, the Makefile and lib.sh, and none is a step")
    func stepsFile() throws {
        let lines = try FileSystem.readText(TestFiles.repositoryRoot + "/bootstrap/steps").split(separator: "\n")
            .filter { !$0.hasPrefix("#") && !$0.isEmpty }
        let steps = lines.map { line -> (name: String, description: String) in
            let fields = line.split(separator: "\t", maxSplits: 1)
            return ("hm-" + fields[0], fields.count > 1 ? String(fields[1]) : "")
        }
        #expect(!steps.isEmpty)
        #expect(MultiCall.steps.map(\.name) == steps.map(\.name))
        for (command, step) in zip(MultiCall.steps, steps) {
            #expect(command.type.configuration.abstract == step.description, "\(command.name)")
        }
        #expect(MultiCall.commands.map(\.name) == MultiCall.steps.map(\.name) + MultiCall.tools.map(\.name))
        #expect(Set(MultiCall.tools.map(\.name)).isDisjoint(with: steps.map(\.name)))
        // The tools, as the Makefile (TOOLS) and install.sh's library (HM_TOOLS) name them.
        func words(_ file: String, after prefix: String) throws -> [String] {
            let line = try FileSystem.readText(TestFiles.repositoryRoot + "/" + file).split(separator: "\n")
                .first { $0.hasPrefix(prefix) }
            return (line?.dropFirst(prefix.count) ?? "").split(whereSeparator: { " ()".contains($0) }).map { "hm-" + $0 }
        }
        #expect(try words("Makefile", after: "TOOLS :=") == MultiCall.tools.map(\.name))
        #expect(try words("bootstrap/lib.sh", after: "HM_TOOLS=") == MultiCall.tools.map(\.name))
    }

    @Test("hard links to the executable: each name runs its own command, with its own --help and exit codes")
    func hardLinks() async throws {
        // In the build directory: a hard link must be on the executable's file system.
        let directory = TestFiles.buildDirectory + "/multicall-test-\(getpid())"
        mkdir(directory, 0o755)
        defer { TestFiles.spawn(["/bin/rm", "-rf", directory]) }
        let binary = TestFiles.buildDirectory + "/" + MultiCall.name
        for (name, type) in MultiCall.commands {
            let path = directory + "/" + name
            #expect(link(binary, path) == 0, "link \(path): \(FileSystem.errnoText())")
            let help = try await Command.run([path, "--help"])
            #expect(help.status == 0, "\(name) --help: \(help.stderr)")
            #expect(help.stdout.contains("USAGE: \(name)"), "\(name) --help: \(help.stdout.prefix(200))")
            #expect(help.stdout.contains("OVERVIEW: " + type.configuration.abstract.prefix(40)), "\(name) --help")
        }
        var status = stat()
        #expect(stat(binary, &status) == 0 && status.st_nlink >= UInt(MultiCall.commands.count + 1))
        // Its own flags: hm-pgvector has --install-only, hm-reset --yes, hm-migrate subcommands.
        #expect(try await Command.run([directory + "/hm-pgvector", "--help"]).stdout.contains("--install-only"))
        #expect(try await Command.run([directory + "/hm-reset", "--help"]).stdout.contains("--service-user"))
        #expect(try await Command.run([directory + "/hm-migrate", "--help"]).stdout.contains("stamp"))
        #expect(!(try await Command.run([directory + "/hm-verify", "--help"]).stdout.contains("--install-only")))
        // Its own exit codes: bad usage and bad configuration are 64, before anything happens.
        #expect(try await Command.run([directory + "/hm-databases", "--no-such-flag"]).status == 64)
        let badConfig = try await Command.run([directory + "/hm-service-user", "--set", "POSTGRES_PORT=0"])
        #expect(badConfig.status == 64 && badConfig.stderr.contains("hm-service-user") && badConfig.stderr.contains("POSTGRES_PORT"))
        // By its own name: the command as the first argument; without one, the list and 64.
        let byName = try await Command.run([binary, "verify", "--help"])
        #expect(byName.status == 0 && byName.stdout.contains("USAGE: hm-verify"))
        let none = try await Command.run([binary])
        #expect(none.status == 64 && MultiCall.commands.allSatisfy { none.stderr.contains($0.name) })
        let list = try await Command.run([binary, "--help"])
        #expect(list.status == 0 && list.stdout.contains("hm-migrate"))
    }
}
