import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// The passwords of the password roles (the manager and each AI). Each is the configured one;
/// else the one generated once and kept root-only in the role's password file
/// (`<client directory>/pgpass/<role>`, written by the databases step); else none yet. A
/// generated password is never logged or shown, and is reused on every run.
///
/// A stored password that equals its role's name is not honoured: it was the default of
/// earlier versions (the seed's scheme), which an operator now has to write out to keep.
public final class PasswordBook: @unchecked Sendable {
    public let directory: String
    /// Every password role, the manager first.
    public let roles: [String]
    private let configured: [String: Secret]
    private var generated: [String: Secret] = [:]

    /// Where the client files and the password files are (ClientFiles writes them there).
    public static let defaultDirectory = "/etc/hearthminds"
    /// The password files' directory under it, a file per role.
    public static let passwordDirectory = "pgpass"

    public init(_ config: HearthConfig, directory: String = PasswordBook.defaultDirectory) {
        self.directory = directory
        roles = [config.hearthmindsUser] + config.ais.map(\.name)
        var configured: [String: Secret] = [:]
        if let password = config.hearthmindsPassword { configured[config.hearthmindsUser] = password }
        for ai in config.ais { if let password = ai.password { configured[ai.name] = password } }
        self.configured = configured
    }

    public func isConfigured(_ role: String) -> Bool { configured[role] != nil }

    /// The password kept in the role's password file: the last field of its first line.
    public func stored(_ role: String) -> Secret? {
        let path = "\(directory)/\(PasswordBook.passwordDirectory)/\(role)"
        guard let text = try? FileSystem.readText(path),
            let line = text.split(separator: "\n").first,
            let password = PasswordBook.lastPgpassField(String(line)), !password.isEmpty, password != role
        else { return nil }
        return Secret(password)
    }

    /// The role's password: configured, generated in this run, or stored.
    public func password(_ role: String) throws(Failure) -> Secret {
        if let password = configured[role] ?? generated[role] ?? stored(role) { return password }
        throw Failure(
            "no password for role \(role) yet: none is configured and none is kept in "
                + "\(directory)/\(PasswordBook.passwordDirectory)/\(role) (the databases step generates one)")
    }

    /// Roles with no configured password and none kept yet.
    public func missing() -> [String] {
        roles.filter { configured[$0] == nil && generated[$0] == nil && stored($0) == nil }
    }

    /// Makes a new random password for every missing role (kept in memory until the client
    /// files are written).
    public func generateMissing() throws(Failure) {
        for role in missing() { generated[role] = try PasswordBook.random() }
    }

    /// Every role's password; an error names the first role that has none.
    public func all() throws(Failure) -> [String: Secret] {
        var out: [String: Secret] = [:]
        for role in roles { out[role] = try password(role) }
        return out
    }

    /// 24 bytes from the kernel's random source (/dev/urandom), as 32 URL-safe base64
    /// characters (no `:` or `\`, which a password file would have to escape).
    static func random() throws(Failure) -> Secret {
        let fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure("cannot open /dev/urandom: \(FileSystem.errnoText())") }
        defer { close(fd) }
        var bytes = [UInt8](repeating: 0, count: 24)
        var filled = 0
        while filled < bytes.count {
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw Failure("cannot read /dev/urandom: \(FileSystem.errnoText())") }
            filled += n
        }
        let text = Base64.encode(bytes).replacing("+", with: "-").replacing("/", with: "_")
        bytes.removeAll()
        return Secret(text)
    }

    /// The last `:`-separated field of a .pgpass line, with `\:` and `\\` unescaped.
    static func lastPgpassField(_ line: String) -> String? {
        var fields: [String] = [""]
        var escaped = false
        for c in line {
            if escaped {
                fields[fields.count - 1].append(c)
                escaped = false
            } else if c == "\\" {
                escaped = true
            } else if c == ":" {
                fields.append("")
            } else {
                fields[fields.count - 1].append(c)
            }
        }
        return fields.count == 5 ? fields[4] : nil
    }
}
