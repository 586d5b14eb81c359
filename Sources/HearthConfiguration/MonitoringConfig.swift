import HearthSystem
/// The monitoring keys (issue 23): MONITORING_USER, POSTGRES_EXPORTER_ADDRESS and its TLS pair,
/// NODE_EXPORTER_TEXTFILE_DIR. Validated with the rest of the configuration, before any step
/// changes anything.
public struct MonitoringConfig: Sendable, Equatable {
    /// The exporter's system account and the role it logs in as by peer (one name, as the
    /// service account's).
    public let user: String
    /// Where the exporter listens: an IP address (or `localhost`) and a port.
    public let host: String
    public let port: Int
    /// The exporter's HTTPS certificate and key (its --web.config.file); nil: plain HTTP, which
    /// only a loopback address may serve.
    public let tls: (cert: String, key: String)?
    /// node_exporter's textfile directory, where every step and run writes its metrics; nil:
    /// none written.
    public let textfileDirectory: String?

    public static let defaultTextfileDirectory = "/var/lib/prometheus/node-exporter"

    public static func == (a: MonitoringConfig, b: MonitoringConfig) -> Bool {
        a.user == b.user && a.host == b.host && a.port == b.port && a.tls?.cert == b.tls?.cert
            && a.tls?.key == b.tls?.key && a.textfileDirectory == b.textfileDirectory
    }

    /// The listener as --web.listen-address takes it (`[::1]:9187` for IPv6).
    public var listenAddress: String {
        (HostAddresses.isIPv6(host) ? "[\(host)]" : host) + ":\(port)"
    }

    public var isLoopback: Bool { HostAddresses.isLoopback(host) }

    init(_ value: (String) -> RawValue, taken: Set<String>) throws(Failure) {
        typealias V = ConfigValues
        let userRaw = value("MONITORING_USER")
        guard V.isSystemUserName(userRaw.value) else {
            throw V.fail(
                "MONITORING_USER", userRaw, "not a system user name: a lower-case letter or _, then [a-z0-9_-], at most 32")
        }
        guard !taken.contains(userRaw.value), userRaw.value != "prometheus" else {
            throw V.fail(
                "MONITORING_USER", userRaw,
                "must be an account and role of its own: not root, postgres, prometheus, the manager, the service, the "
                    + "admin user, an AI or a database")
        }
        user = userRaw.value

        let addressRaw = value("POSTGRES_EXPORTER_ADDRESS")
        let text = addressRaw.value
        guard let colon = text.lastIndex(of: ":") else {
            throw V.fail("POSTGRES_EXPORTER_ADDRESS", addressRaw, "not ADDRESS:PORT (127.0.0.1:9187, [::1]:9187)")
        }
        var hostPart = String(text[..<colon])
        if hostPart.hasPrefix("[") && hostPart.hasSuffix("]") { hostPart = String(hostPart.dropFirst().dropLast()) }
        guard hostPart == "localhost" || V.isIPAddress(hostPart), let port = Int(text[text.index(after: colon)...]),
            (1...65535).contains(port)
        else {
            throw V.fail("POSTGRES_EXPORTER_ADDRESS", addressRaw, "not ADDRESS:PORT (127.0.0.1:9187, [::1]:9187)")
        }
        host = hostPart
        self.port = port

        let certRaw = value("POSTGRES_EXPORTER_TLS_CERT_FILE")
        let keyRaw = value("POSTGRES_EXPORTER_TLS_KEY_FILE")
        let cert = certRaw.value.isEmpty ? nil : try V.absolutePath("POSTGRES_EXPORTER_TLS_CERT_FILE", certRaw)
        let key = keyRaw.value.isEmpty ? nil : try V.absolutePath("POSTGRES_EXPORTER_TLS_KEY_FILE", keyRaw)
        if (cert == nil) != (key == nil) {
            let (name, raw) = cert == nil ? ("POSTGRES_EXPORTER_TLS_CERT_FILE", certRaw) : ("POSTGRES_EXPORTER_TLS_KEY_FILE", keyRaw)
            throw V.fail(name, raw, "POSTGRES_EXPORTER_TLS_CERT_FILE and POSTGRES_EXPORTER_TLS_KEY_FILE go together: set both or neither")
        }
        tls = cert.map { ($0, key!) }
        // The wildcard, or any address of another interface, serves the metrics (the names of the
        // AIs, their sizes, their query ids) beyond this host: only over TLS, as the operator decides.
        if !HostAddresses.isLoopback(host) && tls == nil {
            throw V.fail(
                "POSTGRES_EXPORTER_ADDRESS", addressRaw,
                "is beyond loopback: set POSTGRES_EXPORTER_TLS_CERT_FILE and POSTGRES_EXPORTER_TLS_KEY_FILE (HTTPS), or keep "
                    + "it on loopback and put your own proxy in front")
        }

        let dirRaw = value("NODE_EXPORTER_TEXTFILE_DIR")
        textfileDirectory = dirRaw.value.isEmpty ? nil : try V.absolutePath("NODE_EXPORTER_TEXTFILE_DIR", dirRaw)
    }
}
