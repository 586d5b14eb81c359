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
/// `service-user`: the system account HEARTHMINDS_SERVICE_USER — a system uid, its own group,
/// its home under /var/lib, no login shell, and our mark (its comment) — which owns
/// HEARTHMINDS_DB and logs in by peer.
///
/// What exists already is never adopted silently: an account of that name without our mark, or
/// a home that exists and is not the account's (or is a link), is a false result naming it and
/// what the operator can do.
public enum ServiceUserStep {
    public static let name = StepName.serviceUser
    public static let shell = "/usr/sbin/nologin"
    public static let homeMode: UInt32 = 0o750

    public static func make(_ config: HearthConfig) -> Step {
        let user = config.serviceUser
        let home = config.serviceHome
        let uidMax = SystemAccount.systemUIDMax()

        func account() throws -> SystemAccount {
            guard let account = SystemAccount.lookup(user) else { throw Failure("no user \(user)", needs: name) }
            return account
        }

        let marked = MarkedAccount(user: user, mark: ServiceAccount.mark, home: home, shell: shell)
        // A uid cannot be changed safely under a running system, and an account someone else
        // made is not ours to take over: both are the operator's to resolve.
        let ours = marked.actions(
            ours: "has a system uid (at most \(uidMax)) and our mark ('\(ServiceAccount.mark)')",
            requireOurs: { try ServiceAccount.requireOurs($0, uidMax: uidMax, key: "HEARTHMINDS_SERVICE_USER") })
        return Step(name, ours + [
            Action(
                "system user \(user) exists",
                check: { SystemAccount.lookup(user) != nil },
                apply: { try await marked.add() }),
            Action(
                "user \(user): group \(user), home \(home), shell \(shell)",
                check: { marked.matches(try account()) },
                apply: { try await marked.modify() }),
            Action(
                "home \(home) owned by \(user), mode 0750",
                check: {
                    let found = try account()
                    let (parentPath, name) = try OpenDirectory.split(home)
                    guard let parent = try OpenDirectory.openIfPresent(parentPath),
                        let status = try parent.entry(name)
                    else { return false }
                    try requireAdoptable(status, home: home, account: found)
                    return status.gid == found.gid && status.mode == homeMode
                },
                apply: {
                    let found = try account()
                    let (parentPath, name) = try OpenDirectory.split(home)
                    let parent = try OpenDirectory.makePath(parentPath, mode: 0o755)
                    if let status = try parent.entry(name) {
                        try requireAdoptable(status, home: home, account: found)
                        // On its descriptor, and only while it is still the account's.
                        try parent.setOwner(name, uid: found.uid, gid: found.gid, mode: homeMode, owner: found.uid)
                    } else {
                        _ = try parent.makeDirectory(name, mode: homeMode, uid: found.uid, gid: found.gid)
                    }
                }),
        ])
    }

    /// A home that exists is the account's only when it is a real directory the account owns.
    static func requireAdoptable(_ status: OpenDirectory.Entry, home: String, account: SystemAccount) throws {
        switch status.kind {
        case .directory: break
        case .symlink:
            throw Failure.hostWrong(
                "HEARTHMINDS_SERVICE_HOME \(home) is a symbolic link: not followed, not adopted; remove it (or choose "
                    + "another HEARTHMINDS_SERVICE_HOME) and rerun")
        default:
            throw Failure.hostWrong(
                "HEARTHMINDS_SERVICE_HOME \(home) exists and is not a directory: not adopted; remove it (or choose "
                    + "another HEARTHMINDS_SERVICE_HOME) and rerun")
        }
        guard status.uid == account.uid else {
            throw Failure.hostWrong(
                "HEARTHMINDS_SERVICE_HOME \(home) exists and is owned by \(OpenDirectory.userName(status.uid)), not by "
                    + "\(account.name): a directory that is not the account's is not adopted; if it is the service "
                    + "account's home, chown it to \(account.name) (chown \(account.name): \(home)), else choose another "
                    + "HEARTHMINDS_SERVICE_HOME, and rerun")
        }
    }
}

// The step declared once (its line in CommandDefinitions.all; its command StepCommand<ServiceUserStep>).
extension ServiceUserStep: StepDefinition {
    public static let abstract = "create the service's system account (HEARTHMINDS_SERVICE_USER)"
    public static let discussion = """
        A system user with its own group, its home under /var/lib and no login shell, marked \
        by its comment 'HearthMinds service account'. It owns HEARTHMINDS_DB and logs in to \
        PostgreSQL by peer authentication. An existing account without the mark, or an \
        existing home it does not own, is a false result, never adopted.
        """

    public static func build(_ context: StepContext, flags: NoStepFlags) throws -> Step {
        ServiceUserStep.make(context.config)
    }
}
