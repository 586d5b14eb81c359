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

/// The server sized to its machine (issue 24) on a real Debian cluster: SHOW after the postgres
/// step, a rerun that changes nothing, a restart only for a setting that takes one.
@Suite("postgres step: server tuning (integration, a real Debian cluster)", .serialized)
struct ServerTuningStepTests {
    func shown(_ connection: PGConnection, _ names: [String]) throws -> [String: String] {
        let rows = try connection.query(
            "SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY($1::text[])", [PGArray.literal(names)]
        ).rows
        return Dictionary(uniqueKeysWithValues: rows.map { ($0[0]!, $0[1]!) })
    }

    func startTime(_ paths: ClusterPaths) throws -> String {
        try PGServer.running(paths).admin().query("SELECT pg_catalog.pg_postmaster_start_time()::text").scalar ?? ""
    }

    @Test("the tuned settings are in force after the step (pg_settings), a rerun changes nothing; work_mem reloads, shared_buffers restarts; PG_TUNE=false goes back to the defaults")
    func tunedCluster() async throws {
        #expect(SystemAccount.isRoot, "needs root")
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        // Sized for a 2 GiB, 2-core machine (the host's own size is the unit tests' and the e2e tier's).
        let sizing = "PG_TUNE_MEMORY=2GB\nPG_TUNE_CORES=2\n"
        let config = try cluster.config(sizing)
        let paths = cluster.paths

        let (dry, _) = await timed(PostgresStep.make(config), dryRun: true)
        #expect(dry.status == 0 && dry.changed == 0)
        let (first, _) = await timed(PostgresStep.make(config))
        #expect(first.status == 0)
        let wanted = ServerSettings(config).tuning.values
        #expect(wanted.count == ServerTuning.settings.count)
        let running = try shown(PGServer.running(paths).admin(), wanted.map(\.name))
        for (name, value) in wanted {
            #expect(running[name] == value, "\(name): running \(running[name] ?? "-"), wanted \(value)")
        }
        #expect(running["shared_buffers"] == String(512 * 1024 / 8))  // 512MB
        #expect(running["maintenance_work_mem"] == String(256 * 1024))
        #expect(running["max_parallel_maintenance_workers"] == "2")
        #expect(try PGServer.running(paths).admin().query("SHOW shared_buffers").scalar == "512MB")

        let (second, _) = await timed(PostgresStep.make(config))
        #expect(second.status == 0 && second.changed == 0)

        // A reload setting: the file and a reload, the server not restarted.
        let started = try startTime(paths)
        let workMem = try cluster.config(sizing + "PG_WORK_MEM=48MB\n")
        let (reload, _) = await timed(PostgresStep.make(workMem))
        #expect(reload.status == 0 && reload.changed == 2)
        #expect(try shown(PGServer.running(paths).admin(), ["work_mem"])["work_mem"] == String(48 * 1024))
        #expect(try startTime(paths) == started)

        // A restart setting: the server restarted, with it in force.
        let buffers = try cluster.config(sizing + "PG_WORK_MEM=48MB\nPG_SHARED_BUFFERS=256MB\n")
        let (restart, _) = await timed(PostgresStep.make(buffers))
        #expect(restart.status == 0 && restart.changed == 2)
        #expect(try shown(PGServer.running(paths).admin(), ["shared_buffers"])["shared_buffers"] == String(256 * 1024 / 8))
        #expect(try startTime(paths) != started)
        let (again, _) = await timed(PostgresStep.make(buffers))
        #expect(again.status == 0 && again.changed == 0)

        // PG_TUNE=false: no tuning line; the server back on PostgreSQL's defaults (128MB, 64MB).
        let off = try cluster.config("PG_TUNE=false\n")
        let (untuned, _) = await timed(PostgresStep.make(off))
        #expect(untuned.status == 0 && untuned.changed == 2)
        let defaults = try shown(PGServer.running(paths).admin(), ["shared_buffers", "maintenance_work_mem", "work_mem"])
        #expect(defaults == ["shared_buffers": "16384", "maintenance_work_mem": "65536", "work_mem": "4096"])
        #expect(!(try FileSystem.readText(paths.settingsFile)).contains("shared_buffers"))
    }
}
