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

/// StepDefinitionTests' throwaway step run as its command: as root, as every step's command runs.
@Suite("a step declared once, run: the throwaway step's command writes the JSON log (integration, as root)")
struct StepDefinitionLogTests {
    @Test("the throwaway step, added by one definition, run as its command (a dry run, a private lock directory and log): its records in the JSON log under its name")
    func throwawayStepLogged() async throws {
        // The JSON log: the command run (a dry run) writes the step's records under its name.
        let work = TestFiles.temporaryDirectory("hm-throwaway")
        defer { TestFiles.removeTree(work) }
        let config = try TestFiles.write("POSTGRES_PORT=5432\n", name: "throwaway.env")
        defer { TestFiles.removeTree(String(config.prefix(upTo: config.lastIndex(of: "/")!))) }
        // (STEP_TIMEOUT: the step's watchdog thread lives as long as this test process does)
        let command = try #require(
            try StepCommand<ThrowawayStep>.parseAsRoot(["--dry-run", "--config", config, "--set", "STEP_TIMEOUT=86400"])
                as? StepCommand<ThrowawayStep>)
        let status = await command.execute(environment: [
            "HEARTHMINDS_LOG": work + "/log.jsonl", "HEARTHMINDS_LOCK_DIR": work + "/lock",
            "HEARTHMINDS_ROOT": TestFiles.repositoryRoot,
        ])
        #expect(status == ExitStatus.ok)
        let log = try FileSystem.readText(work + "/log.jsonl")
        #expect(log.contains(#""step":"throwaway-test""#) && log.contains("the throwaway step's one check"), "\(log)")
    }
}
