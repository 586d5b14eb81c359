/// What makes a system account the suite's service account: a system uid and the comment
/// (GECOS) the service-user step writes. Nothing else is adopted or removed.
public enum ServiceAccount {
    public static let mark = "HearthMinds service account"

    public static func isMarked(_ account: SystemAccount) -> Bool {
        account.comment.split(separator: ",", omittingEmptySubsequences: false).first.map(String.init) == mark
    }

    /// A hostWrong Failure naming the account and the way out, unless it is ours.
    public static func requireOurs(_ account: SystemAccount, uidMax: UInt32, key: String) throws {
        guard account.uid <= uidMax else {
            throw Failure.hostWrong(
                "\(account.name) has uid \(account.uid), an ordinary user's, not a system account: not the suite's "
                    + "service account; remove it or choose another \(key)")
        }
        guard isMarked(account) else {
            throw Failure.hostWrong(
                "system account \(account.name) (uid \(account.uid)) exists without our mark (comment "
                    + "'\(mark)'): an account the suite did not make is not adopted or removed; choose another \(key), "
                    + "or, if it is the HearthMinds service account, mark it: usermod --comment '\(mark)' \(account.name)")
        }
    }
}
