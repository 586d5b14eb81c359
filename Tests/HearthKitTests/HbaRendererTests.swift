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

/// pg_hba.conf and pg_ident.conf rendering from the shipped templates, for each shape of
/// configuration.
@Suite("hba rendering")
struct HbaRendererTests {
    static let templates: HbaRenderer.Templates = {
        do { return try HbaRenderer.Templates.load(root: TestFiles.repositoryRoot) } catch {
            fatalError("cannot read the shipped templates: \(error)")
        }
    }()

    func render(_ text: String) throws -> HbaRenderer.Files {
        try HbaRenderer.render(Self.templates, try loadConfig(text))
    }

    /// The rules of a rendered pg_hba.conf: non-comment lines, fields split on blanks.
    func rules(_ hba: String) -> [[String]] {
        hba.split(separator: "\n").map { $0.prefix(while: { $0 != "#" }) }
            .map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init) }
            .filter { !$0.isEmpty }
    }

    func identRules(_ ident: String) -> [[String]] { rules(ident) }

    @Test("loopback only (the defaults): peer for postgres/root and the service user; each password role its own lines")
    func loopbackOnly() throws {
        let files = try render("")
        #expect(files.hba.hasPrefix("# pg_hba.conf of PostgreSQL cluster 15/main: MANAGED by HearthMinds"))
        #expect(
            rules(files.hba) == [
                ["local", "all", "postgres", "peer", "map=hearthminds_admin"],
                ["local", "replication", "postgres", "peer", "map=hearthminds_admin"],
                ["local", "hearthminds_db", "hearthminds-service", "peer"],
                ["local", "postgres,hearthminds_db,logos_db,aletheia_db", "hearthminds-monitor", "peer"],
                ["local", "logos_db,hearthminds_db", "logos", "scram-sha-256"],
                ["local", "aletheia_db,hearthminds_db", "aletheia", "scram-sha-256"],
                ["host", "logos_db,hearthminds_db", "logos", "127.0.0.1/32", "scram-sha-256"],
                ["host", "aletheia_db,hearthminds_db", "aletheia", "127.0.0.1/32", "scram-sha-256"],
                ["host", "logos_db,hearthminds_db", "logos", "::1/128", "scram-sha-256"],
                ["host", "aletheia_db,hearthminds_db", "aletheia", "::1/128", "scram-sha-256"],
                ["local", "all", "hearthminds", "scram-sha-256"],
                ["host", "all", "hearthminds", "127.0.0.1/32", "scram-sha-256"],
                ["host", "all", "hearthminds", "::1/128", "scram-sha-256"],
            ])
        #expect(
            identRules(files.ident) == [
                ["hearthminds_admin", "postgres", "postgres"],
                ["hearthminds_admin", "root", "postgres"],
            ])
        #expect(files.hba.hasSuffix("\n") && files.ident.hasSuffix("\n"))
        #expect(!files.hba.contains("{{") && !files.ident.contains("{{"))
    }

    @Test("an AI's lines name only its own database and the shared one: never all, postgres or template1")
    func aiLinesAreNarrow() throws {
        let hba = rules(try render("AI_NAMES=logos,nous\nPOSTGRES_HOST=10.0.0.1\nPG_ALLOWED_NETWORKS=10.0.0.0/24").hba)
        for ai in ["logos", "nous"] {
            let mine = hba.filter { $0[2] == ai }
            #expect(mine.count == 5)  // local, two loopback, two networks
            #expect(mine.allSatisfy { $0[1] == "\(ai)_db,hearthminds_db" })
        }
        // No line lets every role in, and only the admin roles and the manager reach "all".
        #expect(!hba.contains { $0[2] == "all" })
        #expect(hba.filter { $0[1] == "all" }.allSatisfy { ["postgres", "hearthminds"].contains($0[2]) })
        // The monitoring account alone reaches the postgres database (pg_stat_statements), by peer.
        #expect(!hba.contains { ($0[1].contains("postgres") && $0[2] != "hearthminds-monitor") || $0[1].contains("template") })
        #expect(hba.filter { $0[2] == "hearthminds-monitor" } == [["local", "postgres,hearthminds_db,logos_db,nous_db", "hearthminds-monitor", "peer"]])
    }

    @Test("no rule ever uses trust, md5 or password")
    func noWeakMethods() throws {
        for text in ["", "POSTGRES_HOST=10.0.0.1\nPG_ALLOWED_NETWORKS=10.0.0.0/24,fd00::/64", "POSTGRES_ADMIN_USER=dba"] {
            for rule in rules(try render(text).hba) {
                let method = rule[0] == "local" ? rule[3] : rule[4]
                #expect(["peer", "scram-sha-256"].contains(method), "\(rule)")
                #expect(!rule.contains("trust") && !rule.contains("md5") && !rule.contains("password"))
            }
        }
    }

    @Test("a non-local POSTGRES_HOST: its own address may log in with a password, over TLS only (hostssl)")
    func nonLocalHost() throws {
        let v4 = rules(try render("POSTGRES_HOST=10.0.0.1").hba)
        #expect(v4.filter { $0[0] == "hostssl" } == [
            ["hostssl", "logos_db,hearthminds_db", "logos", "10.0.0.1/32", "scram-sha-256"],
            ["hostssl", "aletheia_db,hearthminds_db", "aletheia", "10.0.0.1/32", "scram-sha-256"],
            ["hostssl", "all", "hearthminds", "10.0.0.1/32", "scram-sha-256"],
        ])
        #expect(v4.count == 16)
        // Beyond loopback, never a plain host line.
        #expect(v4.filter { $0[0] == "host" }.allSatisfy { ["127.0.0.1/32", "::1/128"].contains($0[3]) })
        let v6 = rules(try render("POSTGRES_HOST=fd00::2").hba)
        #expect(v6.last == ["hostssl", "all", "hearthminds", "fd00::2/128", "scram-sha-256"])
        // localhost and 127.x are loopback: nothing beyond the loopback rules.
        #expect(rules(try render("POSTGRES_HOST=localhost").hba).count == 13)
        #expect(rules(try render("POSTGRES_HOST=127.0.0.2").hba).count == 13)
    }

    @Test("PG_ALLOWED_NETWORKS with IPv4 and IPv6, in order, without repeats or loopback twice")
    func allowedNetworks() throws {
        let files = try render(
            #"POSTGRES_HOST=10.0.0.1"# + "\n" + "AI_NAMES=logos\n"
                + #"PG_ALLOWED_NETWORKS=["10.0.0.0/24", "fd00:1::/64", "10.0.0.1/32", "127.0.0.1/32", "192.168.7.0/24"]"#)
        let logos = rules(files.hba).filter { $0[2] == "logos" && $0[0] != "local" }.map { $0[3] }
        #expect(logos == ["127.0.0.1/32", "::1/128", "10.0.0.1/32", "10.0.0.0/24", "fd00:1::/64", "192.168.7.0/24"])
        #expect(rules(files.hba).filter { $0[0] == "hostssl" }.count == 8)  // logos and the manager, 4 networks each
    }

    @Test("POSTGRES_ADMIN_PASSWORD: the admin gets password lines over TCP; without it, none")
    func adminPasswordLines() throws {
        let with = rules(try render("POSTGRES_ADMIN_USER=dba\nPOSTGRES_ADMIN_PASSWORD=x").hba).filter { $0[2] == "dba" }
        #expect(with == [
            ["host", "all", "dba", "127.0.0.1/32", "scram-sha-256"], ["host", "all", "dba", "::1/128", "scram-sha-256"],
        ])
        #expect(rules(try render("POSTGRES_ADMIN_USER=dba").hba).filter { $0[2] == "dba" }.isEmpty)
    }

    @Test("a non-default service user, database and admin")
    func nonDefaultNames() throws {
        let files = try render(
            "HEARTHMINDS_SERVICE_USER=hm-svc\nHEARTHMINDS_DB=shared_db\nPOSTGRES_ADMIN_USER=dba\n"
                + "PG_CLUSTER_NAME=hearth\nPG_VERSION=16")
        let hba = rules(files.hba)
        #expect(hba[0] == ["local", "all", "postgres,dba", "peer", "map=hearthminds_admin"])
        #expect(hba[1] == ["local", "replication", "postgres,dba", "peer", "map=hearthminds_admin"])
        #expect(hba[2] == ["local", "shared_db", "hm-svc", "peer"])
        #expect(files.hba.contains("cluster 16/hearth"))
        #expect(
            identRules(files.ident) == [
                ["hearthminds_admin", "postgres", "postgres"],
                ["hearthminds_admin", "postgres", "dba"],
                ["hearthminds_admin", "root", "postgres"],
                ["hearthminds_admin", "root", "dba"],
            ])
    }

    @Test("names that are keywords of pg_hba.conf are quoted")
    func keywordNames() {
        #expect(HbaRenderer.token("hearthminds-service") == "hearthminds-service")
        #expect(HbaRenderer.token("all") == "\"all\"")
        #expect(HbaRenderer.token("replication") == "\"replication\"")
        #expect(HbaRenderer.token("Mixed") == "\"Mixed\"")
    }

    @Test("a template with trust or md5, an unknown placeholder or an open {{ is refused")
    func badTemplates() throws {
        let config = try loadConfig("")
        let ident = Self.templates.ident
        for bad in [
            "local all all trust\n", "host all all 10.0.0.0/8 md5\n", "host all all 10.0.0.0 255.0.0.0 password\n",
            "local all {{NOPE}} peer\n", "local all {{ADMIN_ROLES peer\n", "host all {{AI}} {{NETWORK}} {{AI_DB}} peer\n",
            "local all all\n",
        ] {
            expectFailure(.error, "\(bad)") {
                try HbaRenderer.render(.init(hba: bad, ident: ident), config)
            }
        }
        // The address-and-mask form is read right.
        let masked = try HbaRenderer.render(
            .init(hba: "host all all 10.0.0.0 255.0.0.0 scram-sha-256\n", ident: ident), config)
        #expect(masked.hba.contains("255.0.0.0"))
    }

    @Test("a list line disappears when its list is empty")
    func emptyList() throws {
        let files = try render("")
        #expect(!files.hba.contains("{{NETWORK}}"))
        #expect(files.hba.split(separator: "\n").last?.hasPrefix("#") == true)
    }
}

@Suite("postgres step pieces")
struct PostgresPiecesTests {
    @Test("conf.d/hearthminds.conf: listen_addresses from POSTGRES_HOST, port, scram")
    func settingsFile() throws {
        let loopback = ServerSettings(try loadConfig("POSTGRES_PORT=5544"))
        #expect(loopback.listenAddresses == "127.0.0.1")
        let text = loopback.render(clusterID: "15/main")
        #expect(text.contains("\nlisten_addresses = '127.0.0.1'\nport = 5544\npassword_encryption = 'scram-sha-256'\n"))
        #expect(text.hasPrefix("# Managed by HearthMinds bootstrap"))
        #expect(ServerSettings(try loadConfig("POSTGRES_HOST=localhost")).listenAddresses == "localhost")
        #expect(ServerSettings(try loadConfig("POSTGRES_HOST=::1")).listenAddresses == "::1")
        #expect(ServerSettings(try loadConfig("POSTGRES_HOST=10.0.0.1")).listenAddresses == "localhost,10.0.0.1")
        #expect(ServerSettings(try loadConfig("POSTGRES_HOST=fd00::2")).listenAddresses == "localhost,fd00::2")
    }

    @Test("paths derive from PG_VERSION and PG_CLUSTER_NAME")
    func paths() throws {
        let paths = ClusterPaths(try loadConfig("PG_CLUSTER_NAME=hearth\nPG_VERSION=16"))
        #expect(paths.hbaFile == "/etc/postgresql/16/hearth/pg_hba.conf")
        #expect(paths.identFile == "/etc/postgresql/16/hearth/pg_ident.conf")
        #expect(paths.settingsFile == "/etc/postgresql/16/hearth/conf.d/hearthminds.conf")
        #expect(paths.systemdUnit == "postgresql@16-hearth.service")
    }

    @Test("configuration lines are read as postgresql-common reads them")
    func confLines() {
        #expect(ConfLine.parse("port = 5433") == .setting("port", "5433"))
        #expect(ConfLine.parse("  Port=5434   # moved") == .setting("Port", "5434"))
        #expect(ConfLine.parse("port 5435") == .setting("port", "5435"))
        #expect(ConfLine.parse("data_directory = '/var/lib/postgresql/15/main'  # use data in another directory")
            == .setting("data_directory", "/var/lib/postgresql/15/main"))
        #expect(ConfLine.parse("x = 'a''b\\'c'  # escapes") == .setting("x", "a'b'c"))
        #expect(ConfLine.parse("shared_buffers = -1") == .setting("shared_buffers", "-1"))
        #expect(ConfLine.parse("include_dir 'conf.d'") == .include("conf.d", directory: true))
        #expect(ConfLine.parse("include_if_exists = '/etc/x.conf' # c") == .include("/etc/x.conf", directory: false))
        #expect(ConfLine.parse("include='y.conf'") == .include("y.conf", directory: false))
        for skipped in ["", "   ", "# port = 1", "\t# x", "port = 'open", "port = a b", "= 5", "port = 'x' y", "root:$6$x:0:0::"] {
            #expect(ConfLine.parse(Substring(skipped)) == nil, "\(skipped)")
        }
    }

    @Test("pg_lsclusters output is read (the log file of a failed start)")
    func lsclusters() throws {
        let clusters = try DebianClusters.parse(
            """
            15  main         5432  down            postgres /var/lib/postgresql/15/main  /var/log/postgresql/postgresql-15-main.log
            13  old          5433  online,recovery postgres /srv/pg/13/old               /var/log/postgresql/postgresql-13-old.log

            """)
        #expect(clusters.map(\.id) == ["15/main", "13/old"])
        #expect(clusters.map(\.port) == [5432, 5433] && clusters.map(\.online) == [false, true])
        #expect(clusters.map(\.owner) == ["postgres", "postgres"])
        #expect(clusters.map(\.dataDirectory) == ["/var/lib/postgresql/15/main", "/srv/pg/13/old"])
        #expect(
            clusters.map(\.logFile) == [
                "/var/log/postgresql/postgresql-15-main.log", "/var/log/postgresql/postgresql-13-old.log",
            ])
        expectFailure(.error) { try DebianClusters.parse("Ver Cluster Port\n") }
    }

    @Test("a failed start shows the cluster's log from its last start")
    func lastStartLines() {
        let log = """
            2026-11-26 23:20:01 UTC [90] LOG:  starting PostgreSQL 15.20 on x86_64-pc-linux-gnu
            2026-11-26 23:20:01 UTC [90] LOG:  database system is ready to accept connections
            2026-11-26 23:26:25 UTC [141] LOG:  starting PostgreSQL 15.20 on x86_64-pc-linux-gnu
            2026-11-26 23:26:25 UTC [141] LOG:  could not bind IPv4 address "127.0.0.1": Address already in use
            2026-11-26 23:26:25 UTC [141] FATAL:  could not create any TCP/IP sockets
            pg_ctl: could not start server
            Examine the log output.

            """
        let lines = PostgresStep.lastStartLines(log)
        #expect(lines.count == 5)
        #expect(lines.first?.contains("[141] LOG:  starting") == true && lines[1].contains("Address already in use"))
        let long = (1...30).map { "line \($0)" }.joined(separator: "\n")
        #expect(PostgresStep.lastStartLines(long) == (19...30).map { Substring("line \($0)") })
    }

    @Test("postmaster.pid is read")
    func postmasterPid() {
        let status = PostmasterStatus.parse(
            "4242\n/var/lib/postgresql/15/main\n1764172800\n5433\n/var/run/postgresql\n127.0.0.1\n  1234567     98304\nready   \n")
        #expect(
            status
                == PostmasterStatus(
                    pid: 4242, dataDirectory: "/var/lib/postgresql/15/main", port: 5433,
                    socketDirectory: "/var/run/postgresql", listenAddress: "127.0.0.1", state: "ready"))
        #expect(PostmasterStatus.parse("garbage") == nil)
    }

    @Test("a pid file's process is a server only when its executable is a PostgreSQL server binary (a stale file's pid reused after a reboot, even by hm-postgres or su - postgres, is not)")
    func postmasterProcess() {
        #expect(PostmasterStatus.isServerExecutable("/usr/lib/postgresql/15/bin/postgres"))
        #expect(PostmasterStatus.isServerExecutable("/usr/lib/postgresql/15/bin/postgres (deleted)"))
        #expect(!PostmasterStatus.isServerExecutable("/root/hearthminds-bootstrap/bootstrap/bin/hearthminds"))
        #expect(!PostmasterStatus.isServerExecutable("/usr/bin/sleep"))
        #expect(!PostmasterStatus.isServerExecutable("/usr/lib/postgresql/15/bin/postgres-helper"))
        #expect(!PostmasterStatus.isServerExecutable("/usr/lib/postgresql/x/bin/postgres"))
        #expect(!PostmasterStatus.isServerExecutable("/tmp/usr/lib/postgresql/15/bin/postgres"))
        // This test process is no server.
        #expect(!PostmasterStatus.isPostgres(getpid()))
    }

    @Test("an address of this host binds; one it does not have does not; wildcards are recognised")
    func addresses() {
        #expect(HostAddresses.locality("127.0.0.1") == .local)
        #expect(HostAddresses.locality("localhost") == .local)
        // TEST-NET-3 (RFC 5737): no host has it.
        #expect(HostAddresses.locality("203.0.113.77") == .notLocal)
        #expect(HostAddresses.locality("2001:db8::77") != .local)
        #expect(HostAddresses.isWildcard("0.0.0.0") && HostAddresses.isWildcard("::"))
        #expect(!HostAddresses.isWildcard("127.0.0.1"))
        expectFailure(.hostWrong) { try PostgresStep.requireLocalAddress("203.0.113.77") }
        expectFailure(.hostWrong) { try PostgresStep.requireLocalAddress("0.0.0.0") }
        #expect(throws: Never.self) { try PostgresStep.requireLocalAddress("127.0.0.1") }
    }
}
