import ArgumentParser

// The command of each step: its flags, help and exit codes. One executable serves them all
// (MultiCall): `bootstrap/bin/hm-<step>` is a hard link to it, and the name it is run by picks
// the command. A step's one-line description is its line in bootstrap/steps, which install.sh
// shows: its `abstract` is that line, word for word (MultiCallTests holds them together).

public struct ServiceUserCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-service-user",
        abstract: "create the service's system account (HEARTHMINDS_SERVICE_USER)",
        discussion: """
            A system user with its own group, its home under /var/lib and no login shell, marked \
            by its comment 'HearthMinds service account'. It owns HEARTHMINDS_DB and logs in to \
            PostgreSQL by peer authentication. An existing account without the mark, or an \
            existing home it does not own, is a false result, never adopted. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    public init() {}

    public func run() async throws {
        throw ExitCode(await StepMain.run(ServiceUserStep.name, options) { ServiceUserStep.make($0) })
    }
}

public struct PostgresCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-postgres",
        abstract: "install PostgreSQL and run the cluster with our settings",
        discussion: """
            Installs postgresql-<PG_VERSION> and its client with apt-get when missing (postgresql-common \
            is told to create no cluster of its own), creates the cluster with pg_createcluster (UTF-8, \
            POSTGRES_PORT), writes our settings to its conf.d/hearthminds.conf (listen_addresses from \
            POSTGRES_HOST, port, password_encryption = scram-sha-256, and memory, parallelism, costs, \
            WAL and checkpoints sized to the machine's RAM and cores unless PG_TUNE=false; each \
            overridable by its key, PG_SHARED_BUFFERS and the others), starts it (restarting or reloading \
            when a setting changed) and checks that it answers as PostgreSQL PG_VERSION. A cluster of that \
            name of another version, or another cluster on POSTGRES_PORT, is a false result. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    public init() {}

    public func run() async throws {
        throw ExitCode(await StepMain.run(PostgresStep.name, options) { PostgresStep.make($0) })
    }
}

public struct PgHbaCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-pg-hba",
        abstract: "write pg_hba.conf and pg_ident.conf: peer and scram-sha-256, no trust",
        discussion: """
            Renders etc/pg_hba.conf.template and etc/pg_ident.conf.template with the configuration and \
            writes them whole over the cluster's files: peer for postgres and root (as the admin roles, \
            through the map hearthminds_admin), peer for HEARTHMINDS_SERVICE_USER to HEARTHMINDS_DB, \
            scram-sha-256 for password roles over the socket and over TCP from loopback, POSTGRES_HOST and \
            PG_ALLOWED_NETWORKS. Reloads the server and checks pg_hba_file_rules. Hand edits are replaced. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    public init() {}

    public func run() async throws {
        throw ExitCode(await StepMain.run(PgHbaStep.name, options) { try PgHbaStep.make($0) })
    }
}

public struct PgvectorCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-pgvector",
        abstract: "install pgvector into PostgreSQL and prove CREATE EXTENSION vector on the cluster",
        discussion: """
            Debian 12 has no pgvector package. PGVECTOR_INSTALL_METHOD=auto tries, in order: \
            apt (postgresql-<PG_VERSION>-pgvector, when the host's apt sources offer it), \
            shipped (the release tarball's packages/postgresql-<PG_VERSION>-pgvector_*_<arch>.deb, \
            installed by apt-get from the file), debian-source (Debian's pgvector source package of \
            PGVECTOR_DEBIAN_SUITE, fetched from the host's own Debian mirror through a temporary apt \
            configuration and checked by apt against the archive's signed index), then tarball \
            (PGVECTOR_SOURCE, a path or URL, which must match PGVECTOR_SHA256; only when set). \
            Sources are built portably against /usr/lib/postgresql/<PG_VERSION>/bin/pg_config, and \
            the packages installed for the build are removed again afterwards: no compiler stays. \
            The install action says which method ran and why. Then the cluster on POSTGRES_PORT \
            (socket /var/run/postgresql, peer as postgres) must offer vector at the installed \
            version and CREATE EXTENSION vector must work (in a transaction that is rolled back); \
            vector in each of our databases at an older version is updated (ALTER EXTENSION vector \
            UPDATE, as its owner, the script away from the tenant's public schema). \
            A host where pgvector is installed downloads and builds nothing. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    @Flag(name: .long, help: """
        Install the extension's files only and skip the cluster checks \
        (build and test hosts; `make setup` uses it).
        """)
    var installOnly = false

    public init() {}

    public func run() async throws {
        let installOnly = installOnly
        throw ExitCode(
            await StepMain.run(PgvectorStep.name, options) { PgvectorStep.make($0, installOnly: installOnly) })
    }
}

public struct DatabasesCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-databases",
        abstract: "create the roles, databases, extensions and grants; write the client files",
        discussion: """
            Roles: HEARTHMINDS_USER (superuser, password, member of pg_monitor), \
            HEARTHMINDS_SERVICE_USER (login by peer only), one per AI name (login, password), and \
            POSTGRES_ADMIN_USER's password. Databases: HEARTHMINDS_DB owned by the service account, \
            <name><AI_DB_SUFFIX> owned by each AI, AI_DEFAULT_EXTENSIONS in each (owned by the \
            manager); CONNECT revoked from PUBLIC; every AI and the manager connect to and read \
            HEARTHMINDS_DB. Writes pg_service.conf and password files under /etc/hearthminds. \
            Databases of AI names no longer configured are reported, never dropped. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    public init() {}

    public func run() async throws {
        throw ExitCode(await StepMain.run(DatabasesStep.name, options) { DatabasesStep.make($0) })
    }
}

public struct MigrationsCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-migrations",
        abstract: "bring every database to the head revision of Migrations/",
        discussion: """
            The install.sh step `migrations`: `hm-migrate up` on each database, one action per \
            database (check: at head and no applied revision's files changed). \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    public init() {}

    public func run() async throws {
        throw ExitCode(await StepMain.run(MigrationsStep.name, options) { MigrationsStep.make($0) })
    }
}

public struct VectorIndexCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-vector-index",
        abstract: "train each database's IVFFlat index on its rows (when grown), set its probes",
        discussion: """
            The install.sh step `vector-index`, after `migrations`. Per database: the IVFFlat index \
            on memory_shards.embedding is rebuilt (REINDEX INDEX CONCURRENTLY, as the database's \
            owner) once the table holds at least twice the rows it was trained on, with \
            PGVECTOR_IVFFLAT_LISTS lists (auto: rows / 1000 up to a million rows, sqrt(rows) beyond); \
            ivfflat.probes (PGVECTOR_IVFFLAT_PROBES; auto: the square root of the lists, rounded up), \
            or hnsw.ef_search with PGVECTOR_INDEX=hnsw, is set for the database; the suite's \
            tables whose rows changed beyond PG_ANALYZE_FRACTION (+50) since their last ANALYZE \
            are analyzed, as the owner. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    public init() {}

    public func run() async throws {
        throw ExitCode(await StepMain.run(VectorIndexStep.name, options) { VectorIndexStep.make($0) })
    }
}

public struct BackupCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-backup",
        abstract: "keep the memories elsewhere: WAL archiving and scheduled backups with pgBackRest",
        discussion: """
            With BACKUP=on (the default): installs pgbackrest, makes the repository BACKUP_REPO_PATH \
            (the postgres account's, 0750; a link, another owner's or a writable one is refused), writes \
            the stanza's configuration to /etc/pgbackrest/hearthminds/<BACKUP_STANZA>/pgbackrest.conf, creates \
            the stanza, checks that WAL archiving works (the postgres step sets archive_command and \
            archive_timeout = BACKUP_LOSS_WINDOW), takes a first full backup, takes a differential one \
            when the newest is older than BACKUP_MAX_AGE hours, and enables the systemd timers of the \
            schedule (BACKUP_FULL_CALENDAR, BACKUP_DIFF_CALENDAR, BACKUP_TEST_RESTORE_CALENDAR). \
            With --test-restore: restores the newest backup into a throwaway cluster on another port, \
            checks it as verify does and counts every AI database's rows against the live ones, logs \
            the result and drops the throwaway cluster. BACKUP=off: nothing, with a warning. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    @Flag(help: "Prove the newest backup: restore it into a throwaway cluster and check it.")
    var testRestore = false

    @Flag(help: "Only write the backup metrics (hearthminds_backup_<stanza>.prom): the timers' units run it after each backup.")
    var writeMetrics = false

    public init() {}

    public func run() async throws {
        let (testRestore, writeMetrics) = (testRestore, writeMetrics)
        if testRestore && writeMetrics { throw ValidationError("--test-restore and --write-metrics exclude each other") }
        throw ExitCode(
            await StepMain.run(BackupStep.name, options) {
                if writeMetrics { return try BackupStep.metricsOnly($0) }
                return testRestore ? try BackupTestRestore.make($0) : BackupStep.make($0)
            })
    }
}

public struct VerifyCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-verify",
        abstract: "check the whole host, read-only",
        discussion: """
            The service user; the cluster online at the configured version and port; pg_hba.conf \
            parses with no trust/md5; the service user logs in by peer to HEARTHMINDS_DB; the manager \
            and each AI log in with their passwords over TCP to their databases and HEARTHMINDS_DB, \
            and each AI is refused by the other AIs' databases; the extensions in every database. \
            Changes nothing (--dry-run is the same run). \
            Exit status: 0 every check true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    public init() {}

    public func run() async throws {
        throw ExitCode(await StepMain.run(VerifyStep.name, options) { VerifyStep.make($0) })
    }
}

public struct MonitoringCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-monitoring",
        abstract: "install and run the Prometheus exporters: the server, every AI's memory, every run",
        discussion: """
            The install.sh step `monitoring`, after `vector-index`. Debian's prometheus-postgres-exporter \
            runs (its systemd unit, with our drop-in) as MONITORING_USER, a system account with no shell and \
            no password that logs in by peer to the role of the same name (pg_monitor only; the databases \
            step makes it), on POSTGRES_EXPORTER_ADDRESS (loopback 127.0.0.1:9187 by default; beyond \
            loopback only with the TLS pair), with our custom queries (/etc/hearthminds/monitoring/): each \
            AI's tables, vector index, connections and top statements (pg_stat_statements, created in the \
            postgres database). Debian's prometheus-node-exporter (loopback :9100) serves the textfile \
            metrics every step writes to NODE_EXPORTER_TEXTFILE_DIR, and this step's hearthminds_schema.prom \
            (each database's revision and checksums). Units enabled and started where systemd runs; without \
            systemd they are configured, not started. \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            75 another run holds the lock (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    public init() {}

    public func run() async throws {
        throw ExitCode(await StepMain.run(MonitoringStep.name, options) { MonitoringStep.make($0) })
    }
}
