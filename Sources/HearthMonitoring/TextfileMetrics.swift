import HearthMigrations
import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// Metrics in Prometheus' text exposition format, written for node_exporter's textfile
/// collector (NODE_EXPORTER_TEXTFILE_DIR, `/var/lib/prometheus/node-exporter` by default):
/// each file whole, atomically (OpenDirectory: a temporary name that does not end in `.prom`,
/// then a rename), so the collector reads the old file or the new, never half.
public struct TextfileMetrics: Sendable {
    public enum Kind: String, Sendable { case gauge, counter }

    public struct Sample: Sendable, Equatable {
        public let labels: [(String, String)]
        public let value: Double

        public init(_ labels: [(String, String)], _ value: Double) {
            self.labels = labels
            self.value = value
        }

        public static func == (a: Sample, b: Sample) -> Bool {
            a.value == b.value && a.labels.map { $0.0 + "=" + $0.1 } == b.labels.map { $0.0 + "=" + $0.1 }
        }
    }

    public struct Family: Sendable {
        public let name: String
        public let help: String
        public let kind: Kind
        public var samples: [Sample]

        public init(_ name: String, _ kind: Kind = .gauge, help: String, _ samples: [Sample]) {
            self.name = name
            self.kind = kind
            self.help = help
            self.samples = samples
        }
    }

    public var families: [Family] = []

    public init(_ families: [Family] = []) {
        self.families = families
    }

    /// The text format: HELP and TYPE once per family, then its samples.
    public func render() -> String {
        var out = ""
        for family in families {
            out += "# HELP \(family.name) \(Self.escapeHelp(family.help))\n"
            out += "# TYPE \(family.name) \(family.kind.rawValue)\n"
            for sample in family.samples {
                out += family.name
                if !sample.labels.isEmpty {
                    out += "{" + sample.labels.map { "\($0.0)=\"\(Self.escapeLabel($0.1))\"" }.joined(separator: ",") + "}"
                }
                out += " " + Self.number(sample.value) + "\n"
            }
        }
        return out
    }

    /// A label value as the text format takes it: backslash, double quote and line feed escaped.
    public static func escapeLabel(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static func escapeHelp(_ value: String) -> String {
        var out = ""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A value: integers without a fraction, NaN and infinities as Prometheus spells them.
    public static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }

    /// The value of `name` with `labels` in a file this type wrote (the last run's), nil when
    /// the file has none: what a false run keeps of the last true one.
    public static func value(of name: String, labels: [(String, String)], in text: String) -> Double? {
        let key = name + (labels.isEmpty ? "" : "{" + labels.map { "\($0.0)=\"\(escapeLabel($0.1))\"" }.joined(separator: ",") + "}")
        for line in text.split(separator: "\n") where line.hasPrefix(key + " ") {
            return Double(line.dropFirst(key.count + 1))
        }
        return nil
    }

    // MARK: the directory

    /// The textfile directory, made when missing (root's, 0755). The default's parent,
    /// `/var/lib/prometheus`, is the `prometheus` account's on Debian (its packages chown it):
    /// the walk trusts that account there and nowhere else. nil when none is configured.
    public static func directory(_ config: HearthConfig) throws -> OpenDirectory? {
        guard let path = config.monitoring.textfileDirectory else { return nil }
        return try OpenDirectory.makePath(path, mode: 0o755, trust: trust(for: path))
    }

    static func trust(for path: String) -> DirectoryTrust {
        guard let prometheus = SystemAccount.lookup("prometheus") else { return .root }
        return .account(prometheus.uid, from: "/var/lib/prometheus")
    }

    /// Writes `name` (a `*.prom` file) whole in the textfile directory, readable by all (the
    /// collector runs as `prometheus`); nothing when no directory is configured.
    public func write(_ name: String, _ config: HearthConfig) throws {
        precondition(name.hasSuffix(".prom") && !name.contains("/"))
        guard let directory = try Self.directory(config) else { return }
        try directory.write(name, render(), mode: 0o644, uid: 0, gid: 0)
    }

    /// The file `name` as it is now (nil: none, or no directory configured); never followed.
    public static func read(_ name: String, _ config: HearthConfig) -> String? {
        guard let path = config.monitoring.textfileDirectory,
            let directory = try? OpenDirectory.openIfPresent(path, trust: trust(for: path))
        else { return nil }
        return try? directory.textIfFile(name, limit: 1 << 20)
    }

    public static func wallClock() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec / 1_000_000) / 1000
    }
}
