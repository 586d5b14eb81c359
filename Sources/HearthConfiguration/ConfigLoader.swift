import HearthSystem
#if canImport(Glibc)
import Glibc
#endif

/// Reads the configuration layers in order — built-in defaults, the shipped
/// `etc/hearthminds.env`, `/etc/hearthminds/hearthminds.env` (or `--config FILE`), the
/// environment, then `--set KEY=VALUE` flags — and validates the whole of it.
public struct ConfigSources: Sendable {
    /// The shipped defaults file; nil when there is none.
    public var shippedFile: String?
    /// The host's file; read when it exists.
    public var hostFile: String = ConfigSources.defaultHostFile
    /// True when the host file was named by `--config`: then it must exist.
    public var hostFileRequired = false
    public var environment: [String: String] = [:]
    /// `--set KEY=VALUE` flags, in order.
    public var overrides: [String] = []

    public static let defaultHostFile = "/etc/hearthminds/hearthminds.env"

    public init(
        shippedFile: String? = nil, hostFile: String? = nil, environment: [String: String] = [:],
        overrides: [String] = []
    ) {
        self.shippedFile = shippedFile
        if let hostFile {
            self.hostFile = hostFile
            self.hostFileRequired = true
        }
        self.environment = environment
        self.overrides = overrides
    }

    /// One `--set KEY=VALUE` flag split into its key and value; a configuration Failure when it is not
    /// KEY=VALUE, or names a secret (it would show in the process list). StepOptions checks
    /// the flags with it before a command runs (exit 64), the loader as it reads them.
    public static func override(_ flag: String) throws(Failure) -> (key: String, value: String) {
        guard let eq = flag.firstIndex(of: "="), eq != flag.startIndex else {
            throw Failure.configuration(key: nil, "--set takes KEY=VALUE, got '\(flag)'")
        }
        let key = String(flag[..<eq])
        if ConfigKeys.byName[key]?.secret == true || key.uppercased().hasSuffix(ConfigKeys.passwordSuffix) {
            throw Failure.configuration(
                key: key,
                "a secret cannot be given with --set (it would show in the process list); "
                    + "put it in the configuration file or the environment")
        }
        return (key, String(flag[flag.index(after: eq)...]))
    }
}

extension ConfigSources {
    /// Where the record of a refused configuration goes (StartupFailureLog): HEARTHMINDS_LOG of
    /// the last `--set` or of the environment — the invoking root's own inputs — when it is a
    /// valid absolute path, else the default log. Never a configuration file's value: the file
    /// was just refused (it may be another account's, or writable by others), and a second read
    /// of it could meet another file.
    public var refusedLogPath: String {
        let key = "HEARTHMINDS_LOG"
        let flag = overrides.reversed().lazy.compactMap { (try? ConfigSources.override($0)).flatMap { $0.key == key ? $0.value : nil } }.first
        for (value, origin) in [(flag, "--set"), (environment[key], "environment")] {
            guard let value else { continue }
            if let path = try? ConfigValues.absolutePath(key, RawValue(value: value, origin: origin)) { return path }
        }
        return ConfigKeys.byName[key]?.defaultValue ?? "/var/log/hearthminds/bootstrap.jsonl"
    }
}

/// One value and where it came from, for error messages.
package struct RawValue {
    var value: String
    var origin: String
}

package enum ConfigLoader {
    static func load(_ sources: ConfigSources) throws(Failure) -> HearthConfig {
        var raw: [String: RawValue] = [:]
        for key in ConfigKeys.all {
            raw[key.name] = RawValue(value: key.defaultValue, origin: "default")
        }
        // Per-AI passwords, by lower-cased name; checked against AI_NAMES once it is known.
        var passwords: [String: (key: String, raw: RawValue)] = [:]

        func take(_ key: String, _ value: String, origin: String, strict: Bool) throws(Failure) {
            if ConfigKeys.byName[key] != nil {
                raw[key] = RawValue(value: value, origin: origin)
                return
            }
            let upper = key.uppercased()
            if upper.hasSuffix(ConfigKeys.passwordSuffix) && upper.count > ConfigKeys.passwordSuffix.count
                && ConfigKeys.byName[upper] == nil
            {
                let name = String(key.dropLast(ConfigKeys.passwordSuffix.count)).lowercased()
                if let earlier = passwords[name], earlier.raw.origin == origin, earlier.raw.value != value {
                    throw Failure.configuration(key: key, "set twice with different values (\(earlier.key) too) in \(origin)")
                }
                passwords[name] = (key, RawValue(value: value, origin: origin))
                return
            }
            guard strict else { return }
            if ConfigKeys.byName[upper] != nil {
                throw Failure.configuration(key: key, "unknown key (in \(origin)); keys are upper case: \(upper)")
            }
            guard EnvFile.showableName(key) else {
                throw Failure.configuration(key: nil, "an unknown key (in \(origin); not shown: it may be a secret)")
            }
            throw Failure.configuration(key: key, "unknown key (in \(origin))")
        }

        var files: [(path: String, required: Bool, host: Bool)] = []
        if let shipped = sources.shippedFile { files.append((shipped, false, false)) }
        files.append((sources.hostFile, sources.hostFileRequired, true))
        var seedScheme: String?
        for (path, required, host) in files {
            if !required && !FileSystem.exists(path) { continue }
            let (text, status) = try EnvFile.read(path)
            let file = try EnvFile(path: path, text: text)
            try checkFile(file, status, host: host)
            if let line = file.seedSchemeLine { seedScheme = "\(path):\(line)" }
            for entry in file.entries {
                try take(entry.key, entry.value, origin: "\(path):\(entry.line)", strict: true)
            }
        }
        // The environment holds much else: only our keys are taken from it, and per-AI
        // passwords only for configured names (checked below).
        var environmentPasswords: [(String, String)] = []
        for (key, value) in sources.environment.sorted(by: { $0.key < $1.key }) {
            if ConfigKeys.byName[key] != nil {
                try take(key, value, origin: "environment", strict: false)
            } else if key.uppercased().hasSuffix(ConfigKeys.passwordSuffix) {
                environmentPasswords.append((key, value))
            }
        }
        for flag in sources.overrides {
            let (key, value) = try ConfigSources.override(flag)
            try take(key, value, origin: "--set", strict: true)
        }

        let names = try ConfigValues.list("AI_NAMES", raw["AI_NAMES"]!)
        let known = Set(names)
        for (key, value) in environmentPasswords {
            let name = String(key.dropLast(ConfigKeys.passwordSuffix.count)).lowercased()
            if known.contains(name) { try take(key, value, origin: "environment", strict: false) }
        }
        for (name, entry) in passwords where !known.contains(name) {
            throw Failure.configuration(
                key: entry.key, "unknown key (in \(entry.raw.origin)): no AI named '\(name)' in AI_NAMES")
        }
        return try HearthConfig(
            raw: raw, aiNames: names, passwords: passwords.mapValues { $0.raw }, seedScheme: seedScheme)
    }

    /// A configuration file drives what root does and may hold passwords: the host's file must
    /// be root's (or the caller's) and writable by nobody else; any file holding a password must
    /// also be unreadable by other users. (The shipped defaults file belongs to whoever owns the
    /// tree, as the executables do.)
    static func checkFile(_ file: EnvFile, _ status: FileSystem.Status, host: Bool) throws(Failure) {
        let path = file.path
        let mode = String(status.mode, radix: 8)
        let ownerOK = status.uid == 0 || status.uid == geteuid()
        if host {
            guard ownerOK else {
                throw Failure.configuration(
                    key: nil, "configuration file \(path) is owned by uid \(status.uid), not root: chown root:root \(path)")
            }
            guard status.mode & 0o022 == 0 else {
                throw Failure.configuration(
                    key: nil,
                    "configuration file \(path) is writable by other users (mode \(mode)); it decides what root "
                        + "does: chmod go-w \(path)")
            }
        }
        let secrets = file.entries.filter { EnvFile.isSecretKey($0.key) && !$0.value.isEmpty }.map(\.key)
        guard !secrets.isEmpty else { return }
        guard ownerOK else {
            throw Failure.configuration(
                key: secrets[0], "\(path) holds a password but is owned by uid \(status.uid), not root: chown root:root \(path)")
        }
        guard status.mode & 0o007 == 0 else {
            throw Failure.configuration(
                key: secrets[0],
                "\(path) holds a password but every user may read it (mode \(mode)): chmod 600 \(path)")
        }
    }
}
