#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
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

/// The documents hold every configuration key, flag and exit code the code has: README.md and
/// docs/*.md, read from the checkout. A key or flag added without its documentation fails here.
@Suite("documents: every key, flag and exit code of the code is in README.md or docs/")
struct DocsTests {
    /// README.md and every docs/*.md, by their path in the repository.
    static func documents() throws -> [(path: String, text: String)] {
        var paths = ["README.md"]
        paths += try FileSystem.list(TestFiles.repositoryRoot + "/docs").filter { $0.hasSuffix(".md") }.sorted()
            .map { "docs/" + $0 }
        return try paths.map { ($0, try FileSystem.readText(TestFiles.repositoryRoot + "/" + $0)) }
    }

    /// The documents that define `name`: one for each row whose first cell is exactly
    /// `` `name` `` in a table headed `| key |`, the tables of configuration keys.
    static func definitions(of name: String, in documents: [(path: String, text: String)]) -> [String] {
        documents.flatMap { document in
            var header = ""
            var paths: [String] = []
            for line in document.text.split(separator: "\n", omittingEmptySubsequences: false) {
                if !line.hasPrefix("|") {
                    header = ""
                } else if header.isEmpty {
                    header = String(line)
                } else if header.hasPrefix("| key |") && line.hasPrefix("| `\(name)` |") {
                    paths.append(document.path)
                }
            }
            return paths
        }
    }

    @Test("every configuration key has one row, in docs/configuration.md's key table, and no other")
    func keys() throws {
        let documents = try Self.documents()
        let names = ConfigKeys.all.map(\.name) + ["<NAME>" + ConfigKeys.passwordSuffix]
        #expect(names.count > 30)
        for name in names {
            let rows = Self.definitions(of: name, in: documents)
            #expect(rows == ["docs/configuration.md"], "\(name): defined in \(rows) (want one row in docs/configuration.md)")
        }
        // And no row for a key the code does not have.
        let configuration = try #require(documents.first { $0.path == "docs/configuration.md" })
        let table = configuration.text.split(separator: "\n").drop { !$0.hasPrefix("| key |") }.prefix { $0.hasPrefix("|") }
        let documented = table.dropFirst(2).compactMap { row -> String? in
            let cell = row.dropFirst(3)
            return cell.firstIndex(of: "`").map { String(cell[..<$0]) }
        }
        let strays = Set(documented).symmetricDifference(names).sorted()
        #expect(strays.isEmpty, "docs/configuration.md's key table against ConfigKeys.all: \(strays)")
    }

    @Test("every flag of every command (the steps, hm-reset, hm-migrate and its subcommands) is in the documents")
    func flags() throws {
        let text = try Self.documents().map(\.text).joined(separator: "\n")
        var checked = 0
        for (name, type) in MultiCall.commands {
            #expect(text.contains("`\(name)"), "\(name) is not in the documents")
            for (command, flag) in try Self.flags(of: type) {
                checked += 1
                let documented = Self.mentions(text, flag)
                #expect(documented, "\(command) \(flag) is not in README.md or docs/*.md")
            }
        }
        // The walk found the flags it must: a step's, hm-pgvector's own, hm-migrate's subcommands'.
        let all = try MultiCall.commands.flatMap { try Self.flags(of: $0.type) }
        for (command, flag) in [
            ("hm-databases", "--set"), ("hm-pgvector", "--install-only"), ("hm-reset", "--service-user"),
            ("hm-migrate down", "--steps"), ("hm-migrate history", "--applied"), ("hm-migrate up", "--jobs"),
        ] {
            #expect(all.contains { $0 == (command, flag) }, "\(command) \(flag) not found in ArgumentParser's description")
        }
        #expect(checked > 50)
    }

    @Test("the README's table of steps is bootstrap/steps: every step, in order, with its description")
    func steps() throws {
        let steps = try FileSystem.readText(TestFiles.repositoryRoot + "/bootstrap/steps").split(separator: "\n")
            .filter { !$0.hasPrefix("#") && !$0.isEmpty }
            .map { line -> String in
                let parts = line.split(separator: "\t", maxSplits: 1).map(String.init)
                return "| \(parts[0]) | hm-\(parts[0]) | \(parts.count > 1 ? parts[1] : "") |"
            }
        let readme = try FileSystem.readText(TestFiles.repositoryRoot + "/README.md")
        let rows = readme.split(separator: "\n").drop { !$0.hasPrefix("| step | executable |") }.dropFirst(2)
            .prefix { $0.hasPrefix("|") }.map { String($0.filter { $0 != "`" }) }
        #expect(steps.count >= 8)
        #expect(rows == steps, "README.md's steps table against bootstrap/steps")
    }

    @Test("every exit status has its row in docs/operations.md")
    func exitCodes() throws {
        let operations = try FileSystem.readText(TestFiles.repositoryRoot + "/docs/operations.md")
        for status in [ExitStatus.ok, ExitStatus.failed, ExitStatus.usage, ExitStatus.busy] {
            let documented = operations.contains("\n| **\(status)** |")
            #expect(documented, "exit status \(status) has no row in docs/operations.md")
        }
    }

    /// Every flag of a command and of its subcommands, by ArgumentParser's own description of the
    /// command (`--experimental-dump-help`), hidden ones included; `-h`/`--help` left out.
    static func flags(of type: any ParsableCommand.Type) throws -> [(command: String, flag: String)] {
        let tool = try JSONDecoder().decode(ToolInfo.self, from: Data(type._dumpHelp().utf8))
        var found: [(String, String)] = []
        func walk(_ command: ToolInfo.Command, _ path: [String]) {
            let path = path + [command.commandName]
            for argument in command.arguments ?? [] {
                for name in argument.names ?? [] {
                    let flag = name.kind == "long" ? "--" + name.name : "-" + name.name
                    if flag != "-h" && flag != "--help" { found.append((path.joined(separator: " "), flag)) }
                }
            }
            for subcommand in command.subcommands ?? [] where subcommand.commandName != "help" {
                walk(subcommand, path)
            }
        }
        walk(tool.command, [])
        return found
    }

    /// True when `flag` occurs in `text` as a whole flag (`--set` in "--set KEY", not in "--setting").
    static func mentions(_ text: String, _ flag: String) -> Bool {
        let bytes = Array(text.utf8)
        let needle = Array(flag.utf8)
        func isFlagCharacter(_ byte: UInt8) -> Bool {
            (byte >= 0x61 && byte <= 0x7a) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x30 && byte <= 0x39) || byte == 0x2d
        }
        guard needle.count <= bytes.count else { return false }
        for start in 0...(bytes.count - needle.count) where bytes[start] == needle[0] {
            guard Array(bytes[start..<start + needle.count]) == needle else { continue }
            let before = start == 0 ? nil : bytes[start - 1]
            let after = start + needle.count == bytes.count ? nil : bytes[start + needle.count]
            if !(before.map(isFlagCharacter) ?? false) && !(after.map(isFlagCharacter) ?? false) { return true }
        }
        return false
    }

    /// The parts of ArgumentParser's ToolInfo (its dump-help JSON) this test reads.
    struct ToolInfo: Decodable {
        struct Command: Decodable {
            let commandName: String
            let arguments: [Argument]?
            let subcommands: [Command]?
        }

        struct Argument: Decodable {
            struct Name: Decodable {
                let kind: String
                let name: String
            }

            let names: [Name]?
        }

        let command: Command
    }
}
