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
#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

/// hm-reset: a tool, not a step (bootstrap/steps does not list it). install.sh runs it only with
/// --reset, before the steps and in the same run (its lines in the same log run); by hand it is
/// `hm-reset`. It is built as the runner's Step (ResetStep: actions with checks), which is how
/// `--dry-run` lists what it would destroy.
public struct ResetCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "hm-reset",
        abstract: "destroy what the HearthMinds bootstrap made, for a clean rebuild",
        discussion: """
            Drops HEARTHMINDS_DB and every AI database (DROP DATABASE ... WITH (FORCE)), the manager, \
            service and AI roles (never postgres or POSTGRES_ADMIN_USER), and the client files \
            (/etc/hearthminds/pg_service.conf, /etc/hearthminds/pgpass/); with --cluster the whole \
            cluster PG_VERSION/PG_CLUSTER_NAME instead of its databases and roles; with \
            --service-user the system account, its group and its home, each only when it is ours \
            (the account marked 'HearthMinds service account', its home under /var/lib). It lists \
            what exists and would be destroyed, then acts only with --yes, or when on a terminal the cluster name \
            or "yes" is typed. Databases, roles and clusters that are not ours are never touched; \
            a role of ours that still owns something elsewhere stops the reset before any change. \
            Rebuild with: sudo ./install.sh (or install.sh --reset --yes, which does both). \
            Exit status: 0 every action true, 1 a false result, 64 bad usage or configuration, \
            or not confirmed (nothing changed), 75 another run holds the lock \
            (/run/hearthminds/bootstrap.lock).
            """)

    @OptionGroup var options: StepOptions

    @Flag(name: .long, help: "Confirm: destroy without asking.")
    var yes = false

    @Flag(name: .long, help: "Drop the whole cluster PG_VERSION/PG_CLUSTER_NAME (pg_dropcluster --stop), every database in it.")
    var cluster = false

    @Flag(name: .long, help: "Remove the system account HEARTHMINDS_SERVICE_USER, its group and its home too.")
    var serviceUser = false

    public init() {}

    public func run() async throws {
        throw ExitCode(
            await ResetMain.run(options, yes: yes, scope: ResetScope(cluster: cluster, serviceUser: serviceUser)))
    }
}

/// The body of hm-reset: load the configuration (64 on any error), take the run lock (75 when
/// another run holds it), list what exists and would be destroyed, then a dry run (checks only)
/// or — confirmed — the reset step.
public enum ResetMain {
    public static func run(_ options: StepOptions, yes: Bool, scope: ResetScope) async -> Int32 {
        let environment = currentEnvironment()
        let context: StepContext
        switch StepMain.start(ResetStep.name, options, environment: environment) {
        case .ready(let made): context = made
        case .exit(let status): return status
        }
        let (config, console) = (context.config, context.console)

        let plan = ResetStep.plan(context, scope: scope, debianCluster: ClusterPaths(config))
        let lines = await plan.inventory()
        let cluster = "\(config.pgVersion)/\(config.clusterName)"
        var what: [String] = []
        if scope.cluster { what.append("the whole cluster \(cluster)") } else {
            what.append("databases and roles of cluster \(cluster) (port \(config.port))")
        }
        what.append("client files")
        if scope.serviceUser { what.append("the service account") }
        if lines.isEmpty {
            console.out("hm-reset: nothing of ours is left to destroy (\(what.joined(separator: ", ")))")
        } else {
            console.out("hm-reset will destroy (\(what.joined(separator: ", "))):")
            for line in lines { console.out("  - \(line)") }
        }
        if let backup = config.backup {
            console.out("hm-reset keeps: " + (await RetiredStanza.keptLine(backup, cluster: scope.cluster)))
        }

        if !options.dryRun {
            let decision = ResetConfirmation.decide(
                yes: yes, isTerminal: isatty(0) == 1, clusterName: config.clusterName,
                readAnswer: {
                    Console.write("Type yes (or the cluster name, \(config.clusterName)) to destroy this: ", to: STDOUT_FILENO)
                    return readLine(strippingNewline: true)
                })
            if case .refused(let reason) = decision {
                console.err("hm-reset: \(reason)")
                return ExitStatus.usage
            }
        }

        return await StepMain.execute(
            plan.step, name: ResetStep.name, context: context, dryRun: options.dryRun, environment: environment)
    }
}

/// How hm-reset is confirmed: `--yes`, or on a terminal the cluster name or "yes" typed in.
public enum ResetConfirmation {
    public enum Decision: Equatable, Sendable {
        case confirmed
        /// Exit 64 with this reason; nothing changed.
        case refused(String)
    }

    /// The words that confirm on a terminal.
    public static func accepts(_ answer: String, clusterName: String) -> Bool {
        let typed = trimmed(answer)
        return typed == "yes" || typed == clusterName
    }

    /// Without surrounding blanks and line ends.
    static func trimmed(_ text: String) -> String { text.trimmingCharacters(in: " \t\r\n") }

    /// `readAnswer` is called only when stdin is a terminal and there is no `--yes`.
    public static func decide(
        yes: Bool, isTerminal: Bool, clusterName: String, readAnswer: () -> String?
    ) -> Decision {
        if yes { return .confirmed }
        guard isTerminal else {
            return .refused(
                "refusing to destroy anything without --yes (standard input is not a terminal to confirm on); "
                    + "nothing was changed")
        }
        guard let answer = readAnswer() else { return .refused("no answer; nothing was changed") }
        guard accepts(answer, clusterName: clusterName) else {
            return .refused("not confirmed (typed '\(trimmed(answer))'); nothing was changed")
        }
        return .confirmed
    }
}
