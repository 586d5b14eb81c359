import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import HearthKit
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
import ArgumentParser

/// `hm-migrate`: the migration tool. The subcommands live here; MigrateCommand (below) is the
/// command that lists them, run as hm-migrate (MultiCall).
public enum MigrateCLI {
    public static let configuration = CommandConfiguration(
        commandName: "hm-migrate",
        abstract: "run the SQL revisions in Migrations/ on the HearthMinds databases",
        discussion: """
            Revisions are Migrations/<id>_<slug>.up.sql and .down.sql, applied in id order, each \
            in one transaction as the database's owner, with its state change (alembic_version, as \
            Alembic keeps it, and hearthminds_migration_history). Works on HEARTHMINDS_DB and every \
            AI database unless --database names one, always as the database's owner: the service \
            account by peer authentication, an AI with its password (configured, or kept in \
            /etc/hearthminds/pgpass/) over loopback; postgres (peer, over /var/run/postgresql and \
            POSTGRES_PORT) only reads the catalogs and creates a missing extension (run as root). \
            Exit status: 0 done, 1 a failure (the message names the database, file and statement), \
            64 bad usage or configuration.
            """,
        subcommands: [
            MigrateUp.self, MigrateDown.self, MigrateStamp.self, MigrateCurrent.self, MigrateHistory.self,
            MigrateNew.self, MigrateCheck.self,
        ])
}

/// The options every database subcommand takes.
public struct MigrateOptions: ParsableArguments, Sendable {
    @OptionGroup public var step: StepOptions

    @Option(name: .long, help: ArgumentHelp(
        "Work on this database only (default: HEARTHMINDS_DB and every AI database).", valueName: "NAME"))
    public var database: String?

    @Option(name: .long, help: ArgumentHelp(
        "The revisions directory (default: Migrations/ of the shipped tree).", valueName: "DIR"))
    public var migrations: String?

    @Option(name: .long, help: ArgumentHelp(
        "At most N databases side by side for up, down and stamp (default: twice the cores, at most 8, "
            + "bounded by the server's free connections); 1: one after another. HEARTHMINDS_DB always goes "
            + "first, alone.", valueName: "N"))
    public var jobs: Int?

    @Option(name: .customLong("socket-dir"), help: ArgumentHelp(
        "PostgreSQL socket directory (tests).", valueName: "DIR", visibility: .hidden))
    public var socketDirectory: String = PGTarget.debianSocketDirectory

    public init() {}

    /// What the arguments alone show (exit 64 before anything runs).
    public func validate() throws {
        if let database, database.isEmpty || database.utf8.count > ConfigValues.maxIdentifierBytes || database.contains("\0") {
            throw ValidationError("--database '\(database)' is not a database name")
        }
        if let jobs, jobs < 1 { throw ValidationError("--jobs must be 1 or more") }
    }

}

/// Configuration, revisions and targets of one invocation, from StepMain's pieces (the
/// configuration, the root check, the lock, the run id) and the steps' StepContext (the server
/// over this invocation's socket directory, the credentials, the width, the console, the log);
/// errors are reported and turned into exit codes here.
struct MigrateContext {
    let config: HearthConfig
    let set: MigrationSet
    let databases: [String]
    let options: MigrateOptions
    let step: StepContext
    var console: Console { step.console }
    var log: JSONLog? { step.log }
    let runID: String
    let command: String

    init(_ options: MigrateOptions, command: String, logged: Bool = false) throws {
        self.options = options
        self.command = command
        let console = Console()
        let environment = currentEnvironment()
        guard let config = StepMain.configuration("migrate \(command)", options.step, environment: environment, console: console)
        else { throw ExitCode(ExitStatus.usage) }
        self.config = config
        databases = options.database.map { [$0] } ?? config.databases
        guard let directory = options.migrations ?? MigrationSet.defaultDirectory(environment: environment) else {
            console.err("hm-migrate \(command): no Migrations/ directory found beside the executable; use --migrations DIR")
            throw ExitCode(ExitStatus.usage)
        }
        do {
            set = try MigrationSet.load(directory: directory, config: config)
        } catch {
            console.err("hm-migrate \(command): \(error)")
            throw ExitCode(ExitStatus.failed)
        }
        var log: JSONLog?
        if logged && !options.step.dryRun && SystemAccount.isRoot {
            do { log = try JSONLog(path: config.logPath) } catch {
                console.err("hm-migrate \(command): warning: no log: \(error)")
            }
        }
        step = StepContext(
            config, socketDirectory: options.socketDirectory, migrations: directory, jobs: options.jobs, console: console,
            log: log)
        runID = StepMain.runID(environment: environment)
    }

    /// Runs `body` on each database with its own connection (its owner's), in order; or, with
    /// `parallel`, the first database alone (HEARTHMINDS_DB: when it fails no AI database is
    /// touched), then the others side by side (`--jobs`). The first failure starts no further
    /// database (those running finish) and ends the run with exit 1.
    func each(_ what: String, parallel: Bool = false, _ body: @escaping (String, Migrator) throws -> String?) throws {
        // Root: it connects as postgres by peer authentication.
        guard StepMain.requireRoot("migrate \(command)", console: console) else { throw ExitCode(ExitStatus.usage) }
        if let status = StepMain.lock("migrate \(command)", environment: currentEnvironment(), console: console) {
            throw ExitCode(status)
        }
        let (credentials, server) = (step.credentials, step.server)
        let owners = DatabaseSpec.owners(config)
        let console = console
        let set = set
        /// One database; false when it failed (said and logged).
        let one = { (database: String) -> Bool in
            let started = Clock.nowMs()
            do {
                let migrator = try Migrator(
                    set: set, database: database, server: server, credentials: credentials,
                    expected: owners[database], progress: { console.out("  " + $0) })
                let detail = try body(database, migrator)
                record(what, database, true, detail ?? "", started)
                return true
            } catch {
                let text = Bounded.text("\(error)")
                console.err("hm-migrate: \(text)")
                record(what, database, false, text, started)
                return false
            }
        }
        // A run that could not write its log is not true (JSONLog.write said so on standard error).
        defer { if let failure = log?.failure { console.err("hm-migrate \(command): FAILED: \(failure)") } }
        guard let first = databases.first else { return }
        guard one(first) else { throw ExitCode(ExitStatus.failed) }
        let rest = Array(databases.dropFirst())
        let width = parallel && rest.count > 1 ? step.width(perWorker: 2)() : 1
        let failed = Mutex()
        var failures = 0
        Workers.run(count: rest.count, width: width) { i in
            if one(rest[i]) { return true }
            failed.locked { failures += 1 }
            return false
        }
        if failures > 0 || log?.failure != nil { throw ExitCode(ExitStatus.failed) }
    }

    private func record(_ what: String, _ database: String, _ result: Bool, _ detail: String, _ started: Double) {
        log?.write(
            LogRecord(
                time: Clock.timestamp(), run: runID, step: "migrate", action: "\(what) on \(database)", result: result,
                changed: result && !detail.isEmpty, ms: Clock.nowMs() - started, detail: detail, dryRun: false))
    }

    func describe(_ plan: Migrator.Plan, _ database: String) -> String {
        if plan.moves.isEmpty { return "\(database): at \(plan.from ?? "base"), nothing to do" }
        let files = plan.moves.map(\.sql.file).joined(separator: ", ")
        return "\(database): \(plan.from ?? "base") -> \(plan.to ?? "base"): \(files)"
    }
}

public struct MigrateUp: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "up", abstract: "Apply revisions up to head (or --to REV).")

    @OptionGroup var options: MigrateOptions
    @Option(name: .long, help: ArgumentHelp("Target revision (an id or head).", valueName: "REV"))
    var to: String = "head"
    @Flag(name: .long, help: "Print the SQL that would run; change nothing.")
    var sql = false

    public init() {}

    public func run() throws {
        let context = try MigrateContext(options, command: "up", logged: !sql)
        try context.each("up to \(to)", parallel: !sql && !options.step.dryRun) { database, migrator in
            if sql {
                print(try migrator.script(try migrator.planUp(to: to)))
                return nil
            }
            if options.step.dryRun {
                context.console.out("would run: " + context.describe(try migrator.planUp(to: to), database))
                return nil
            }
            // Where the plan, made under the lock, ends: no further read of the state.
            let (plan, done) = try migrator.withLock { () throws -> (Migrator.Plan, [Migrator.Done]) in
                let plan = try migrator.planUp(to: to)
                return (plan, try migrator.run(plan))
            }
            context.console.out(
                "\(database): at \(plan.to ?? "base")" + (plan.to == context.set.head ? " (head)" : "")
                    + (done.isEmpty ? ", nothing to do" : ", \(done.count) revision(s) applied in "
                        + "\(JSON.number(done.map(\.ms).reduce(0, +))) ms"))
            return done.isEmpty ? nil : "applied " + done.map(\.move.revision.id).joined(separator: ",")
        }
    }
}

public struct MigrateDown: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "down", abstract: "Undo revisions: one by default, --steps N, or down to --to REV (base: all).")

    @OptionGroup var options: MigrateOptions
    @Option(name: .long, help: ArgumentHelp("Target revision (an id or base).", valueName: "REV"))
    var to: String?
    @Option(name: .long, help: ArgumentHelp("How many revisions to undo (default 1).", valueName: "N"))
    var steps: Int?
    @Flag(name: .long, help: "Print the SQL that would run; change nothing.")
    var sql = false

    public init() {}

    public func validate() throws {
        if to != nil && steps != nil { throw ValidationError("give --to or --steps, not both") }
        if let steps, steps < 0 { throw ValidationError("--steps must be 0 or more") }
    }

    public func run() throws {
        let context = try MigrateContext(options, command: "down", logged: !sql)
        try context.each(to.map { "down to \($0)" } ?? "down \(steps ?? 1) step(s)", parallel: !sql && !options.step.dryRun) {
            database, migrator in
            if sql {
                print(try migrator.script(try migrator.planDown(to: to, steps: steps)))
                return nil
            }
            if options.step.dryRun {
                context.console.out("would run: " + context.describe(try migrator.planDown(to: to, steps: steps), database))
                return nil
            }
            let done = try migrator.downgrade(to: to, steps: steps)
            context.console.out(
                "\(database): at \(try migrator.currentRevision() ?? "base")"
                    + (done.isEmpty ? ", nothing to do" : ", \(done.count) revision(s) undone"))
            return done.isEmpty ? nil : "undid " + done.map(\.move.revision.id).joined(separator: ",")
        }
    }
}

public struct MigrateStamp: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "stamp",
        abstract: "Record REV as the current revision without running anything.",
        discussion: """
            For a database whose tables exist but which has no state (the seed's troubleshooting \
            case): `hm-migrate stamp 0001`, then `hm-migrate up`. Also records the checksums of the \
            files at or below REV, e.g. after a deliberate change of a templated value.
            """)

    @OptionGroup var options: MigrateOptions
    @Argument(help: ArgumentHelp("The revision (an id, head or base).", valueName: "REV"))
    var revision: String

    public init() {}

    public func run() throws {
        let context = try MigrateContext(options, command: "stamp", logged: true)
        try context.each("stamp \(revision)", parallel: !options.step.dryRun) { database, migrator in
            if options.step.dryRun {
                _ = try context.set.position(of: revision)
                context.console.out("would stamp \(database): \(try migrator.currentRevision() ?? "base") -> \(revision)")
                return nil
            }
            try migrator.stamp(revision)
            return "stamped \(revision)"
        }
    }
}

public struct MigrateCurrent: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "current", abstract: "Print each database's current revision.")

    @OptionGroup var options: MigrateOptions

    public init() {}

    public func run() throws {
        let context = try MigrateContext(options, command: "current")
        try context.each("current") { database, migrator in
            let status = try migrator.status()
            var line = "\(database): \(status.current ?? "base")"
            line += status.atHead ? " (head)" : " (head is \(status.head ?? "base"))"
            if !status.changed.isEmpty { line += "; files changed since applied: \(status.changed.joined(separator: ", "))" }
            print(line)
            return nil
        }
    }
}

public struct MigrateHistory: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "history",
        abstract: "Print the revision chain; with --applied, each database's recorded history.")

    @OptionGroup var options: MigrateOptions
    @Flag(name: .long, help: "Also print what each database recorded (hearthminds_migration_history).")
    var applied = false

    public init() {}

    public func run() throws {
        let context = try MigrateContext(options, command: "history")
        var parent = "base"
        for revision in context.set.revisions {
            let head = revision.id == context.set.head ? " (head)" : ""
            print("\(parent) -> \(revision.id)\(head), \(revision.slug)  sha256 \(revision.checksum.prefix(12))")
            parent = revision.id
        }
        guard applied else { return }
        try context.each("history") { database, migrator in
            print("\n\(database):")
            for row in try migrator.history() {
                print("  \(row.appliedAt)  \(row.direction.padded(5))  \(row.revision)  \(JSON.number(row.ms)) ms"
                    + (row.checksum.map { "  sha256 \($0.prefix(12))" } ?? ""))
            }
            return nil
        }
    }
}

public struct MigrateNew: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "new", abstract: "Make the next revision's empty up and down files (make migrate-rev m=\"...\").")

    @Argument(help: ArgumentHelp("What the revision does; it names the files.", valueName: "MESSAGE"))
    var message: String
    @Option(name: .long, help: ArgumentHelp(
        "The revisions directory (default: Migrations/ of the shipped tree).", valueName: "DIR"))
    var migrations: String?

    public init() {}

    public func run() throws {
        guard let directory = migrations ?? MigrationSet.defaultDirectory() else {
            Console().err("hm-migrate new: no Migrations/ directory found beside the executable; use --migrations DIR")
            throw ExitCode(ExitStatus.usage)
        }
        do {
            for path in try MigrationSet.newRevision(directory: directory, message: message) { print(path) }
        } catch {
            Console().err("hm-migrate new: \(error)")
            throw ExitCode(ExitStatus.failed)
        }
    }
}

public struct MigrateCheck: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Report applied revisions whose files changed since they ran (exit 1 if any).")

    @OptionGroup var options: MigrateOptions

    public init() {}

    public func run() throws {
        let context = try MigrateContext(options, command: "check")
        var changed = false
        try context.each("check") { database, migrator in
            let status = try migrator.status()
            for id in status.changed {
                let files = context.set.revision(id).map { "\($0.up.file), \($0.down.file)" } ?? id
                print("\(database): revision \(id) changed since it was applied (\(files))")
                changed = true
            }
            if !status.unrecorded.isEmpty {
                print("\(database): no checksum recorded for \(status.unrecorded.joined(separator: ", ")) "
                    + "(stamped, or applied by Alembic)")
            }
            if status.changed.isEmpty {
                print("\(database): \(status.current ?? "base"): applied files unchanged"
                    + (status.atHead ? "" : "; behind head \(status.head ?? "base")"))
            }
            return nil
        }
        if changed { throw ExitCode(ExitStatus.failed) }
    }
}

/// `hm-migrate` itself: the subcommands above.
public struct MigrateCommand: ParsableCommand {
    public static let configuration = MigrateCLI.configuration

    public init() {}
}
