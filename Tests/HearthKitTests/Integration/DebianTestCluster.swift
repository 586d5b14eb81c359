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

/// A real Debian cluster (pg_createcluster, /etc/postgresql/<version>/<name>) under a unique
/// name `hmtest<random>` on a free port, for the postgres and pg-hba steps. `drop()` removes
/// it (pg_dropcluster --stop, and the conf.d file pg_dropcluster leaves); so does the exit of
/// the test process for any a failed test left.
struct DebianTestCluster: Sendable {
    let name: String
    let port: Int
    let version = 15

    init() {
        name = "hmtest\(Int.random(in: 100_000..<1_000_000))"
        port = TestCluster.freePort()
        DebianTestClusters.register(name)
    }

    var paths: ClusterPaths { ClusterPaths(version: version, name: name) }

    /// The configuration that points the steps at this cluster, plus `extra` lines.
    func config(_ extra: String = "", port: Int? = nil) throws -> HearthConfig {
        try loadConfig("PG_CLUSTER_NAME=\(name)\nPOSTGRES_PORT=\(port ?? self.port)\n\(extra)")
    }

    func drop() {
        DebianTestClusters.drop(name, version: version)
    }
}

enum DebianTestClusters {
    nonisolated(unsafe) private static var names: Set<String> = []
    nonisolated(unsafe) private static let lock: UnsafeMutablePointer<pthread_mutex_t> = {
        let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        pthread_mutex_init(lock, nil)
        // The postgres step writes postgresql-common's createcluster.d drop-in; a machine
        // that had none before the tests has none after.
        dropInExisted = FileSystem.exists(DebianClusters.createClusterDropIn)
        atexit {
            DebianTestClusters.dropAll()
            if !DebianTestClusters.dropInExisted {
                FileSystem.remove(DebianClusters.createClusterDropIn)
                let path = DebianClusters.createClusterDropIn
                rmdir(String(path[..<path.lastIndex(of: "/")!]))
            }
        }
        return lock
    }()
    nonisolated(unsafe) private static var dropInExisted = true

    static func register(_ name: String) {
        pthread_mutex_lock(lock)
        names.insert(name)
        pthread_mutex_unlock(lock)
    }

    static func drop(_ name: String, version: Int = 15) {
        precondition(name.hasPrefix("hmtest"))
        if FileSystem.exists("/etc/postgresql/\(version)/\(name)") {
            spawnAndWait(["/usr/bin/pg_dropcluster", "--stop", String(version), name])
        }
        // pg_dropcluster leaves a directory that still holds a file it does not know (ours).
        spawnAndWait(["/bin/rm", "-rf", "/etc/postgresql/\(version)/\(name)"])
        pthread_mutex_lock(lock)
        names.remove(name)
        pthread_mutex_unlock(lock)
    }

    static func dropAll() {
        pthread_mutex_lock(lock)
        let left = names
        pthread_mutex_unlock(lock)
        for name in left { drop(name) }
    }

    /// Runs a command synchronously (usable from atexit and defer).
    static func spawnAndWait(_ argv: [String]) {
        var pid: pid_t = 0
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { cArgs.forEach { free($0) } }
        if posix_spawn(&pid, argv[0], nil, nil, cArgs, environ) == 0 {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }
}

/// A runner without a log, as the tests use it.
func testRunner(dryRun: Bool = false) -> StepRunner {
    StepRunner(console: Console(colour: false), log: nil, runID: "test", dryRun: dryRun)
}

/// Runs a step and returns its outcome and how long it took (ms).
func timed(_ step: Step, dryRun: Bool = false) async -> (StepRunner.Outcome, Double) {
    let t0 = Clock.nowMs()
    let outcome = await testRunner(dryRun: dryRun).run(step)
    return (outcome, Clock.nowMs() - t0)
}
