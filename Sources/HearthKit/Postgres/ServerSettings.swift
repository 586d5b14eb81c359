/// The server settings we own, written whole to the cluster's conf.d/hearthminds.conf.
public struct ServerSettings: Sendable, Equatable {
    public let listenAddresses: String
    public let port: Int
    public let passwordEncryption = "scram-sha-256"

    public init(_ config: HearthConfig) {
        listenAddresses = Self.listenAddresses(host: config.host)
        port = config.port
    }

    /// POSTGRES_HOST as listen_addresses: loopback alone by default; an address of this host
    /// together with localhost, so that local clients keep their loopback TCP access.
    public static func listenAddresses(host: String) -> String {
        HostAddresses.isLoopback(host) ? host : "localhost,\(host)"
    }

    /// The settings a change of which takes a server restart (the others a reload).
    public static let restartSettings: Set<String> = ["listen_addresses", "port"]

    /// name → value, as `pg_settings.setting` shows them.
    public var values: [(name: String, value: String)] {
        [("listen_addresses", listenAddresses), ("port", String(port)), ("password_encryption", passwordEncryption)]
    }

    public func render(clusterID: String) -> String {
        """
        # Managed by HearthMinds bootstrap (hm-postgres) for cluster \(clusterID).
        # Every run rewrites this whole file: set POSTGRES_HOST and POSTGRES_PORT in
        # /etc/hearthminds/hearthminds.env instead of editing it here.
        listen_addresses = '\(listenAddresses)'
        port = \(port)
        password_encryption = '\(passwordEncryption)'

        """
    }
}
