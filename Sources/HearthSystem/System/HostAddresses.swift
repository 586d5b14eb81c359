#if canImport(Glibc)
import Glibc
#endif

/// Whether an IP address belongs to this host: it does when a socket can be bound to it.
public enum HostAddresses {
    public enum Locality: Equatable, Sendable {
        case local
        /// No interface of this host has it (EADDRNOTAVAIL).
        case notLocal
        /// Not an IP address, or binding failed for another reason (the text says which).
        case unusable(String)
    }

    public static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || (host.hasPrefix("127.") && isIPv4(host))
    }

    public static func isIPv4(_ text: String) -> Bool {
        var v4 = in_addr()
        return inet_pton(AF_INET, text, &v4) == 1
    }

    public static func isIPv6(_ text: String) -> Bool {
        var v6 = in6_addr()
        return inet_pton(AF_INET6, text, &v6) == 1
    }

    /// The wildcard addresses ("every interface"), which are not one address of this host.
    public static func isWildcard(_ text: String) -> Bool {
        if isIPv4(text) {
            var v4 = in_addr()
            _ = inet_pton(AF_INET, text, &v4)
            return v4.s_addr == 0
        }
        if isIPv6(text) {
            var v6 = in6_addr()
            _ = inet_pton(AF_INET6, text, &v6)
            return withUnsafeBytes(of: &v6) { $0.allSatisfy { $0 == 0 } }
        }
        return false
    }

    /// Binds a TCP socket to `address` with port 0 (any free port) and closes it again.
    public static func locality(_ address: String) -> Locality {
        if address == "localhost" { return .local }
        let family: Int32
        if isIPv4(address) { family = AF_INET } else if isIPv6(address) { family = AF_INET6 } else {
            return .unusable("'\(address)' is not an IP address")
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return .unusable("socket(): \(FileSystem.errnoText())") }
        defer { close(fd) }
        let rc: Int32
        if family == AF_INET {
            var sa = sockaddr_in()
            sa.sin_family = sa_family_t(AF_INET)
            _ = inet_pton(AF_INET, address, &sa.sin_addr)
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        } else {
            var sa = sockaddr_in6()
            sa.sin6_family = sa_family_t(AF_INET6)
            _ = inet_pton(AF_INET6, address, &sa.sin6_addr)
            rc = withUnsafePointer(to: &sa) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        }
        if rc == 0 { return .local }
        let code = errno
        if code == EADDRNOTAVAIL { return .notLocal }
        return .unusable("cannot bind \(address): \(FileSystem.errnoText(code))")
    }
}
