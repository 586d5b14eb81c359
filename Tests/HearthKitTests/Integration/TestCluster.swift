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

/// A throwaway PostgreSQL cluster for integration tests: its own data directory, socket
/// directory and free port under /tmp, made by initdb as the postgres system account, with
/// peer authentication on the socket and SCRAM over TCP. Torn down by `stop()`, and the
/// shared one when the test process exits.
///
/// The tests run as root (they need the postgres account); anything else fails loudly.
final class TestCluster: @unchecked Sendable {
    let version: Int
    let directory: String
    let port: Int
    let postgres: SystemAccount

    var dataDirectory: String { directory + "/data" }
    var socketDirectory: String { directory + "/socket" }
    var binDirectory: String { "/usr/lib/postgresql/\(version)/bin" }

    private init(version: Int, directory: String, port: Int, postgres: SystemAccount) {
        self.version = version
        self.directory = directory
        self.port = port
        self.postgres = postgres
    }

    struct Unavailable: Error, CustomStringConvertible {
        let description: String
    }

    /// Makes and starts a new cluster.
    static func start(version: Int = 15) async throws -> TestCluster {
        guard SystemAccount.isRoot else {
            throw Unavailable(description: "integration tests must run as root (sudo make test)")
        }
        guard let postgres = SystemAccount.lookup("postgres"),
            FileSystem.exists("/usr/lib/postgresql/\(version)/bin/initdb")
        else {
            throw Unavailable(description: "PostgreSQL \(version) is not installed: run `sudo make setup`")
        }
        let directory = TestFiles.temporaryDirectory("hm-pgtest")
        let cluster = TestCluster(version: version, directory: directory, port: freePort(), postgres: postgres)
        try FileSystem.makeDirectories(cluster.socketDirectory)
        // The inner one first: once the outer is postgres's, root does not write through it.
        for path in [cluster.socketDirectory, directory] {
            try FileSystem.setOwner(path, uid: postgres.uid, gid: postgres.gid, mode: 0o755)
        }
        try await Command.check(
            [cluster.binDirectory + "/initdb", "-D", cluster.dataDirectory, "-U", "postgres", "-E", "UTF8",
             "--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256"],
            asUser: postgres)
        try await cluster.appendConf("""
            port = \(cluster.port)
            unix_socket_directories = '\(cluster.socketDirectory)'
            listen_addresses = '127.0.0.1'
            password_encryption = 'scram-sha-256'
            fsync = off
            """)
        try await Command.check(
            [cluster.binDirectory + "/pg_ctl", "-D", cluster.dataDirectory, "-l", directory + "/server.log", "-w",
             "start"],
            asUser: postgres)
        return cluster
    }

    func appendConf(_ text: String) async throws {
        let path = dataDirectory + "/postgresql.conf"
        let existing = try FileSystem.readText(path)
        // The data directory is the postgres account's.
        try FileSystem.writeAtomically(
            path, existing + "\n" + text + "\n", mode: 0o600, uid: postgres.uid, gid: postgres.gid,
            trust: .account(postgres.uid, from: directory))
    }

    /// A connection over the socket, by peer authentication as `account` (postgres by default).
    func connect(database: String = "postgres", user: String = "postgres", as account: SystemAccount? = nil)
        throws -> PGConnection
    {
        try PGConnection(
            PGTarget(
                host: socketDirectory, port: port, database: database, user: user,
                asSystemUser: account ?? postgres))
    }

    /// A connection over TCP to 127.0.0.1 with a password.
    func connectTCP(database: String = "postgres", user: String, password: Secret) throws -> PGConnection {
        try PGConnection(PGTarget(host: "127.0.0.1", port: port, database: database, user: user, password: password))
    }

    /// Stops the server at once and removes the whole directory.
    func stop() {
        TestCluster.kill(directory: directory)
    }

    static func kill(directory: String) {
        if let pidText = try? FileSystem.readText(directory + "/data/postmaster.pid"),
            let line = pidText.split(separator: "\n").first, let pid = pid_t(line)
        {
            Glibc.kill(pid, SIGQUIT)
            for _ in 0..<100 where Glibc.kill(pid, 0) == 0 { usleep(50_000) }
        }
        TestFiles.removeTree(directory)
    }

    /// The ports freePort has handed out in this test process (the suites make clusters side by
    /// side: two of them must not be given one port before either server listens on it).
    nonisolated(unsafe) private static var handedOut: Set<Int> = []
    private static let handedOutLock = Mutex()

    /// A TCP port nothing listens on now, not handed out before in this process, and no Debian
    /// cluster's (ScratchCluster.freePort, the backups' own), from a random start below the
    /// kernel's ephemeral range (32768-60999): test processes side by side start apart.
    static func freePort() -> Int {
        let start = 20000 + Int.random(in: 0..<10000)
        do {
            return try ScratchCluster.freePort(from: start) { port in
                handedOutLock.locked { handedOut.insert(port).inserted }
            }
        } catch {
            fatalError("no free port found: \(error)")
        }
    }

    // MARK: the shared cluster

    private static let sharedTask = SharedCluster()

    /// One cluster for the whole test process, started on first use, stopped at exit.
    /// The pid of a live PostgreSQL server (the shared cluster's postmaster): what a planted
    /// postmaster.pid must name to read as a running server (PostmasterStatus.isPostgres).
    static func livePostmasterPid() async throws -> Int32 {
        let cluster = try await shared()
        let text = try FileSystem.readText(cluster.dataDirectory + "/postmaster.pid")
        guard let pid = Int32(text.prefix(while: { $0 != "\n" })) else {
            throw Failure("the shared cluster's postmaster.pid names no pid")
        }
        return pid
    }

    static func shared() async throws -> TestCluster {
        try await sharedTask.get()
    }
}

private actor SharedCluster {
    private var cluster: Task<TestCluster, any Error>?

    func get() async throws -> TestCluster {
        if let cluster { return try await cluster.value }
        let task = Task { () async throws -> TestCluster in
            let started = try await TestCluster.start()
            sharedClusterDirectory = started.directory
            atexit {
                if let directory = sharedClusterDirectory { TestCluster.kill(directory: directory) }
            }
            return started
        }
        cluster = task
        return try await task.value
    }
}

nonisolated(unsafe) private var sharedClusterDirectory: String?

@Suite("test support: ports for the clusters the suites make side by side")
struct TestPortTests {
    @Test("freePort hands a port out once in a test process, and never a Debian cluster's (a stopped one's port is taken for the postgres step)")
    func portsHandedOutOnce() throws {
        // 400 draws from 10,000 ports: without the record of what was handed out, two equal
        // ones are all but certain (1 - e^(-8)).
        let ports = (0..<400).map { _ in TestCluster.freePort() }
        #expect(Set(ports).count == ports.count)
        let clusterPorts = Set(try DebianClusters.list().compactMap(\.port))
        #expect(clusterPorts.isDisjoint(with: ports))
    }
}
