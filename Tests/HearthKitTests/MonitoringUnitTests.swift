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

/// Monitoring (issue 23), pure parts: the keys, the exporter's configuration as rendered, the
/// textfile format and the run's metrics.
@Suite("monitoring: keys, exporter configuration, textfile metrics")
struct MonitoringUnitTests {
    @Test("the defaults: hearthminds-monitor, loopback 127.0.0.1:9187, Debian's textfile directory")
    func defaults() throws {
        let config = try loadConfig("")
        #expect(config.monitoring.user == "hearthminds-monitor")
        #expect(config.monitoring.listenAddress == "127.0.0.1:9187")
        #expect(config.monitoring.tls == nil)
        #expect(config.monitoring.textfileDirectory == "/var/lib/prometheus/node-exporter")
    }

    @Test("an exporter address beyond loopback needs the TLS pair; bad values name their key")
    func addressRules() throws {
        #expect(configErrorKey("POSTGRES_EXPORTER_ADDRESS=0.0.0.0:9187") == "POSTGRES_EXPORTER_ADDRESS")
        #expect(configErrorKey("POSTGRES_EXPORTER_ADDRESS=192.0.2.1:9187") == "POSTGRES_EXPORTER_ADDRESS")
        #expect(configErrorKey("POSTGRES_EXPORTER_ADDRESS=127.0.0.1") == "POSTGRES_EXPORTER_ADDRESS")
        #expect(configErrorKey("POSTGRES_EXPORTER_ADDRESS=127.0.0.1:0") == "POSTGRES_EXPORTER_ADDRESS")
        #expect(configErrorKey("POSTGRES_EXPORTER_ADDRESS=host.example:9187") == "POSTGRES_EXPORTER_ADDRESS")
        #expect(configErrorKey("POSTGRES_EXPORTER_TLS_CERT_FILE=/etc/ssl/x.pem") == "POSTGRES_EXPORTER_TLS_KEY_FILE")
        #expect(configErrorKey("MONITORING_USER=postgres") == "MONITORING_USER")
        #expect(configErrorKey("MONITORING_USER=logos") == "MONITORING_USER")
        #expect(configErrorKey("MONITORING_USER=prometheus") == "MONITORING_USER")
        #expect(configErrorKey("MONITORING_USER=Bad;name") == "MONITORING_USER")
        #expect(configErrorKey("NODE_EXPORTER_TEXTFILE_DIR=relative/dir") == "NODE_EXPORTER_TEXTFILE_DIR")
        let tls = try loadConfig(
            "POSTGRES_EXPORTER_ADDRESS=\"[::]:9187\"\nPOSTGRES_EXPORTER_TLS_CERT_FILE=/etc/ssl/m.pem\nPOSTGRES_EXPORTER_TLS_KEY_FILE=/etc/ssl/m.key")
        #expect(tls.monitoring.listenAddress == "[::]:9187")
        let exporter = ExporterConfig(tls)
        #expect(exporter.arguments.contains("--web.config.file=/etc/hearthminds/monitoring/postgres-exporter-web.yaml"))
        #expect(exporter.webConfig?.contains("cert_file: /etc/ssl/m.pem") == true)
        #expect(try loadConfig("NODE_EXPORTER_TEXTFILE_DIR=").monitoring.textfileDirectory == nil)
    }

    @Test("the exporter: peer as the monitoring role, every session setting pinned, our databases only, the unit as our account")
    func exporterConfig() throws {
        let exporter = ExporterConfig(try loadConfig("AI_NAMES=logos,aletheia"))
        let dsn = exporter.dataSourceName
        #expect(dsn.hasPrefix("host=/var/run/postgresql port=5432 user=hearthminds-monitor dbname=postgres"))
        for setting in ["search_path=pg_catalog", "statement_timeout=5000", "lock_timeout=1000", "default_transaction_read_only=on", "row_security=off"] {
            #expect(dsn.contains(" " + setting), "\(setting)")
        }
        #expect(!dsn.contains("password"))
        #expect(exporter.arguments.contains("--include-databases=postgres,hearthminds_db,logos_db,aletheia_db"))
        #expect(exporter.arguments.contains("--web.listen-address=127.0.0.1:9187"))
        let dropIn = exporter.dropIn
        #expect(dropIn.contains("\nUser=hearthminds-monitor\n"))
        #expect(dropIn.contains("\nEnvironmentFile=\n"))
        #expect(dropIn.contains("\nExecStart=\nExecStart=/usr/bin/prometheus-postgres-exporter --web.listen-address="))
        #expect(exporter.webConfig == nil)
    }

    @Test("the queries: every relation and function schema-qualified, no query text exported")
    func queries() throws {
        let exporter = ExporterConfig(try loadConfig(""))
        let names = exporter.queries.map(\.name)
        #expect(names == ["hearthminds_memory", "hearthminds_vector_index", "hearthminds_connections", "hearthminds_statements"])
        for query in exporter.queries {
            // Every FROM/JOIN names its schema.
            let words = query.sql.split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "(" })
            for (i, word) in words.enumerated() where (word == "FROM" || word == "JOIN") && i + 1 < words.count {
                let next = words[i + 1]
                #expect(next.hasPrefix("pg_catalog.") || next.hasPrefix("public.pg_stat_statements") || next == "SELECT", "\(query.name): \(word) \(next)")
            }
            #expect(!query.sql.contains(" query "), "\(query.name) reads a query text")
        }
        let statements = try #require(exporter.queries.first { $0.name == "hearthminds_statements" })
        #expect(statements.sql.contains("public.pg_stat_statements(false)"))
        let file = exporter.queriesFile
        #expect(file.contains("hearthminds_memory:\n  master: false\n  query: |\n    SELECT"))
    }

    @Test("the textfile format: label values escaped, HELP and TYPE once, NaN spelled")
    func textfileFormat() {
        let metrics = TextfileMetrics([
            .init("hearthminds_x", help: "a\nb \\ c", [.init([("step", "a\"b\\c\nd")], 1), .init([("step", "n")], .nan)])
        ])
        #expect(
            metrics.render() == """
                # HELP hearthminds_x a\\nb \\\\ c
                # TYPE hearthminds_x gauge
                hearthminds_x{step="a\\"b\\\\c\\nd"} 1
                hearthminds_x{step="n"} NaN

                """)
        #expect(TextfileMetrics.number(1.5) == "1.5")
        #expect(TextfileMetrics.number(1_780_000_000) == "1780000000")
        #expect(TextfileMetrics.value(of: "hearthminds_x", labels: [("step", "a\"b\\c\nd")], in: metrics.render()) == 1)
    }

    @Test("a step's metrics: a false run keeps the time of the last true one")
    func stepMetrics() {
        let ok = RunMetrics.step("databases", status: 0, seconds: 1.25, changed: 2, actions: 9, now: 1000, previous: nil).render()
        #expect(ok.contains("hearthminds_step_success{step=\"databases\"} 1\n"))
        #expect(ok.contains("hearthminds_step_changed_actions{step=\"databases\"} 2\n"))
        #expect(ok.contains("hearthminds_step_last_success_timestamp_seconds{step=\"databases\"} 1000\n"))
        let failed = RunMetrics.step("databases", status: 1, seconds: 0.5, changed: 0, actions: 9, now: 2000, previous: ok).render()
        #expect(failed.contains("hearthminds_step_success{step=\"databases\"} 0\n"))
        #expect(failed.contains("hearthminds_step_exit_status{step=\"databases\"} 1\n"))
        #expect(failed.contains("hearthminds_step_last_run_timestamp_seconds{step=\"databases\"} 2000\n"))
        #expect(failed.contains("hearthminds_step_last_success_timestamp_seconds{step=\"databases\"} 1000\n"))
        let run = RunMetrics.run(status: 1, seconds: 3, failedStep: "pg-hba", dryRun: false, now: 3000, previous: nil).render()
        #expect(run.contains("hearthminds_run_success 0\n"))
        #expect(run.contains("hearthminds_run_failed_step{step=\"pg-hba\"} 1\n"))
        #expect(!run.contains("hearthminds_run_last_success_timestamp_seconds 3000"))
        #expect(RunMetrics.stepFile("vector-index") == "hearthminds_step_vector_index.prom")
    }

    @Test("hm-run-metrics parses the steps' options (--config, --set, --dry-run) and its own")
    func runMetricsCommand() throws {
        let command = try RunMetricsCommand.parse([
            "--exit-status", "1", "--seconds", "2.5", "--failed-step", "pg-hba", "--config", "/etc/x.env", "--dry-run",
        ])
        #expect(command.exitStatus == 1 && command.seconds == 2.5 && command.failedStep == "pg-hba")
        #expect(command.options.config == "/etc/x.env" && command.options.dryRun && command.options.overrides.isEmpty)
        #expect(throws: (any Error).self) { try RunMetricsCommand.parse([]) }
    }

    /// Writes the rendered exporter files to HM_DUMP_MONITORING (a directory) when set: for
    /// trying them by hand against a cluster.
    @Test("dump the rendered files when asked")
    func dump() throws {
        guard let directory = getenv("HM_DUMP_MONITORING").map({ String(cString: $0) }) else { return }
        let exporter = ExporterConfig(try loadConfig(""))
        try FileSystem.writeAtomically(directory + "/queries.yaml", exporter.queriesFile, mode: 0o644)
        try FileSystem.writeAtomically(directory + "/dropin.conf", exporter.dropIn, mode: 0o644)
    }
}
