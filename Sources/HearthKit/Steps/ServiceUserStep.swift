/// `service-user`: the system account HEARTHMINDS_SERVICE_USER — a system uid, its own group,
/// its home under /var/lib, no login shell — which owns HEARTHMINDS_DB and logs in by peer.
public enum ServiceUserStep {
    public static let name = "service-user"
    public static let shell = "/usr/sbin/nologin"
    public static let homeMode: UInt32 = 0o750

    public static func make(_ config: HearthConfig) -> Step {
        let user = config.serviceUser
        let home = config.serviceHome
        let uidMax = SystemAccount.systemUIDMax()

        func account() throws -> SystemAccount {
            guard let account = SystemAccount.lookup(user) else { throw HearthError("no user \(user)") }
            return account
        }

        return Step(name, [
            Action(
                "group \(user) exists",
                check: { SystemAccount.groupID(user) != nil },
                apply: { try await Command.check(["groupadd", "--system", user]) }),
            Action(
                "system user \(user) exists",
                check: { SystemAccount.lookup(user) != nil },
                apply: {
                    try await Command.check([
                        "useradd", "--system", "--gid", user, "--home-dir", home, "--no-create-home",
                        "--shell", shell, "--comment", "HearthMinds service account", user,
                    ])
                }),
            // A uid cannot be changed safely under a running system: an ordinary user of
            // this name is the operator's to resolve.
            .assertion("user \(user) has a system uid (at most \(uidMax))") {
                let found = try account()
                guard found.uid <= uidMax else {
                    throw CheckFailed(
                        "\(user) has uid \(found.uid), an ordinary user's; remove it or choose another "
                            + "HEARTHMINDS_SERVICE_USER")
                }
                return true
            },
            Action(
                "user \(user): group \(user), home \(home), shell \(shell)",
                check: {
                    let found = try account()
                    return found.gid == SystemAccount.groupID(user) && found.home == home && found.shell == shell
                },
                apply: {
                    try await Command.check(["usermod", "--gid", user, "--home", home, "--shell", shell, user])
                }),
            Action(
                "home \(home) owned by \(user), mode 0750",
                check: {
                    let found = try account()
                    guard let status = FileSystem.status(home) else { return false }
                    return status.isDirectory && status.uid == found.uid && status.gid == found.gid
                        && status.mode == homeMode
                },
                apply: {
                    let found = try account()
                    try FileSystem.makeDirectories(home, mode: homeMode)
                    try FileSystem.setOwner(home, uid: found.uid, gid: found.gid, mode: homeMode)
                }),
        ])
    }
}
