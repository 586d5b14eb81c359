import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
#if canImport(Glibc)
import Glibc
#endif

/// What `pg_lsclusters` shows, read in this process from the files it reads (postgresql-common's
/// PgCommon.pm: `get_version_clusters`, `cluster_info`, `read_conf_file`): a cluster is a
/// directory `/etc/postgresql/<version>/<name>/` with a `postgresql.conf`; its settings are that
/// file with its `include`, `include_if_exists` and `include_dir` files, then the data
/// directory's `postgresql.auto.conf`; its port is their `port` (5432 by default), its data
/// directory their `data_directory` (else the `pgdata` link, else the configuration directory
/// itself when it holds PG_VERSION), its owner the data directory's, and it is online when its
/// postmaster.pid names a live process.
///
/// pg_lsclusters is Perl and took 40-150 ms a call; the postgres step asked it seven times on
/// a converged host. This reads a few small files (well under a millisecond).
///
/// The files are the cluster owner's (postgres), so they are read as that account could have
/// left them: without following a link at a file's place, only regular files, and a line that
/// is not a setting is skipped, never shown (pg_lsclusters quotes it in its error, which would
/// show a line of whatever file a link pointed at). A cluster whose files cannot be read is
/// listed with what is unknown left nil. What is read is bounded (`Budget`): a file that
/// includes itself ten times over, or a sparse file of a terabyte, would otherwise hold the run
/// forever or take the host's memory (pg_lsclusters had a deadline). The owner is the data
/// directory's only as postgresql-common accepts it (not root, and the owner of postgresql.conf
/// unless root owns that): the configuration names the data directory, and a `data_directory`
/// of root's, or another account's, must not make root's work run as that account.
public struct ClusterProbe: Sendable {
    public let configRoot: String
    /// Include depth beyond which files are not followed (a file that includes itself).
    static let maxDepth = 10
    public static let defaultPort = 5432

    /// How much one cluster's configuration may take to read (postgresql.conf, what it includes,
    /// postgresql.auto.conf): files opened and bytes read. Beyond it, what is read is not trusted.
    struct Budget {
        var files: Int
        var bytes: Int
        var exceeded = false

        /// Takes `files` from what is left; false (and exceeded) when that is not enough.
        mutating func spend(_ files: Int) -> Bool {
            guard !exceeded, files <= self.files else {
                exceeded = true
                return false
            }
            self.files -= files
            return true
        }

        /// One cluster's: a real configuration is a few files of some kilobytes.
        static var cluster: Budget { Budget(files: 1000, bytes: 16 << 20) }
        /// Every cluster of the host together (clusters()): a postgres account that makes
        /// thousands of cluster directories does not make the listing endless either.
        static var host: Budget { Budget(files: 10_000, bytes: 64 << 20) }
    }

    public init(configRoot: String = ClusterPaths.configRoot) {
        self.configRoot = configRoot
    }

    /// Every cluster, ordered by version and name.
    /// A cluster whose configuration is beyond its budget is listed with what is unknown nil.
    public func clusters() throws -> [ClusterInfo] {
        guard let root = try OpenDirectory.openIfPresent(configRoot, trust: .reading) else { return [] }
        var found: [ClusterInfo] = []
        var host = Budget.host
        for entry in try root.list() {
            guard let version = Self.version(entry), let directory = try? root.directory(entry) else { continue }
            for name in try directory.list() where Self.isCluster(directory, name) {
                var budget = Budget(files: min(host.files, Budget.cluster.files), bytes: min(host.bytes, Budget.cluster.bytes))
                let before = budget
                found.append(info(version: version, versionDirectory: entry, name: name, budget: &budget))
                host.files -= before.files - budget.files
                host.bytes -= before.bytes - budget.bytes
            }
        }
        return found.sorted { ($0.version, $0.name) < ($1.version, $1.name) }
    }

    /// The cluster `version/name`; nil when there is none. A configuration beyond its budget is
    /// an error naming it.
    public func cluster(version: Int, name: String) throws -> ClusterInfo? {
        guard OpenDirectory.isPlainName(name),
            let directory = try OpenDirectory.openIfPresent(configRoot + "/" + String(version), trust: .reading),
            Self.isCluster(directory, name)
        else { return nil }
        var budget = Budget.cluster
        let found = info(version: version, versionDirectory: String(version), name: name, budget: &budget)
        if budget.exceeded {
            throw Failure(
                "cluster \(version)/\(name): its configuration (\(configRoot)/\(version)/\(name)/postgresql.conf, what it "
                    + "includes and postgresql.auto.conf) is more than \(Budget.cluster.files) files or "
                    + "\(Budget.cluster.bytes >> 20) MiB to read (an include loop, a huge file?): not read; put it right")
        }
        return found
    }

    /// A version directory's name as a number ("15"); nil for anything else ("9.6" has no cluster
    /// of ours, and PG_VERSION is 15 or later).
    static func version(_ name: String) -> Int? {
        guard !name.isEmpty, name.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        return Int(name)
    }

    /// A cluster directory has a postgresql.conf (a file, or a link: pg_lsclusters lists a dead one too).
    static func isCluster(_ versionDirectory: OpenDirectory, _ name: String) -> Bool {
        guard OpenDirectory.isPlainName(name), let entry = try? versionDirectory.entry(name) else { return false }
        if entry.kind == .symlink { return true }  // a linked cluster directory: listed, its files unread
        guard entry.kind == .directory, let directory = try? versionDirectory.directory(name) else { return false }
        return (try? directory.entry("postgresql.conf")) != nil
    }

    func info(version: Int, versionDirectory: String, name: String, budget: inout Budget) -> ClusterInfo {
        let configDirectory = configRoot + "/" + versionDirectory + "/" + name
        var settings = Settings(budget: budget)
        let readable = settings.read(configDirectory + "/postgresql.conf", depth: 0)
        var dataDirectory = settings.values["data_directory"]
        var configDirectoryHandle: OpenDirectory?
        if let directory = try? OpenDirectory.openIfPresent(configDirectory, trust: .reading) {
            configDirectoryHandle = directory
            if dataDirectory == nil {
                if let entry = try? directory.entry("pgdata"), entry.kind == .symlink {
                    dataDirectory = FileSystem.readLink(configDirectory + "/pgdata")
                } else if let entry = try? directory.entry("PG_VERSION"), entry.kind == .file {
                    dataDirectory = configDirectory
                }
            }
        }
        if let dataDirectory, !settings.budget.exceeded {
            // ALTER SYSTEM's file (data_directory cannot be set there).
            var auto = Settings(budget: settings.budget)
            if auto.read(dataDirectory + "/postgresql.auto.conf", depth: 0) {
                auto.values["data_directory"] = nil
                settings.values.merge(auto.values) { _, new in new }
            }
            settings.budget = auto.budget
        }
        budget = settings.budget
        guard !budget.exceeded else {
            // Only part of it was read: nothing of it is trusted.
            return ClusterInfo(version: version, name: name, port: nil, online: false, owner: nil, dataDirectory: nil)
        }
        let port = readable ? settings.values["port"].map { Int($0) ?? -1 } ?? Self.defaultPort : nil
        var owner: String?
        var online = false
        if let dataDirectory {
            // The data directory's owner, its link not followed (as PostmasterStatus reads it),
            // and only as postgresql-common's validate_cluster_owner accepts it.
            let configUID = (try? configDirectoryHandle?.entry("postgresql.conf"))??.uid
            if let uid = (try? OpenDirectory.openIfPresent(dataDirectory, trust: .reading))??.status.uid, uid != 0,
                configUID == 0 || configUID == uid
            {
                owner = SystemAccount.name(uid: uid)
            }
            online = PostmasterStatus.read(dataDirectory: dataDirectory) != nil
        }
        return ClusterInfo(
            version: version, name: name, port: port.flatMap { $0 < 0 ? nil : $0 }, online: online, owner: owner,
            dataDirectory: dataDirectory)
    }

    /// Settings as read_conf_file reads them: later lines and files win; names lower-cased.
    struct Settings {
        var values: [String: String] = [:]
        /// What is left to read; `exceeded` once a file was not read for it.
        var budget: Budget

        init(budget: Budget) {
            self.budget = budget
        }

        /// Reads `path` and what it includes; false when it is no readable regular file.
        mutating func read(_ path: String, depth: Int) -> Bool {
            // Every file asked for counts, there or not, and every name of an included directory.
            guard budget.spend(1), depth <= ClusterProbe.maxDepth, let (directoryPath, name) = try? OpenDirectory.split(path),
                let directory = try? OpenDirectory.openIfPresent(directoryPath, trust: .reading),
                let entry = try? directory.entry(name), entry.kind == .file
            else { return false }
            let bytes: [UInt8]
            do { bytes = try directory.readBytes(name, limit: budget.bytes) } catch {
                if Failure.isKind(error, .tooLarge) { budget.exceeded = true }
                return false
            }
            budget.bytes -= bytes.count
            // Line by line over the bytes; most lines of a postgresql.conf are comments, passed
            // over before anything is made of them.
            var start = bytes.startIndex
            while start < bytes.endIndex {
                let end = bytes[start...].firstIndex(of: 10) ?? bytes.endIndex
                let line = bytes[start..<end]
                start = end + 1
                guard let first = line.first(where: { $0 != 0x20 && $0 != 0x09 }), first != UInt8(ascii: "#") else { continue }
                switch ConfLine.parse(line) {
                case .setting(let key, let value):
                    values[key.lowercased()] = value
                case .include(let target, let isDirectory):
                    let absolute = target.hasPrefix("/") ? target : directoryPath + "/" + target
                    if isDirectory {
                        guard budget.spend(1), let included = try? OpenDirectory.openIfPresent(absolute, trust: .reading),
                            let names = try? included.list(), budget.spend(names.count)
                        else { continue }
                        for file in names where !file.hasPrefix(".") && file.hasSuffix(".conf") {
                            _ = read(absolute + "/" + file, depth: depth + 1)
                        }
                    } else {
                        _ = read(absolute, depth: depth + 1)
                    }
                case .none:
                    continue
                }
            }
            return true
        }
    }
}

/// One line of a PostgreSQL configuration file, parsed as PgCommon.pm's read_conf_file does.
enum ConfLine: Equatable {
    case setting(String, String)
    case include(String, directory: Bool)

    /// nil for a blank or comment line, and for a line that is none of these (skipped).
    static func parse(_ line: Substring) -> ConfLine? {
        parse(Array(line.utf8)[...])
    }

    static func parse(_ line: ArraySlice<UInt8>) -> ConfLine? {
        var rest = line
        func skipBlanks() { while let c = rest.first, c == 0x20 || c == 0x09 || c == 0x0d { rest = rest.dropFirst() } }
        /// Only blanks and a comment left.
        func atEnd() -> Bool {
            skipBlanks()
            return rest.isEmpty || rest.first == UInt8(ascii: "#")
        }
        func isNameByte(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x5f || c == 0x2e
                || c == 0x2d
        }
        func isAlnum(_ c: UInt8) -> Bool {
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a)
        }
        skipBlanks()
        if rest.isEmpty || rest.first == UInt8(ascii: "#") { return nil }
        var name: [UInt8] = []
        while let c = rest.first, isNameByte(c) {
            name.append(c)
            rest = rest.dropFirst()
        }
        guard !name.isEmpty else { return nil }
        let key = String(decoding: name, as: UTF8.self)
        // Separator: blanks, an optional '=', blanks (at least one of them).
        let before = rest.count
        skipBlanks()
        if rest.first == UInt8(ascii: "=") { rest = rest.dropFirst() }
        skipBlanks()
        guard rest.count < before else { return nil }
        let lowered = key.lowercased()
        if lowered == "include_dir" || lowered == "include" || lowered == "include_if_exists" {
            guard rest.first == UInt8(ascii: "'") else { return nil }
            rest = rest.dropFirst()
            guard let close = rest.firstIndex(of: UInt8(ascii: "'")), close > rest.startIndex else { return nil }
            let target = String(decoding: rest[..<close], as: UTF8.self)
            rest = rest[(close + 1)...]
            guard atEnd() else { return nil }
            return .include(target, directory: lowered == "include_dir")
        }
        if rest.first == UInt8(ascii: "'") {
            // 'quoted': '' is a quote, a backslash escapes the next character.
            rest = rest.dropFirst()
            var value: [UInt8] = []
            var closed = false
            while let c = rest.first {
                rest = rest.dropFirst()
                if c == UInt8(ascii: "\\"), let next = rest.first {
                    value.append(next)
                    rest = rest.dropFirst()
                } else if c == UInt8(ascii: "'") {
                    if rest.first == UInt8(ascii: "'") {
                        value.append(c)
                        rest = rest.dropFirst()
                    } else {
                        closed = true
                        break
                    }
                } else {
                    value.append(c)
                }
            }
            guard closed, atEnd() else { return nil }
            return .setting(key, String(decoding: value, as: UTF8.self))
        }
        // A simple value: -?[[:alnum:]][[:alnum:]._:/+-]*
        var value: [UInt8] = []
        if rest.first == UInt8(ascii: "-") {
            value.append(UInt8(ascii: "-"))
            rest = rest.dropFirst()
        }
        guard let first = rest.first, isAlnum(first) else { return nil }
        while let c = rest.first, isAlnum(c) || c == 0x2e || c == 0x5f || c == 0x3a || c == 0x2f || c == 0x2b || c == 0x2d {
            value.append(c)
            rest = rest.dropFirst()
        }
        guard atEnd() else { return nil }
        return .setting(key, String(decoding: value, as: UTF8.self))
    }
}
