#if canImport(Glibc)
import Glibc
#endif
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

@Suite("one executable, a command per name (MultiCall)")
struct MultiCallTests {
    @Test("the name it runs by picks the command; `hearthminds COMMAND` too; anything else is no command")
    func resolve() throws {
        let byLink = try #require(MultiCall.resolve(["/opt/hm/bootstrap/bin/hm-databases", "--dry-run"]))
        #expect(byLink.type == StepCommand<DatabasesStep>.self && byLink.arguments == ["--dry-run"])
        let bare = try #require(MultiCall.resolve(["hm-migrate", "up", "--sql"]))
        #expect(bare.type == MigrateCommand.self && bare.arguments == ["up", "--sql"])
        let byArgument = try #require(MultiCall.resolve(["./hearthminds", "pg-hba", "--help"]))
        #expect(byArgument.type == StepCommand<PgHbaStep>.self && byArgument.arguments == ["--help"])
        #expect(try #require(MultiCall.resolve(["hearthminds", "hm-reset"])).type == ResetCommand.self)
        #expect(MultiCall.resolve(["hearthminds"]) == nil)
        #expect(MultiCall.resolve(["hearthminds", "--help"]) == nil)
        #expect(MultiCall.resolve(["hearthminds", "nosuch"]) == nil)
        #expect(MultiCall.resolve(["hm-nosuch", "databases"])?.type == StepCommand<DatabasesStep>.self)
        // Every step of bootstrap/steps, and reset, migrate and run-metrics, has its command.
        let steps = try FileSystem.readText(TestFiles.repositoryRoot + "/bootstrap/steps").split(separator: "\n")
            .filter { !$0.hasPrefix("#") && !$0.isEmpty }.map { "hm-" + $0.prefix(while: { $0 != "\t" }) }
        #expect(Set(MultiCall.commands.map(\.name)) == Set(steps + ["hm-reset", "hm-migrate", "hm-restore", "hm-run-metrics"]))
    }

    static func trimmed(_ text: Substring) -> String {
        String(text.drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }

    /// The lines of a file of the repository.
    static func lines(_ file: String) throws -> [Substring] {
        try FileSystem.readText(TestFiles.repositoryRoot + "/" + file).split(separator: "\n", omittingEmptySubsequences: false)
    }

    @Test("CommandDefinitions.all is the one list: bootstrap/steps is `hearthminds --list` line for line; the README's and docs/steps.md's tables, the Makefile and lib.sh's HM_TOOLS follow it; a missing or extra line is named")
    func stepsFile() throws {
        let multiCall = MultiCall()
        let want = multiCall.list.split(separator: "\n").map(String.init)
        #expect(!want.isEmpty)
        let file = try Self.lines("bootstrap/steps").filter { !$0.hasPrefix("#") && !$0.isEmpty }.map(String.init)
        for line in want where !file.contains(line) { Issue.record("bootstrap/steps lacks the line: \(line)") }
        for line in file where !want.contains(line) { Issue.record("bootstrap/steps has a line no definition has: \(line)") }
        #expect(file == want, "bootstrap/steps is not in the order of CommandDefinitions.all")
        #expect(MultiCall.commands.map(\.name) == MultiCall.steps.map(\.name) + MultiCall.tools.map(\.name))
        #expect(Set(MultiCall.commands.map(\.name)).count == MultiCall.commands.count, "a command declared twice")
        // The tables of the README and docs/steps.md: a row per step, in order, `name` then
        // `hm-name`; the README's third column is the abstract (its backticks aside).
        let steps = multiCall.definitions.filter { $0.kind == .step }
        for document in ["README.md", "docs/steps.md"] {
            // (the rows whose second column is a command: the steps' table)
            let rows = try Self.lines(document).filter { $0.hasPrefix("| `") }.map { row in
                row.split(separator: "|").map { Self.trimmed($0) }
            }.filter { $0.count >= 3 && $0[1].hasPrefix("`hm-") }
            let names = rows.map { $0[0].replacing("`", with: "") }
            for step in steps where !names.contains(step.name) {
                Issue.record("\(document): no row for the step \(step.name): | `\(step.name)` | `\(step.commandName)` | \(step.abstract) |")
            }
            for name in names where !steps.contains(where: { $0.name == name }) {
                Issue.record("\(document): a row for \(name), which no definition has")
            }
            #expect(names == steps.map(\.name), "\(document): the steps' rows are not in the order of CommandDefinitions.all")
            for row in rows {
                #expect(row[1] == "`hm-" + row[0].replacing("`", with: "") + "`", "\(document): \(row)")
            }
            if document == "README.md" {
                for row in rows {
                    guard let step = steps.first(where: { "`\($0.name)`" == row[0] }) else { continue }
                    #expect(row[2].replacing("`", with: "") == step.abstract, "README.md's row of \(step.name)")
                }
            }
        }
        // The tools, as install.sh's library (HM_TOOLS) names them; the Makefile asks the
        // executable (`hearthminds --list-tools`) and names none itself.
        let line = try Self.lines("bootstrap/lib.sh").first { $0.hasPrefix("HM_TOOLS=") } ?? ""
        let tools = line.dropFirst("HM_TOOLS=".count).split(whereSeparator: { " ()".contains($0) }).map { "hm-" + $0 }
        #expect(tools == MultiCall.tools.map(\.name), "bootstrap/lib.sh: HM_TOOLS=(\(multiCall.toolList.split(separator: "\n").joined(separator: " ")))")
        #expect(try Self.lines("Makefile").allSatisfy { !$0.hasPrefix("TOOLS :=") && !$0.hasPrefix("STEPS :=") })
        #expect(Set(MultiCall.tools.map(\.name)).isDisjoint(with: MultiCall.steps.map(\.name)))
    }

    @Test("a step needs only earlier steps, and a check names the step it needs by its definition, never by a string")
    func needs() async throws {
        let steps = MultiCall().definitions.filter { $0.kind == .step }.map(\.name)
        for definition in MultiCall().definitions {
            for need in definition.needs {
                let at = steps.firstIndex(of: need)
                #expect(at != nil && at! < steps.firstIndex(of: definition.name)!, "\(definition.name) needs \(need), not before it")
            }
        }
        // every `needs: "..."` in the sources (Failure's) is a step's name constant instead
        let found = try await Command.run(["grep", "-rn", #"needs: ""#, TestFiles.repositoryRoot + "/Sources"])
        #expect(found.status == 1 && found.stdout.isEmpty, "a step named by a string literal: \(found.stdout)")
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
        // (its log in this test's directory, never the host's: a refused configuration is logged)
        let logged = ["HEARTHMINDS_LOG": directory + "/log/bootstrap.jsonl", "HEARTHMINDS_RUN_ID": "hm-refused-1"]
        let badConfig = try await Command.run(
            [directory + "/hm-service-user", "--set", "POSTGRES_PORT=0"], environment: logged)
        #expect(badConfig.status == 64 && badConfig.stderr.contains("hm-service-user") && badConfig.stderr.contains("POSTGRES_PORT"))
        // The refusal is a record of the log whose fields say what it was (the Ansible module
        // reads them, not the console): failure configuration, the key, the run, nothing changed.
        if SystemAccount.isRoot {
            let records = try FileSystem.readText(directory + "/log/bootstrap.jsonl").split(separator: "\n")
            #expect(records.count == 1, "\(records)")
            let record = String(records.first ?? "")
            for field in ["\"run\":\"hm-refused-1\"", "\"step\":\"service-user\"", "\"action\":\"(configuration)\"",
                          "\"result\":false", "\"changed\":false", "\"status\":\"failed\"",
                          "\"failure\":\"configuration\"", "\"key\":\"POSTGRES_PORT\""] {
                #expect(record.contains(field), "\(field) in \(record)")
            }
            // install.sh's hm-run-metrics after it, on the same refused configuration: it adds no
            // second record (the step's is the run's one).
            let metrics = try await Command.run(
                [directory + "/hm-run-metrics", "--set", "POSTGRES_PORT=0", "--exit-status", "64", "--failed-step", "service-user"],
                environment: logged)
            #expect(metrics.status == 64, "\(metrics.stderr)")
            #expect(try FileSystem.readText(directory + "/log/bootstrap.jsonl").split(separator: "\n").count == 1)
            // A refused file never says where root writes (attack review of issue 25): a --config
            // of another account's (or writable by all) naming HEARTHMINDS_LOG leaves nothing
            // there; the record goes to the environment's log. Nor does a refused --set value.
            let envLog = directory + "/envlog/b.jsonl"
            let file = directory + "/refused.env"
            for (owner, mode) in [(UInt32(65534), mode_t(0o644)), (UInt32(0), mode_t(0o666))] {
                try FileSystem.writeAtomically(file, "HEARTHMINDS_LOG=\(directory)/filelog/b.jsonl\nPG_VERSION=15\n")
                #expect(chown(file, owner, owner) == 0 && chmod(file, mode) == 0)
                let refused = try await Command.run(
                    [directory + "/hm-verify", "--config", file],
                    environment: ["HEARTHMINDS_RUN_ID": "hm-refused-2", "HEARTHMINDS_LOG": envLog])
                #expect(refused.status == 64, "\(refused.stderr)")
                #expect(!FileSystem.exists(directory + "/filelog"), "a refused file chose root's log: \(owner) \(mode)")
            }
            let spaced = try await Command.run(
                [directory + "/hm-verify", "--set", "HEARTHMINDS_LOG=\(directory)/with space/b.jsonl", "--set", "PG_VERSION=14"],
                environment: ["HEARTHMINDS_RUN_ID": "hm-refused-3", "HEARTHMINDS_LOG": envLog])
            #expect(spaced.status == 64, "\(spaced.stderr)")
            #expect(!FileSystem.exists(directory + "/with space"))
            let envRecords = try FileSystem.readText(envLog).split(separator: "\n")
            #expect(envRecords.count == 3 && envRecords.allSatisfy { $0.contains(#""failure":"configuration""#) }, "\(envRecords)")
        }
        // By its own name: the command as the first argument; without one, the list and 64.
        let byName = try await Command.run([binary, "verify", "--help"])
        #expect(byName.status == 0 && byName.stdout.contains("USAGE: hm-verify"))
        let none = try await Command.run([binary])
        #expect(none.status == 64 && MultiCall.commands.allSatisfy { none.stderr.contains($0.name) })
        let list = try await Command.run([binary, "--help"])
        #expect(list.status == 0 && list.stdout.contains("hm-migrate"))
    }
}
