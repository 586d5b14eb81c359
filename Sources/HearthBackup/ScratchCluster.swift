import HearthMonitoring
import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthClient
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// A throwaway server that a backup is restored into (a test restore, one AI's restore): its
/// data directory and socket directory in the postgres account's home, made, started, stopped
/// and removed by that account (root writes nothing there); its configuration root's, beside
/// the stanza's (no Debian cluster: pg_lsclusters does not list it). Listens on 127.0.0.1 and its
/// own socket only; archives nothing (a restored copy must never push WAL into the repository).
public struct ScratchCluster: Sendable {
    public let tool: PgBackRest
    public let pgVersion: Int
    public let port: Int

    public init(tool: PgBackRest, pgVersion: Int, port: Int) {
        self.tool = tool
        self.pgVersion = pgVersion
        self.port = port
    }

    static let home = "/var/lib/postgresql"
    public var name: String { "hm-scratch-\(tool.stanza)" }
    public var dataDirectory: String { Self.home + "/" + name }
    public var socketDirectory: String { Self.home + "/" + name + ".s" }
    public var logFile: String { Self.home + "/" + name + ".log" }
    var configFile: String { tool.configPath + "/scratch.conf" }
    var hbaFile: String { tool.configPath + "/scratch_hba.conf" }
    var identFile: String { tool.configPath + "/scratch_ident.conf" }
    var pgCtl: String { "/usr/lib/postgresql/\(pgVersion)/bin/pg_ctl" }

    public var server: PGServer { PGServer(socketDirectory: socketDirectory, port: port) }

    var settings: String {
        """
        # Managed by HearthMinds bootstrap (hm-backup, hm-restore): the throwaway cluster a backup
        # is restored into, \(dataDirectory).
        data_directory = '\(dataDirectory)'
        hba_file = '\(hbaFile)'
        ident_file = '\(identFile)'
        port = \(port)
        listen_addresses = '127.0.0.1'
        unix_socket_directories = '\(socketDirectory)'
        archive_mode = off
        password_encryption = 'scram-sha-256'

        """
    }

    static let hba = """
        # Managed by HearthMinds bootstrap: the throwaway cluster's logins (root as postgres: the
        # dump of one AI's restore is written where only root writes).
        local all postgres peer map=hm_scratch
        local all all peer
        host all all 127.0.0.1/32 scram-sha-256

        """

    func postgres() throws -> SystemAccount {
        try ClusterTools.postgresAccount()
    }

    func asPostgres(_ argv: [String], seconds: Int) async throws {
        try await Command.check(argv, asUser: try postgres(), timeout: seconds)
    }

    /// A free TCP port on loopback, from `start` on: bind() succeeds, no Debian cluster names it
    /// (a stopped cluster's port is refused by the postgres step, though free), and `accept`
    /// takes it (the tests' clusters: one not handed out before in the process).
    public static func freePort(from start: Int, accept: (Int) -> Bool = { _ in true }) throws -> Int {
        let taken = Set((try? DebianClusters.list())?.compactMap(\.port) ?? [])
        for port in start..<min(65535, start + 2000) where !taken.contains(port) && accept(port) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 { return port }
        }
        throw Failure("no free port from \(start) on for a throwaway cluster: set BACKUP_SCRATCH_PORT")
    }

    /// Stops and removes what an earlier (or interrupted) run left: nothing of the live cluster.
    public func remove() async throws {
        if FileSystem.exists(dataDirectory + "/postmaster.pid") {
            _ = try? await Command.run(
                [pgCtl, "stop", "-D", dataDirectory, "-m", "immediate", "-w", "-t", "60"], asUser: try postgres(), timeout: 90)
        }
        try await asPostgres(["rm", "-rf", "--one-file-system", "--", dataDirectory, socketDirectory, logFile], seconds: 900)
    }

    /// Restores the stanza's backup into the throwaway data directory with `target` (pgBackRest's
    /// restore options: --type, --target, --set, --db-include), writes its configuration and starts
    /// it; returns once it has finished recovery (promoted).
    public func restore(_ target: [String], recoverySeconds: Int = 3600) async throws {
        try await remove()
        try await asPostgres(["mkdir", "-m", "0700", "--", dataDirectory, socketDirectory], seconds: 60)
        // (promoted at a target; without one, recovery runs to the archive's end and the server opens)
        let promote = target.contains { $0.hasPrefix("--type=") } ? ["--target-action=promote"] : []
        try await tool.run(
            ["--pg1-path=\(dataDirectory)", "--archive-mode=off"] + promote + target + ["restore"], seconds: 86_400)
        try writeConfiguration()
        do {
            try await asPostgres(
                [pgCtl, "start", "-w", "-t", "600", "-D", dataDirectory, "-l", logFile, "-o", "-c config_file=\(configFile)"],
                seconds: 660)
        } catch {
            // The cause is in the server's log: its end, read as the postgres account (its file).
            let tail = (try? await Command.run(["tail", "-n", "8", "--", logFile], asUser: try postgres(), timeout: 30))?.stdout ?? ""
            throw Failure("\(error)\n\(logFile):\n\(tail)")
        }
        // pg_ctl returns once logins are possible (a standby's, during recovery): then until promoted.
        let deadline = Clock.nowMs() + Double(recoverySeconds) * 1000
        while true {
            if let connection = try? server.admin(), try connection.query("SELECT pg_catalog.pg_is_in_recovery()").scalar == "f" {
                return
            }
            guard Clock.nowMs() < deadline else {
                throw Failure("the throwaway cluster did not finish recovery in \(recoverySeconds) s: see \(logFile)")
            }
            usleep(200_000)
        }
    }

    func writeConfiguration() throws {
        let postgres = try postgres()
        let directory = try OpenDirectory.open(tool.configPath)
        try directory.write("scratch.conf", settings, mode: 0o640, uid: 0, gid: postgres.gid)
        try directory.write("scratch_hba.conf", Self.hba, mode: 0o640, uid: 0, gid: postgres.gid)
        try directory.write(
            "scratch_ident.conf", "hm_scratch root postgres\nhm_scratch postgres postgres\n", mode: 0o640, uid: 0,
            gid: postgres.gid)
    }

    public func stop() async throws {
        try await asPostgres([pgCtl, "stop", "-D", dataDirectory, "-m", "fast", "-w", "-t", "300"], seconds: 360)
    }
}
