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

/// Issue 21 E: 200 AIs on a server with max_connections 100 (the default). Every step bounds
/// its connections by the server's free slots and closes a database's when it is done: the
/// databases, migrations, vector-index and verify steps are true, twice in a row (a fresh host,
/// then a converged one). The step times are printed.
@Suite("200 AIs (integration, real PostgreSQL 15 + pgvector, max_connections 100)", .serialized)
struct ScaleTests {
    @Test("issue 21 E: 200 AIs, max_connections 100: databases, migrations, vector-index and verify true, twice in a row")
    func twoHundredAIs() async throws {
        let s = try await DatabasesScenario()
        defer { s.tearDown() }
        #expect(try s.admin().query("SELECT current_setting('max_connections')").scalar == "100")
        let names = (1...200).map { "ai" + String(1000 + $0).dropFirst() }
        let config = try s.config("AI_NAMES=\(names.joined(separator: ","))")
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "scale", dryRun: false)
        for round in 1...2 {
            var times: [String] = []
            func timed(_ name: String, _ step: Step) async -> StepRunner.Outcome {
                let t0 = Clock.nowMs()
                let outcome = await runner.run(step)
                times.append("\(name) \(Double(Int((Clock.nowMs() - t0) / 100)) / 10) s")
                return outcome
            }
            let databases = await timed("databases", DatabasesStep.make(config, server: s.server, clientDirectory: s.clientDirectory))
            #expect(databases.status == 0, "round \(round): \(databases)")
            let migrations = await timed(
                "migrations",
                MigrationsStep.make(
                    config, directory: TestFiles.repositoryRoot + "/Migrations", socketDirectory: s.cluster.socketDirectory,
                    clientDirectory: s.clientDirectory))
            #expect(migrations.status == 0, "round \(round): \(migrations)")
            let index = await timed("vector-index", s.vectorIndexStep(config))
            #expect(index.status == 0, "round \(round): \(index)")
            let verify = await timed(
                "verify",
                VerifyStep.make(
                    config, server: s.server, migrations: TestFiles.repositoryRoot + "/Migrations", clientDirectory: s.clientDirectory))
            #expect(verify.status == 0, "round \(round): \(verify)")
            print("200 AIs, round \(round): \(times.joined(separator: ", "))")
            if round == 2 { #expect(databases.changed == 0 && migrations.changed == 0) }
        }
    }
}
