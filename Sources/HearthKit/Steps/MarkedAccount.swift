import HearthPgvector
import HearthPostgres
import HearthClient
import HearthMigrations
import HearthMonitoring
import HearthBackup
import HearthRunner
import HearthSystem
/// A system account a step makes and marks: a system uid, a group of its own, a home, a shell
/// and our mark (its comment). The service-user step makes the service account, the monitoring
/// step the exporter's: both with the actions and commands here. An account of that name that
/// is there already is the step's only when `requireOurs` accepts it (never adopted silently).
public struct MarkedAccount: Sendable {
    public let user: String
    public let mark: String
    public let home: String
    public let shell: String
    /// Its password locked too (usermod --lock, checked in /etc/shadow): an account with none.
    public let lockPassword: Bool

    public init(user: String, mark: String, home: String, shell: String, lockPassword: Bool = false) {
        self.user = user
        self.mark = mark
        self.home = home
        self.shell = shell
        self.lockPassword = lockPassword
    }

    /// The first actions of each step that makes an account: "user X, if it exists, `ours`"
    /// (an account of that name must pass `requireOurs`; none is fine, it is made next), then
    /// its group.
    public func actions(ours: String, requireOurs: @escaping (SystemAccount) throws -> Void) -> [Action] {
        let user = user
        return [
            .assertion("user \(user), if it exists, \(ours)") {
                guard let found = SystemAccount.lookup(user) else { return true }
                try requireOurs(found)
                return true
            },
            Action(
                "group \(user) exists",
                check: { SystemAccount.groupID(user) != nil },
                apply: { try await Command.check(["groupadd", "--system", user]) }),
        ]
    }

    /// Makes the account (after its group): a system account of its group, with its home (not
    /// made), shell and mark.
    public func add() async throws {
        try await Command.check([
            "useradd", "--system", "--gid", user, "--home-dir", home, "--no-create-home", "--shell", shell,
            "--comment", mark, user,
        ])
    }

    /// Puts back its group, home and shell (and locks its password).
    public func modify() async throws {
        try await Command.check(
            ["usermod", "--gid", user, "--home", home, "--shell", shell] + (lockPassword ? ["--lock"] : []) + [user])
    }

    /// Whether `found` (this account) has its group, home and shell (and a locked password).
    public func matches(_ found: SystemAccount) -> Bool {
        found.gid == SystemAccount.groupID(user) && found.home == home && found.shell == shell
            && (!lockPassword || Self.passwordLocked(user))
    }

    /// True when the account's password is locked or unset in the shadow file (`!`, `*`):
    /// nobody logs in with one.
    static func passwordLocked(_ user: String) -> Bool {
        guard let shadow = try? FileSystem.readText("/etc/shadow") else { return false }
        for line in shadow.split(separator: "\n") {
            let fields = line.split(separator: ":", omittingEmptySubsequences: false)
            guard fields.count > 1, fields[0] == user else { continue }
            return fields[1].hasPrefix("!") || fields[1].hasPrefix("*")
        }
        return false
    }
}
