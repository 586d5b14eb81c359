import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The server settings we own, written whole to the cluster's conf.d/hearthminds.conf.
public struct ServerSettings: Sendable, Equatable {
    public let listenAddresses: String
    public let port: Int
    public let passwordEncryption = "scram-sha-256"
    /// TLS, (certificate, key): on, with the configured pair or Debian's snakeoil, when password
    /// logins come from beyond loopback (their pg_hba lines are hostssl); nil leaves the
    /// cluster's own ssl settings alone.
    public let tls: (cert: String, key: String)?
    /// WAL archiving for the backups (BACKUP): archive_command pushes each WAL file to the
    /// repository with pgBackRest, archive_timeout closes a quiet server's file within the loss
    /// window; nil: BACKUP is off, archive_mode off.
    public let archive: (command: String, timeout: Int)?
    /// Memory, parallelism, costs, WAL and checkpoints sized to the machine (issue 24).
    public let tuning: ServerTuning

    public init(_ config: HearthConfig, machine: MachineSize? = nil) {
        tuning = ServerTuning(config.tuning, machine: machine)
        listenAddresses = Self.listenAddresses(host: config.host)
        port = config.port
        tls = HbaRenderer.networks(config).isEmpty
            ? nil
            : (config.sslCertFile ?? HearthConfig.snakeoilCertFile, config.sslKeyFile ?? HearthConfig.snakeoilKeyFile)
        archive = config.backup.map { (PgBackRest($0).archiveCommand, $0.lossWindow) }
    }

    public static func == (a: ServerSettings, b: ServerSettings) -> Bool {
        a.listenAddresses == b.listenAddresses && a.port == b.port && a.tls?.cert == b.tls?.cert && a.tls?.key == b.tls?.key
            && a.archive?.command == b.archive?.command && a.archive?.timeout == b.archive?.timeout
            && a.tuning == b.tuning
    }

    /// POSTGRES_HOST as listen_addresses: loopback alone by default; an address of this host
    /// together with localhost, so that local clients keep their loopback TCP access.
    public static func listenAddresses(host: String) -> String {
        HostAddresses.isLoopback(host) ? host : "localhost,\(host)"
    }

    /// The settings a change of which takes a server restart (the others a reload).
    public static let restartSettings: Set<String> = Set(["listen_addresses", "port", "archive_mode", "wal_level"])
        .union(MonitoringSettings.restartSettings).union(ServerTuning.restartSettings)

    /// name → value, as `pg_settings.setting` shows them.
    public var values: [(name: String, value: String)] {
        var values = [("listen_addresses", listenAddresses), ("port", String(port)), ("password_encryption", passwordEncryption)]
        if let tls { values += [("ssl", "on"), ("ssl_cert_file", tls.cert), ("ssl_key_file", tls.key)] }
        if let archive {
            values += [
                ("wal_level", "replica"), ("archive_mode", "on"), ("archive_command", archive.command),
                ("archive_timeout", String(archive.timeout)),
            ]
        } else {
            values += [("archive_mode", "off")]
        }
        // Monitoring (issue 23): pg_stat_statements preloaded, its own group (MonitoringSettings).
        values += MonitoringSettings.values
        values += tuning.values
        return values
    }

    public func render(clusterID: String) -> String {
        """
        # Managed by HearthMinds bootstrap (hm-postgres) for cluster \(clusterID).
        # Every run rewrites this whole file: set POSTGRES_HOST and POSTGRES_PORT in
        # /etc/hearthminds/hearthminds.env instead of editing it here.
        listen_addresses = '\(listenAddresses)'
        port = \(port)
        password_encryption = '\(passwordEncryption)'

        """ + (tls.map {
            """
            # Password logins from beyond loopback use TLS (hostssl in pg_hba.conf); set
            # PG_SSL_CERT_FILE and PG_SSL_KEY_FILE for a certificate of your own.
            ssl = on
            ssl_cert_file = '\($0.cert)'
            ssl_key_file = '\($0.key)'

            """
        } ?? "") + (archive.map {
            """
            # WAL archiving for the backups (the backup step, pgBackRest): BACKUP and
            # BACKUP_LOSS_WINDOW (archive_timeout, seconds).
            wal_level = replica
            archive_mode = on
            archive_command = '\($0.command)'
            archive_timeout = \($0.timeout)

            """
        } ?? """
            # BACKUP is off: no WAL archiving.
            archive_mode = off

            """) + MonitoringSettings.rendered + tuning.render()
    }
}
