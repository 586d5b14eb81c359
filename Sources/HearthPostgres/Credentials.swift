import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// How the suite logs in as a database's owner (see PGServer.ownerConnection): the roles that
/// log in by peer as the same-named system account, and the passwords of the others.
public struct Credentials: Sendable {
    public var peerAccounts: Set<String>
    private let passwords: @Sendable (String) -> Secret?

    public init(peerAccounts: Set<String>, passwords: [String: Secret]) {
        self.peerAccounts = peerAccounts
        self.passwords = { passwords[$0] }
    }

    /// The configured host: the service account by peer; the manager and the AIs with their
    /// passwords (configured, or kept in the client files).
    public init(_ config: HearthConfig, book: PasswordBook) {
        peerAccounts = [config.serviceUser]
        passwords = { role in book.roles.contains(role) ? try? book.password(role) : nil }
    }

    public func password(_ role: String) -> Secret? { passwords(role) }
}
