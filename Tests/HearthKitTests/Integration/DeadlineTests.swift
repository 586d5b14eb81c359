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

/// Every run bounded in time (issue 21, item 6): STEP_TIMEOUT.
@Suite("step deadlines: a step held past STEP_TIMEOUT ends false, naming what it was in (integration)")
struct DeadlineTests {
    /// Runs `script` in a mount namespace of its own ($1: the executables' directory, $2: `work`,
    /// which holds the log and the lock directory); its result and how long the script took, as
    /// the script itself measured it. (Not the test's clock: in a loaded `make test` the other
    /// suites' blocking calls may hold the test process's cooperative threads, and the await
    /// here resumed 45 s after the script had ended, which a deadline's test is not about.)
    func inNamespace(_ script: String, work: String) async throws -> (CommandResult, Double) {
        let timed = """
            started=$(date +%s%N)
            ( \(script)
            ); status=$?
            echo $(( ($(date +%s%N) - started) / 1000000 )) >"$2/took-ms"
            exit $status
            """
        let result = try await Command.run(
            ["timeout", "120", "unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", timed, "sh",
             TestFiles.buildDirectory, work],
            environment: ["HEARTHMINDS_LOG": work + "/log.jsonl", "HEARTHMINDS_LOCK_DIR": work + "/lock"])
        let took = try FileSystem.readText(work + "/took-ms").filter { $0 != "\n" }
        return (result, try #require(Double(took), "took-ms: \(took)"))
    }

    @Test("a server that accepts logins and never answers: migrations and databases end false at STEP_TIMEOUT naming the action, logged, the lock free; without the deadline they would wait out every login's")
    func heldStepsEnd() async throws {
        let work = TestFiles.temporaryDirectory("hm-deadline")
        defer { TestFiles.removeTree(work) }
        let port = TestCluster.freePort()
        // In a mount namespace of the test's own: a /var/run/postgresql whose socket for the port
        // is a listener that takes every connection and says nothing (as a server held by a
        // tenant's lock or a stuck backend would).
        let script = """
            set -e
            mount -t tmpfs -o mode=0775 hm-deadline /var/run/postgresql
            python3 -c "import socket,time; s=socket.socket(socket.AF_UNIX); import os; p='/var/run/postgresql/.s.PGSQL.\(port)'; s.bind(p); os.chmod(p, 0o777); s.listen(64); time.sleep(120)" &
            for i in $(seq 1 50); do [ -S /var/run/postgresql/.s.PGSQL.\(port) ] && break; sleep 0.1; done
            for step in migrations databases; do
                "$1/hm-$step" --set POSTGRES_PORT=\(port) --set STEP_TIMEOUT=2 >"$2/$step.out" 2>&1 && exit 10
                echo "$step exited $?" >>"$2/status"
            done
            flock -n "$2/lock/bootstrap.lock" true && echo "lock free" >>"$2/status"
            """
        let (result, ms) = try await inNamespace(script, work: work)
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(ms < 30_000, "\(Int(ms)) ms")
        #expect(try FileSystem.readText(work + "/status") == "migrations exited 1\ndatabases exited 1\nlock free\n")
        let migrations = try FileSystem.readText(work + "/migrations.out")
        #expect(
            migrations.contains("hm-migrations: deadline of 2 s passed (STEP_TIMEOUT) in 'database hearthminds_db at the head revision'"),
            "\(migrations)")
        let databases = try FileSystem.readText(work + "/databases.out")
        #expect(databases.contains("hm-databases: deadline of 2 s passed (STEP_TIMEOUT) in "), "\(databases)")
        let log = try FileSystem.readText(work + "/log.jsonl")
        let records = log.split(separator: "\n").filter { $0.contains("deadline of 2 s passed") }
        #expect(records.count == 2 && records.allSatisfy { $0.contains("\"result\":false") }, "\(log)")
        #expect(log.utf8.count < 64 << 10)
        print("two steps held by a silent server, STEP_TIMEOUT=2: both false after \(Int(ms)) ms")
    }

    @Test("what a step started goes with it at its deadline: pg_ctlcluster held by a FIFO of the postgres account's is killed, not left running as root")
    func childrenKilled() async throws {
        let work = TestFiles.temporaryDirectory("hm-deadline-children")
        defer { TestFiles.removeTree(work) }
        let name = "hmdl\(Int.random(in: 100_000..<1_000_000))"
        // In a mount namespace of the test's: an /etc/postgresql with one cluster whose
        // postgresql.conf is a FIFO nobody writes (pg_ctlcluster start blocks reading it). (25 s:
        // the step's dpkg action waits while AptLockTests, beside it, holds dpkg's lock for 3 s, and
        // a loaded CI run took more than 10 s to get past it.) dpkg's database is a copy of the
        // test's own, so that its lock is the namespace's: another suite's apt or dpkg holding the
        // host's lock (a loaded CI run: past the 25 s) is not what this test is about.
        let script = """
            set -e
            mkdir "$2/dpkg" && cp -a /var/lib/dpkg/. "$2/dpkg/" && mount --bind "$2/dpkg" /var/lib/dpkg
            mount -t tmpfs -o mode=0755 hm-deadline /etc/postgresql
            mkdir -p /etc/postgresql/15/\(name) "$2/data"
            echo auto > /etc/postgresql/15/\(name)/start.conf
            mkfifo /etc/postgresql/15/\(name)/postgresql.conf
            chown -R postgres:postgres /etc/postgresql "$2/data"
            "$1/hm-postgres" --set PG_CLUSTER_NAME=\(name) --set POSTGRES_PORT=\(TestCluster.freePort()) --set STEP_TIMEOUT=25 \
                >"$2/out" 2>&1 && exit 10
            echo "exited $?" >"$2/status"
            sleep 1
            # nothing of the step's is left: no pg_ctlcluster (nor anything else) for the cluster
            ps -eo pid,args | grep -v grep | grep -F -- "\(name)" >"$2/left" || true
            """
        let (result, ms) = try await inNamespace(script, work: work)
        #expect(result.status == 0, "\(result.stdout) \(result.stderr)")
        #expect(try FileSystem.readText(work + "/status") == "exited 1\n")
        let out = try FileSystem.readText(work + "/out")
        #expect(out.contains("hm-postgres: deadline of 25 s passed (STEP_TIMEOUT) in 'cluster 15/\(name) is running'"), "\(out)")
        let left = try FileSystem.readText(work + "/left")
        #expect(left == "", "left running: \(left)")
        #expect(ms < 60_000, "\(Int(ms)) ms")
    }

    @Test("/proc/<pid>/stat is read after the command's last parenthesis (a command may hold spaces and parentheses)")
    func statParsed() {
        let line = Array("4242 (a (b) c) S 17 4242 99 0 -1 4194560".utf8)
        #expect(ProcessTree.parse(line).map { [$0.parent, $0.session] } == [17, 99])
        #expect(ProcessTree.parse(Array("garbage".utf8)) == nil)
        #expect(ProcessTree.descendants().isEmpty || ProcessTree.descendants().allSatisfy { $0 != getpid() })
    }

    @Test("STEP_TIMEOUT: auto by step, a number of seconds, or a configuration error naming the key")
    func key() throws {
        #expect(StepDeadline.seconds(step: "postgres", configured: nil) == 1800)
        #expect(StepDeadline.seconds(step: "vector-index", configured: nil) == 3600)
        #expect(StepDeadline.seconds(step: "verify", configured: nil) == 300)
        #expect(StepDeadline.seconds(step: "verify", configured: 7) == 7)
        #expect(try loadConfig("STEP_TIMEOUT=90").stepTimeout == 90)
        #expect(try loadConfig("").stepTimeout == nil)
        for bad in ["0", "soon", "86401"] {
            do {
                _ = try loadConfig("STEP_TIMEOUT=\(bad)")
                Issue.record("STEP_TIMEOUT=\(bad) was taken")
            } catch {
                #expect("\(error)".contains("STEP_TIMEOUT"), "\(error)")
            }
        }
    }
}
