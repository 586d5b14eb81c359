import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Versions of pgvector as its files and Debian's tools state them (pure parsing).
public enum PgvectorVersions {
    /// `default_version` of an extension control file: `default_version = '0.8.0'`.
    public static func controlDefaultVersion(_ text: String) -> String? {
        for rawLine in text.split(separator: "\n") {
            let line = String(rawLine).trimmingCharacters(in: " \t\r")
            guard line.hasPrefix("default_version"), let eq = line.firstIndex(of: "=") else { continue }
            var value = String(line[line.index(after: eq)...]).trimmingCharacters(in: " \t")
            if let hash = value.firstIndex(of: "#"), !value.hasPrefix("'") { value = String(value[..<hash]) }
            value = value.trimmingCharacters(in: " \t")
            if value.hasPrefix("'"), let close = value.dropFirst().firstIndex(of: "'") {
                value = String(value[value.index(after: value.startIndex)..<close])
            }
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// The upstream part of a Debian version: `1:0.8.0-1.pgdg120+1` gives `0.8.0` (no epoch,
    /// no Debian revision).
    public static func upstream(_ debianVersion: String) -> String {
        var version = Substring(debianVersion)
        if let colon = version.firstIndex(of: ":") { version = version[version.index(after: colon)...] }
        if let dash = version.lastIndex(of: "-") { version = version[..<dash] }
        return String(version)
    }

    /// A Debian version without its epoch, as file names carry it: `1:0.8.0-1` gives `0.8.0-1`.
    public static func withoutEpoch(_ debianVersion: String) -> String {
        guard let colon = debianVersion.firstIndex(of: ":") else { return debianVersion }
        return String(debianVersion[debianVersion.index(after: colon)...])
    }

    /// The `Version:` field of a `.dsc` file (which may be wrapped in a PGP signature).
    public static func dscVersion(_ text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix("Version:") {
            let value = String(line.dropFirst("Version:".count)).trimmingCharacters(in: " \t\r")
            return value.isEmpty ? nil : value
        }
        return nil
    }

    /// The `Candidate:` of `apt-cache policy PACKAGE` output; nil for none (no output, or
    /// `(none)`).
    public static func aptCandidate(_ policyOutput: String) -> String? {
        for line in policyOutput.split(separator: "\n") {
            let trimmed = String(line).trimmingCharacters(in: " \t")
            guard trimmed.hasPrefix("Candidate:") else { continue }
            let value = String(trimmed.dropFirst("Candidate:".count)).trimmingCharacters(in: " \t")
            return value.isEmpty || value == "(none)" ? nil : value
        }
        return nil
    }
}
