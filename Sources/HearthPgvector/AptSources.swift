import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Reading the host's own apt sources: which Debian mirror this machine uses. Pure logic on
/// the files' text, so that the mirror is always derived at run time and never written into
/// the repository.
public enum AptSources {
    /// One source entry: its types (deb, deb-src), URIs, suites and components.
    public struct Entry: Sendable, Equatable {
        public var types: [String]
        public var uris: [String]
        public var suites: [String]
        public var components: [String]
    }

    /// The entries of a deb822 `.sources` file (stanzas separated by blank lines; `Enabled: no`
    /// stanzas and comments are left out; continuation lines are joined).
    public static func parseDeb822(_ text: String) -> [Entry] {
        var entries: [Entry] = []
        var fields: [String: String] = [:]
        var lastKey: String?

        func flush() {
            defer {
                fields = [:]
                lastKey = nil
            }
            guard !fields.isEmpty else { return }
            if let enabled = fields["enabled"], enabled.lowercased() == "no" { return }
            func words(_ key: String) -> [String] {
                (fields[key] ?? "").split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).map(String.init)
            }
            entries.append(
                Entry(types: words("types"), uris: words("uris"), suites: words("suites"),
                      components: words("components")))
        }

        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(rawLine.last == "\r" ? rawLine.dropLast() : rawLine)
            if line.hasPrefix("#") { continue }
            if line.trimmingCharacters(in: " \t").isEmpty {
                flush()
                continue
            }
            if line.first == " " || line.first == "\t" {
                // A continuation of the field before ("." alone is an empty line in deb822).
                let more = line.trimmingCharacters(in: " \t")
                if let key = lastKey, more != "." { fields[key, default: ""] += " " + more }
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { continue }
            let key = String(line[..<colon]).trimmingCharacters(in: " \t").lowercased()
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: " \t")
            fields[key] = value
            lastKey = key
        }
        flush()
        return entries
    }

    /// The entries of a one-line-style `sources.list`: `deb [options] URI suite component...`.
    public static func parseOneLine(_ text: String) -> [Entry] {
        var entries: [Entry] = []
        for rawLine in text.split(separator: "\n") {
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            // Options in brackets may hold spaces: [ arch=amd64 signed-by=/x.gpg ].
            var rest = line
            var words: [String] = []
            while true {
                rest = rest.drop(while: { $0 == " " || $0 == "\t" })
                guard let first = rest.first else { break }
                if first == "[" {
                    guard let close = rest.firstIndex(of: "]") else { words = []; break }
                    rest = rest[rest.index(after: close)...]
                    continue
                }
                let word = rest.prefix(while: { $0 != " " && $0 != "\t" })
                words.append(String(word))
                rest = rest[word.endIndex...]
            }
            guard words.count >= 3, words[0] == "deb" || words[0] == "deb-src" else { continue }
            entries.append(
                Entry(types: [words[0]], uris: [words[1]], suites: [words[2]], components: Array(words.dropFirst(3))))
        }
        return entries
    }

    /// The URI of the host's Debian archive: the first http(s) URI of an entry whose suites
    /// hold the host's codename itself (bookworm, not bookworm-security or -updates) with the
    /// `main` component. nil when there is none.
    public static func debianMirror(_ entries: [Entry], codename: String) -> String? {
        for entry in entries where entry.suites.contains(codename) && entry.components.contains("main")
            && (entry.types.contains("deb") || entry.types.contains("deb-src"))
        {
            for uri in entry.uris where uri.hasPrefix("http://") || uri.hasPrefix("https://") {
                return uri.hasSuffix("/") ? String(uri.dropLast()) : uri
            }
        }
        return nil
    }

    /// `VERSION_CODENAME` of an os-release file's text.
    public static func codename(osRelease text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix("VERSION_CODENAME=") {
            var value = line.dropFirst("VERSION_CODENAME=".count)
            if value.hasPrefix("\"") && value.hasSuffix("\"") && value.count >= 2 { value = value.dropFirst().dropLast() }
            return value.isEmpty ? nil : String(value)
        }
        return nil
    }

    /// The mirror of this machine: deb822 files in /etc/apt/sources.list.d first, then
    /// /etc/apt/sources.list and its one-line `.list` files. Throws naming the files read.
    public static func hostDebianMirror(etcApt: String = "/etc/apt", osRelease: String = "/etc/os-release")
        throws(Failure) -> (mirror: String, codename: String)
    {
        let releaseText: String
        do { releaseText = try FileSystem.readText(osRelease) } catch {
            throw Failure("cannot read \(osRelease) to learn this host's Debian codename: \(error)")
        }
        guard let codename = codename(osRelease: releaseText) else {
            throw Failure("\(osRelease) has no VERSION_CODENAME: is this Debian?")
        }
        var entries: [Entry] = []
        let partsDirectory = etcApt + "/sources.list.d"
        let parts = (try? FileSystem.list(partsDirectory)) ?? []
        for name in parts where name.hasSuffix(".sources") {
            if let text = try? FileSystem.readText(partsDirectory + "/" + name) { entries += parseDeb822(text) }
        }
        if let text = try? FileSystem.readText(etcApt + "/sources.list") { entries += parseOneLine(text) }
        for name in parts where name.hasSuffix(".list") {
            if let text = try? FileSystem.readText(partsDirectory + "/" + name) { entries += parseOneLine(text) }
        }
        guard let mirror = debianMirror(entries, codename: codename) else {
            throw Failure(
                "no Debian mirror for '\(codename) main' (http or https) in \(partsDirectory)/*.sources or "
                    + "\(etcApt)/sources.list: the debian-source method fetches pgvector from the host's own "
                    + "mirror; set PGVECTOR_INSTALL_METHOD=tarball with PGVECTOR_SOURCE and PGVECTOR_SHA256 instead")
        }
        return (mirror, codename)
    }
}
