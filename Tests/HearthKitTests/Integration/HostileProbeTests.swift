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

/// Attacks on what issue 15 changed ("small and fast"): the cluster probe that reads
/// postgresql-common's files as root in this process (instead of pg_lsclusters under a
/// deadline), the owner sessions and their settings, the per-thread effective uid of peer
/// logins on worker threads, the SCRAM verifiers read and recomputed, and the server's
/// connection slots. Each attack is really tried and must end bounded, named, with no secret
/// shown and root's files unchanged.
@Suite("hostile: the cluster probe, owner sessions, workers (integration)", .serialized)
struct HostileProbeTests {
    /// A configuration tree like /etc/postgresql (`root`, root's, then 15/probe, the postgres
    /// account's) and a data directory of the postgres account's, for ClusterProbe(configRoot:).
    struct Tree {
        let base: String
        var root: String { base + "/etc" }
        var cluster: String { root + "/15/probe" }
        var data: String { base + "/data" }
        var probe: ClusterProbe { ClusterProbe(configRoot: root) }

        init() async throws {
            base = TestFiles.temporaryDirectory("hm-probe")
            chmod(base, 0o755)
            try FileSystem.makeDirectories(root + "/15", mode: 0o755)
            try await Hostile.asRoot(
                "set -e; mkdir \(cluster) \(data); chown postgres:postgres \(cluster) \(data); chmod 0700 \(data)")
            try await plant(
                """
                printf "data_directory = '\(data)'\\nport = 5999\\ninclude_dir = 'conf.d'\\n" > \(cluster)/postgresql.conf
                mkdir \(cluster)/conf.d
                """)
        }

        /// Runs `script` as the postgres account (set -e).
        func plant(_ script: String) async throws {
            let result = try await Hostile.asPostgres("set -e\n" + script)
            #expect(result.succeeded, "\(result.stderr)")
        }

        func find() throws -> ClusterInfo? { try probe.cluster(version: 15, name: "probe") }

        func remove() { TestFiles.removeTree(base) }
    }

    /// `body` on a thread of its own, waited for at most `seconds`: nil when it has not ended
    /// (it is left running; the test fails instead of hanging).
    static func within(_ seconds: Int, _ body: @escaping @Sendable () -> String) -> String? {
        let box = WithinBox(body)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(box).toOpaque()
        guard pthread_create(&thread, nil, { raw in
            let box = Unmanaged<WithinBox>.fromOpaque(raw!).takeRetainedValue()
            let value = box.body()
            pthread_mutex_lock(&box.lock)
            box.value = value
            pthread_cond_signal(&box.done)
            pthread_mutex_unlock(&box.lock)
            return nil
        }, context) == 0 else { return nil }
        pthread_detach(thread)
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        deadline.tv_sec += seconds
        pthread_mutex_lock(&box.lock)
        while box.value == nil {
            if pthread_cond_timedwait(&box.done, &box.lock, &deadline) == ETIMEDOUT { break }
        }
        let value = box.value
        pthread_mutex_unlock(&box.lock)
        return value
    }

    /// What `body` wrote to file descriptor 2 (libpq's default notice processor writes there).
    static func standardError(_ body: () async throws -> Void) async throws -> String {
        let directory = TestFiles.temporaryDirectory("hm-stderr")
        defer { TestFiles.removeTree(directory) }
        let path = directory + "/stderr"
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        #expect(file >= 0)
        let saved = dup(2)
        dup2(file, 2)
        close(file)
        var failure: (any Error)?
        do { try await body() } catch { failure = error }
        dup2(saved, 2)
        close(saved)
        if let failure { throw failure }
        return try FileSystem.readText(path)
    }

    // MARK: the cluster probe (root reads the postgres account's files)

    @Test("probe: a data_directory of root's or of another account's does not make that account the cluster's owner (as root, pg_ctlcluster's log would be read as root)")
    func probeOwner() async throws {
        let tree = try await Tree()
        defer { tree.remove() }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let postgres = try #require(try tree.find())
        #expect(postgres.owner == "postgres" && postgres.port == 5999 && postgres.dataDirectory == tree.data)

        // A directory of root's; another account's (nobody); root's sticky /tmp-like one where the
        // postgres account plants a postmaster.pid naming a live server (the shared test cluster's) and a socket
        // directory of its own.
        let sticky = tree.base + "/sticky"
        let nobodys = tree.base + "/nobodys"
        try await Hostile.asRoot(
            "set -e; mkdir -m 1777 \(sticky); mkdir -m 0755 \(nobodys); chown nobody \(nobodys)")
        let server = try await TestCluster.livePostmasterPid()
        try await tree.plant(
            "printf '\(server)\\n\(sticky)\\n1\\n5999\\n/tmp\\n*\\n1 2\\nready\\n' > \(sticky)/postmaster.pid")
        for directory in [victim.path, nobodys, sticky] {
            try await tree.plant(
                "printf \"data_directory = '\(directory)'\\n\" > \(tree.cluster)/conf.d/00-elsewhere.conf")
            let found = try #require(try tree.find())
            #expect(found.dataDirectory == directory)
            #expect(found.owner == nil, "\(directory): owner \(found.owner ?? "nil")")
        }
        #expect(try tree.find()?.online == true, "the planted postmaster.pid names a live process")

        // A link in place of the data directory is not followed for its owner either.
        try await tree.plant(
            "ln -s \(victim.path) \(tree.base)/data/link; printf \"data_directory = '\(tree.data)/link'\\n\" > \(tree.cluster)/conf.d/00-elsewhere.conf")
        #expect(try tree.find()?.owner == nil)
    }

    @Test("probe: include loops that fan out, sparse files of a gigabyte, endless include_dir lines and a huge postmaster.pid end at once, named; FIFOs do not hold it")
    func probeBounded() async throws {
        let tree = try await Tree()
        defer { tree.remove() }
        let c = tree.cluster
        let attacks: [(String, String)] = [
            ("an include that fans out ten deep (4^10 reads; 8^10 held the run for days)",
             "for i in 1 2 3 4; do echo \"include 'loop.conf'\"; done > \(c)/loop.conf; echo \"include '\(c)/loop.conf'\" > \(c)/conf.d/00-evil.conf"),
            // (a terabyte took the host's memory: 1 GiB shows it without that)
            ("a sparse file of a gigabyte",
             "truncate -s 1G \(c)/big.conf; echo \"include '\(c)/big.conf'\" > \(c)/conf.d/00-evil.conf"),
            ("a sparse postgresql.auto.conf of a gigabyte",
             "truncate -s 1G \(tree.data)/postgresql.auto.conf"),
            ("a hundred thousand include_dir lines",
             "yes \"include_dir '/usr/share/zoneinfo/right'\" | head -100000 > \(c)/conf.d/00-evil.conf"),
        ]
        for (what, plant) in attacks {
            try await tree.plant(plant)
            let probe = tree.probe
            let t0 = Clock.nowMs()
            let outcome = Self.within(60) { () -> String in
                do {
                    _ = try probe.cluster(version: 15, name: "probe")
                    return "no error"
                } catch { return "\(error)" }
            }
            let ms = Clock.nowMs() - t0
            #expect(outcome?.contains("is more than 1000 files or 16 MiB to read") == true, "\(what): \(outcome ?? "still running after 60 s")")
            // (a few milliseconds in a release build; a debug build on a loaded machine takes seconds)
            #expect(ms < 30_000, "\(what): \(ms) ms")
            // Listed with the rest, with what is unknown left nil.
            let listed = Self.within(60) {
                guard let first = (try? probe.clusters())?.first else { return "none" }
                return "\(first.port.map(String.init) ?? "nil") \(first.dataDirectory ?? "nil")"
            }
            #expect(listed == "nil nil", "\(what): \(listed ?? "still running")")
            try await tree.plant("rm -f \(c)/conf.d/00-evil.conf \(c)/loop.conf \(c)/big.conf \(tree.data)/postgresql.auto.conf")
        }
        #expect(try tree.find()?.port == 5999)

        // A postmaster.pid of a gigabyte: not read, not online.
        try await tree.plant("truncate -s 1G \(tree.data)/postmaster.pid")
        let data = tree.data
        let t0 = Clock.nowMs()
        let status = Self.within(60) { PostmasterStatus.read(dataDirectory: data) == nil ? "none" : "read" }
        #expect(status == "none" && Clock.nowMs() - t0 < 10_000)

        // FIFOs in place of an included file, postgresql.auto.conf and postmaster.pid.
        try await tree.plant(
            """
            rm -f \(tree.data)/postmaster.pid
            mkfifo \(c)/fifo.conf \(tree.data)/postgresql.auto.conf \(tree.data)/postmaster.pid
            echo "include 'fifo.conf'" > \(c)/conf.d/00-evil.conf
            """)
        let probe = tree.probe
        let found = Self.within(30) {
            guard let info = try? probe.cluster(version: 15, name: "probe") else { return "none" }
            return "\(info.port.map(String.init) ?? "nil") \(info.online)"
        }
        #expect(found == "5999 false", "the FIFOs held the probe: \(found ?? "still running after 30 s")")
    }

    @Test("probe: links to root's files in place of postgresql.conf, an included file and postgresql.auto.conf are not read")
    func probeLinks() async throws {
        let tree = try await Tree()
        defer { tree.remove() }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        // Root's file that would set the port, were it read through a link.
        try FileSystem.writeAtomically(victim.path + "/port.conf", "port = 4242\n", mode: 0o600, uid: 0, gid: 0)
        let before = victim.snapshot()
        try await tree.plant(
            """
            ln -s \(victim.path)/port.conf \(tree.cluster)/conf.d/50-root.conf
            ln -s \(victim.path)/port.conf \(tree.data)/postgresql.auto.conf
            """)
        #expect(try tree.find()?.port == 5999)
        try await tree.plant("mv \(tree.cluster)/postgresql.conf \(tree.cluster)/real.conf; ln -s \(victim.path)/port.conf \(tree.cluster)/postgresql.conf")
        let found = try #require(try tree.find())
        #expect(found.port == nil && found.dataDirectory == nil, "\(found)")
        #expect(victim.snapshot() == before)
    }

    // MARK: tenants and the owner sessions

    @Test("a role's and a database's settings with a tenant's terminal escapes, rejected at login: the WARNING quoting them never reaches standard error raw")
    func loginWarningsEscaped() async throws {
        let host = try await HostileTenantTests.Host()
        defer { host.s.tearDown() }
        // default_text_search_config is checked at login: a value naming no configuration is a
        // WARNING that quotes it. ESC ] 2 ; sets the terminal's title, ESC [ 2 J clears it.
        let value = "E'public.\\x1b]2;pwned-title\\x07\\x1b[2J'"
        try host.tenant("logos_db").execute(
            "ALTER ROLE logos SET default_text_search_config = \(value); ALTER DATABASE logos_db SET default_text_search_config = \(value)")
        try host.tenant("hearthminds_db").execute("ALTER DATABASE hearthminds_db SET default_text_search_config = \(value)")
        var outcomes: [String: Int32] = [:]
        let written = try await Self.standardError { outcomes = try await host.runEverything("escapes in settings") }
        #expect(!written.contains("\u{1B}]2;pwned-title"), "a tenant's escape reached standard error raw:\n\(written)")
        #expect(outcomes["databases"] == 0 && outcomes["migrations"] == 0 && outcomes["verify"] == 0, "\(outcomes)")
    }

    @Test("ALTER ROLE ... SET role = pg_database_owner on the AI's own role: the suite's sessions stay the AI's own, and the steps converge")
    func roleSettingPinned() async throws {
        let host = try await HostileTenantTests.Host()
        defer { host.s.tearDown() }
        try host.tenant("logos_db").execute("ALTER ROLE logos SET role = 'pg_database_owner'")
        let credentials = Credentials(host.config, book: PasswordBook(host.config, directory: host.s.clientDirectory))
        let (db, owner) = try host.s.server.ownerConnection("logos_db", credentials, expected: "logos")
        #expect(owner == "logos")
        #expect(try db.query("SELECT current_user").scalar == "logos")
        let outcomes = try await host.runEverything("role setting")
        #expect(outcomes["migrations"] == 0 && outcomes["verify"] == 0 && outcomes["databases"] == 0, "\(outcomes)")
    }

    @Test("a SCRAM verifier with a salt of megabytes on the AI's own role: not read or hashed, replaced; the AI logs in with its password again")
    func hugeVerifier() async throws {
        let host = try await HostileTenantTests.Host()
        defer { host.s.tearDown() }
        let salt = Base64.encode((0..<(6 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 2_654_435_761 >> 7) })
        let key = Base64.encode([UInt8](repeating: 7, count: 32))
        try host.tenant("logos_db").execute("ALTER ROLE logos PASSWORD 'SCRAM-SHA-256$4096:\(salt)$\(key):\(key)'")
        #expect(try host.s.admin().query("SELECT octet_length(rolpassword) FROM pg_authid WHERE rolname = 'logos'").scalar
            .flatMap { Int($0) }.map { $0 > 8 << 20 } == true)
        let state = try #require(try RoleSpec.states(["logos"], host.s.admin())["logos"])
        #expect(state.password == "", "the catalog read fetched the huge verifier")
        #expect(SCRAMVerifier(String(repeating: "A", count: 4096)) == nil)
        let outcome = try await host.s.run(host.config)
        #expect(outcome.status == 0 && outcome.changed == 1)
        _ = try host.tenant("logos_db")  // its configured password again
        #expect(try await host.s.run(host.config).changed == 0)
    }

    @Test("a tenant holding every connection slot it may: the steps fail at once, naming the refusal; no hang")
    func connectionsExhausted() async throws {
        let host = try await HostileTenantTests.Host()
        defer { host.s.tearDown() }
        // Every slot the AI may take (the superusers' reserved ones stay), taken again after the
        // backends of the set-up have ended.
        var held: [PGConnection] = []
        for _ in 0..<3 {
            while held.count < 200, let connection = try? host.tenant("logos_db") { held.append(connection) }
            try await Task.sleep(nanoseconds: 300_000_000)
        }
        #expect(held.count > 50, "held \(held.count)")
        let runner = StepRunner(console: Console(colour: false), log: nil, runID: "full", dryRun: false)
        let s = host.s
        let config = host.config
        let t0 = Clock.nowMs()
        let migrations = await runner.run(
            MigrationsStep.make(
                config, directory: host.migrations, socketDirectory: s.cluster.socketDirectory,
                clientDirectory: s.clientDirectory))
        let verify = await runner.run(
            VerifyStep.make(config, server: s.server, migrations: host.migrations, clientDirectory: s.clientDirectory))
        let databases = try await s.run(config)
        let ms = Clock.nowMs() - t0
        #expect(migrations.status == ExitStatus.failed && verify.status == ExitStatus.failed && databases.status == ExitStatus.failed)
        #expect(ms < 60_000, "\(ms) ms")
        let log = try FileSystem.readText(s.logPath)
        #expect(log.contains("too many clients") || log.contains("reserved for"), "the refusal is named")
        held.removeAll()
        try await Task.sleep(nanoseconds: 500_000_000)
        #expect(try await s.run(config).status == 0)
    }

    // MARK: a server of the postgres account's making

    @Test("a fake server at the socket a peer login or a ping is sent to asks for a password: libpq gives none, neither the password file of the environment nor ~/.pgpass")
    func fakeServerGetsNoPasswordFile() async throws {
        let fake = try FakeServer()
        defer { fake.stop() }
        // The operator's password file, named in the environment (root's own ~/.pgpass is read
        // the same way; it is not touched here).
        let directory = TestFiles.temporaryDirectory("hm-passfile")
        defer { TestFiles.removeTree(directory) }
        try FileSystem.writeAtomically(directory + "/pgpass", "*:*:*:*:operator-passfile-secret\n", mode: 0o600)
        setenv("PGPASSFILE", directory + "/pgpass", 1)
        defer { unsetenv("PGPASSFILE") }
        expectFailure(.database) {
            try PGConnection(PGTarget(host: fake.directory, port: fake.port, database: "postgres", user: "postgres"))
        }
        expectFailure(.database) {
            try PGConnection(
                PGTarget(host: fake.directory, port: fake.port, database: "postgres", user: "postgres", asSystemUser: Hostile.postgres))
        }
        _ = PGConnection.ping(host: fake.directory, port: fake.port, connectTimeout: 5)
        #expect(fake.connections >= 3)
        #expect(fake.passwords.isEmpty, "sent: \(fake.passwords)")
    }

    @Test("hm-migrate run with PGPASSWORD in root's environment: the peer login to a fake server at the socket directory sends no password")
    func fakeServerGetsNoEnvironmentPassword() async throws {
        let fake = try FakeServer()
        defer { fake.stop() }
        let directory = TestFiles.temporaryDirectory("hm-fake-run")
        defer { TestFiles.removeTree(directory) }
        let config = directory + "/hearthminds.env"
        try FileSystem.writeAtomically(
            config,
            "POSTGRES_PORT=\(fake.port)\nHEARTHMINDS_SERVICE_USER=nobody\nHEARTHMINDS_DB=hmfake_db\n"
                + "HEARTHMINDS_LOG=\(directory)/log.jsonl\n", mode: 0o600)
        let t0 = Clock.nowMs()
        let result = try await Command.run(
            [
                Hostile.executable("migrate"), "current", "--config", config, "--socket-dir", fake.directory,
                "--database", "hmfake_db", "--migrations", TestFiles.repositoryRoot + "/Migrations",
            ],
            environment: [
                "PGPASSWORD": "operator-env-secret", "HEARTHMINDS_LOCK_DIR": directory + "/run",
            ],
            timeout: 120)
        #expect(result.status != 0, "\(result.stdout) \(result.stderr)")
        #expect(Clock.nowMs() - t0 < 60_000)
        #expect(fake.connections >= 1, "\(result.stdout) \(result.stderr)")
        #expect(fake.passwords.isEmpty, "sent: \(fake.passwords)")
        #expect(!(result.stdout + result.stderr).contains("operator-env-secret"))
    }

    // MARK: workers

    @Test("peer logins on worker threads switch only their own thread's effective uid: root's writes beside them stay root's")
    func euidPerThread() async throws {
        let cluster = try await TestCluster.shared()
        let directory = TestFiles.temporaryDirectory("hm-euid")
        defer { TestFiles.removeTree(directory) }
        chmod(directory, 0o700)
        let failures = Mutex()
        var problems: [String] = []
        Workers.run(count: 8, width: 8) { i in
            for round in 0..<40 {
                if i % 2 == 0 {
                    do {
                        let db = try cluster.connect()
                        if try db.query("SELECT current_user").scalar != "postgres" {
                            failures.locked { problems.append("login \(i)/\(round) is not postgres") }
                        }
                    } catch { failures.locked { problems.append("login \(i)/\(round): \(error)") } }
                    if geteuid() != 0 { failures.locked { problems.append("worker \(i) kept euid \(geteuid())") } }
                } else {
                    let name = "f\(i)-\(round)"
                    do {
                        if geteuid() != 0 { failures.locked { problems.append("writer \(i) runs as \(geteuid())") } }
                        let open = try OpenDirectory.open(directory)
                        try open.write(name, "x")
                        if let entry = try open.entry(name), entry.uid != 0 {
                            failures.locked { problems.append("\(name) is owned by uid \(entry.uid)") }
                        }
                    } catch { failures.locked { problems.append("write \(name): \(error)") } }
                }
            }
            return true
        }
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(geteuid() == 0)
    }
}

/// A server of the postgres account's making, on a Unix socket in a directory of its own (as
/// a postmaster.pid it rewrote would name): it asks every client for its password in clear text
/// and keeps what it is given.
final class FakeServer: @unchecked Sendable {
    let directory: String
    let port: Int
    private let fd: Int32
    private let mutex = Mutex()
    private var received: [String] = []
    private var accepted = 0

    init() throws {
        directory = TestFiles.temporaryDirectory("hm-fakepg")
        chmod(directory, 0o755)
        port = TestCluster.freePort()
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let path = Array((directory + "/.s.PGSQL.\(port)").utf8CString)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (i, byte) in path.enumerated() where i < raw.count { raw[i] = UInt8(bitPattern: byte) }
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard fd >= 0, bound == 0, listen(fd, 16) == 0 else { throw Failure("fake server: \(FileSystem.errnoText())") }
        chmod(directory + "/.s.PGSQL.\(port)", 0o777)
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        pthread_create(&thread, nil, { raw in
            let server = Unmanaged<FakeServer>.fromOpaque(raw!).takeRetainedValue()
            server.serve()
            return nil
        }, context)
        pthread_detach(thread)
    }

    var passwords: [String] { mutex.locked { received } }
    var connections: Int { mutex.locked { accepted } }

    func stop() {
        shutdown(fd, Int32(SHUT_RDWR))
        close(fd)
        TestFiles.removeTree(directory)
    }

    private func serve() {
        while true {
            let client = accept(fd, nil, nil)
            guard client >= 0 else { return }
            mutex.locked { accepted += 1 }
            handle(client)
            close(client)
        }
    }

    private func readExactly(_ client: Int32, _ count: Int) -> [UInt8]? {
        var bytes = [UInt8](repeating: 0, count: count)
        var offset = 0
        while offset < count {
            let n = bytes.withUnsafeMutableBytes { recv(client, $0.baseAddress! + offset, count - offset, 0) }
            guard n > 0 else { return nil }
            offset += n
        }
        return bytes
    }

    private static func int32(_ bytes: ArraySlice<UInt8>) -> Int {
        bytes.prefix(4).reduce(0) { $0 << 8 | Int($1) }
    }

    private func handle(_ client: Int32) {
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        guard let head = readExactly(client, 4), let body = readExactly(client, Self.int32(head[...]) - 4) else { return }
        _ = body
        // AuthenticationCleartextPassword.
        let ask: [UInt8] = [UInt8(ascii: "R"), 0, 0, 0, 8, 0, 0, 0, 3]
        _ = ask.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard let type = readExactly(client, 1), let length = readExactly(client, 4),
            let payload = readExactly(client, Self.int32(length[...]) - 4)
        else { return }
        if type[0] == UInt8(ascii: "p") {
            let text = String(decoding: payload.prefix { $0 != 0 }, as: UTF8.self)
            mutex.locked { received.append(text) }
        }
        let message = Array("SFATAL\0C28P01\0Mno\0\0".utf8)
        let error = [UInt8(ascii: "E")] + withUnsafeBytes(of: UInt32(message.count + 4).bigEndian, Array.init) + message
        _ = error.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }
}

/// What `HostileProbeTests.within` shares with its thread.
private final class WithinBox: @unchecked Sendable {
    var lock = pthread_mutex_t()
    var done = pthread_cond_t()
    var value: String?
    let body: @Sendable () -> String

    init(_ body: @escaping @Sendable () -> String) {
        self.body = body
        pthread_mutex_init(&lock, nil)
        pthread_cond_init(&done, nil)
    }
}

extension HostStepsTests {
    @Test("hostile postgres account: data_directory names a directory of root's and the `log` link a secret of root's; the failed start shows nothing of it")
    func hostileDataDirectoryOfRoot() async throws {
        let cluster = DebianTestCluster()
        defer { cluster.drop() }
        let victim = try Hostile.Victim()
        defer { victim.remove() }
        let config = try cluster.config()
        let paths = cluster.paths
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
        let before = victim.snapshot()
        let c = paths.configDirectory
        try await Hostile.asPostgres(
            "set -e; echo \"data_directory = '\(victim.path)'\" > \(c)/conf.d/00-evil.conf; ln -sfn \(victim.path)/secret \(c)/log")
        #expect(try DebianClusters.find(paths)?.owner == nil)
        let (outcome, detail) = try await Hostile.run(PostgresStep.make(config))
        #expect(outcome.status == ExitStatus.failed && outcome.failedAction == "cluster \(paths.id) is running", "\(detail)")
        #expect(!detail.contains("root's secret"), "root's file shown: \(detail)")
        #expect(victim.snapshot() == before)

        try await Hostile.asPostgres("rm -f \(c)/conf.d/00-evil.conf \(c)/log")
        #expect(await testRunner().run(PostgresStep.make(config)).status == 0)
    }
}
