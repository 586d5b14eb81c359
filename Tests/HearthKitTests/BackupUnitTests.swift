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

/// The backup keys and what they render (no root, no cluster): the built-in default is on, each
/// bad value names its key, the server's archive settings and pgBackRest's configuration.
@Suite("backups: keys, the server's archive settings, pgBackRest's configuration and units")
struct BackupUnitTests {
    @Test("backups are on by default (the built-in defaults); BACKUP=off leaves them out and archive_mode off")
    func defaults() throws {
        let config = try HearthConfig.load(ConfigSources(shippedFile: nil, hostFile: nil, environment: [:], overrides: []))
        let backup = try #require(config.backup)
        #expect(backup.stanza == "hearthminds" && backup.repoPath == "/var/lib/pgbackrest" && backup.lossWindow == 60)
        #expect(backup.compression == .zst && backup.retentionFull == 2 && backup.maxAgeHours == 36)
        let settings = ServerSettings(config)
        let values = Dictionary(uniqueKeysWithValues: settings.values.map { ($0.name, $0.value) })
        #expect(values["archive_mode"] == "on" && values["archive_timeout"] == "60" && values["wal_level"] == "replica")
        #expect(values["archive_command"] == "/usr/bin/pgbackrest --config-path=/etc/pgbackrest/hearthminds/hearthminds --stanza=hearthminds archive-push %p")
        #expect(settings.render(clusterID: "15/main").contains("archive_command = '/usr/bin/pgbackrest --config-path="))
        let off = try loadConfig("BACKUP=off")
        #expect(off.backup == nil)
        #expect(ServerSettings(off).values.contains { $0 == ("archive_mode", "off") })
        #expect(ServerSettings.restartSettings.isSuperset(of: ["archive_mode", "wal_level"]))
    }

    @Test("a bad backup value is a configuration error naming its key")
    func badValues() {
        for (line, key) in [
            ("BACKUP=maybe", "BACKUP"), ("BACKUP=on\nBACKUP_STANZA=a b", "BACKUP_STANZA"),
            ("BACKUP=on\nBACKUP_STANZA=../x", "BACKUP_STANZA"), ("BACKUP=on\nBACKUP_REPO_PATH=relative", "BACKUP_REPO_PATH"),
            ("BACKUP=on\nBACKUP_REPO_PATH=/etc", "BACKUP_REPO_PATH"), ("BACKUP=on\nBACKUP_REPO_PATH=/var/lib/../etc", "BACKUP_REPO_PATH"),
            ("BACKUP=on\nBACKUP_LOSS_WINDOW=0", "BACKUP_LOSS_WINDOW"), ("BACKUP=on\nBACKUP_COMPRESS=xz", "BACKUP_COMPRESS"),
            ("BACKUP=on\nBACKUP_PROCESS_MAX=0", "BACKUP_PROCESS_MAX"), ("BACKUP=on\nBACKUP_RETENTION_FULL=none", "BACKUP_RETENTION_FULL"),
            ("BACKUP=on\nBACKUP_FULL_CALENDAR=\"daily\nExecStart=/bin/sh\"", "BACKUP_FULL_CALENDAR"),
            ("BACKUP=on\nBACKUP_DIFF_CALENDAR=\"daily;reboot\"", "BACKUP_DIFF_CALENDAR"),
            ("BACKUP=on\nBACKUP_TEST_RESTORE_CALENDAR=", "BACKUP_TEST_RESTORE_CALENDAR"),
            ("BACKUP=on\nBACKUP_MAX_AGE=-1", "BACKUP_MAX_AGE"), ("BACKUP=on\nBACKUP_SCRATCH_PORT=80", "BACKUP_SCRATCH_PORT"),
        ] {
            #expect(configErrorKey(line) == key, "\(line)")
        }
    }

    @Test("pgBackRest's configuration: the stanza's section only, no secret; the units run pgBackRest as postgres")
    func files() throws {
        let config = try loadConfig("BACKUP=on\nBACKUP_STANZA=s1\nBACKUP_COMPRESS=lz4\nBACKUP_PROCESS_MAX=3")
        let files = BackupFiles(config.backup!, dataDirectory: "/var/lib/postgresql/15/main", port: 5432)
        let text = files.config
        #expect(text.contains("\n[s1]\npg1-path=/var/lib/postgresql/15/main\npg1-port=5432\n"))
        #expect(text.contains("\ncompress-type=lz4\nprocess-max=3\n") && text.contains("\nlock-path=/var/lib/postgresql/.pgbackrest-lock\n"))
        #expect(!text.contains("[global") && !text.lowercased().contains("pass") && !text.contains("cipher"))
        let full = files.service(.full, hmBackup: "/opt/hm/bootstrap/bin/hm-backup")
        #expect(full.contains("User=postgres\n") && full.contains("ExecStart=/usr/bin/pgbackrest --config-path=/etc/pgbackrest/hearthminds/s1 --stanza=s1 --type=full backup\n"))
        let proof = files.service(.testRestore, hmBackup: "/opt/hm/bootstrap/bin/hm-backup")
        #expect(proof.contains("ExecStart=/opt/hm/bootstrap/bin/hm-backup --test-restore\n") && !proof.contains("User="))
        #expect(files.timer(.diff).contains("OnCalendar=Mon..Sat *-*-* 01:30:00\nPersistent=true\n"))
        #expect(files.unitName(.testRestore) == "hearthminds-backup-test-restore-s1")
    }

    @Test("hm-restore's time and names are checked before anything runs")
    func restoreArguments() throws {
        let config = try loadConfig("BACKUP=on")
        expectFailure(.configuration) { try ClusterRestore.make(config, to: "2026-12-06'; DROP") }
        expectFailure(.configuration) { try ClusterRestore.make(config, to: nil, retired: "other-retired-1") }
        expectFailure(.configuration) { try DatabaseRestore.make(config, database: "postgres", to: nil) }
        expectFailure(.configuration) { try ClusterRestore.make(try loadConfig("BACKUP=off"), to: nil) }
        _ = try ClusterRestore.make(config, to: "2026-12-06 17:30:00+00", retired: "hearthminds-retired-20261206173000")
    }
}
