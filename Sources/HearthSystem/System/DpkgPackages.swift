/// dpkg's record of the host's packages: which are installed, and which left only their
/// configuration files behind. Work that installs packages for a while (a source build's
/// compiler and headers) takes one before, and afterwards removes exactly what it added: so
/// no compiler stays on a database host, and nothing that was there before goes.
public struct DpkgPackages: Sendable, Equatable {
    /// Installed in any state but "not-installed" and "config-files" (half-configured ones too).
    public var installed: Set<String>
    /// Removed, their configuration files kept ("rc" in `dpkg -l`).
    public var configOnly: Set<String>

    public init(installed: Set<String> = [], configOnly: Set<String> = []) {
        self.installed = installed
        self.configOnly = configOnly
    }

    /// The format `current()` asks dpkg-query for: one `name[:arch]<TAB>status` line per package.
    static let queryFormat = "${binary:Package}\t${db:Status-Status}\n"

    public static func parse(_ text: String) -> DpkgPackages {
        var packages = DpkgPackages()
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "\t", omittingEmptySubsequences: false)
            guard fields.count == 2, !fields[0].isEmpty else { continue }
            let name = String(fields[0])
            switch String(fields[1]).trimmingCharacters(in: " ") {
            case "not-installed", "": continue
            case "config-files": packages.configOnly.insert(name)
            default: packages.installed.insert(name)
            }
        }
        return packages
    }

    /// dpkg's record now.
    public static func current() async throws -> DpkgPackages {
        parse(try await Command.check(["dpkg-query", "--show", "--showformat=\(queryFormat)"]))
    }

    /// What brings the host from this record back to `before`: the packages installed since,
    /// to purge (dpkg knew nothing of them before) or to remove (only their configuration files
    /// were there before, and they stay). Sorted.
    public func added(since before: DpkgPackages) -> (purge: [String], remove: [String]) {
        let added = installed.subtracting(before.installed)
        return (
            added.filter { !before.configOnly.contains($0) }.sorted(),
            added.filter { before.configOnly.contains($0) }.sorted()
        )
    }

    /// The package names of `apt-get --simulate` output that would be installed or removed
    /// (its `Inst`, `Remv` and `Purg` lines), without their architecture.
    public static func simulatedChanges(_ output: String) -> (install: [String], remove: [String]) {
        var install: [String] = []
        var remove: [String] = []
        for line in output.split(separator: "\n") {
            let words = line.split(separator: " ")
            guard words.count >= 2 else { continue }
            let name = String(words[1].prefix(while: { $0 != ":" }))
            switch words[0] {
            case "Inst": install.append(name)
            case "Remv", "Purg": remove.append(name)
            default: continue
            }
        }
        return (install, remove)
    }

    private static func bare(_ name: String) -> String { String(name.prefix(while: { $0 != ":" })) }

    /// Removes exactly the packages installed since `before` (apt-get purge, or remove for those
    /// whose configuration files were there before). apt-get first simulates it: when it would
    /// remove or install anything else, nothing is done and the error names it. Afterwards
    /// dpkg's installed set must be `before`'s again. Returns the packages removed.
    @discardableResult
    public static func removeAdded(since before: DpkgPackages) async throws -> [String] {
        let (purge, remove) = try await current().added(since: before)
        guard !(purge.isEmpty && remove.isEmpty) else { return [] }
        let ours = Set((purge + remove).map(bare))
        var runs: [[String]] = []
        if !purge.isEmpty { runs.append(["purge"] + purge) }
        if !remove.isEmpty { runs.append(["remove"] + remove) }
        for run in runs {
            let simulated = try await Apt.check(["--simulate"] + run)
            let changes = simulatedChanges(simulated)
            let others = Set(changes.remove).subtracting(ours).sorted()
            guard others.isEmpty && changes.install.isEmpty else {
                throw Failure(
                    "removing the packages installed for the build (\(run.dropFirst().joined(separator: " "))) would "
                        + (others.isEmpty ? "" : "also remove \(others.joined(separator: " ")) ")
                        + (changes.install.isEmpty ? "" : "install \(changes.install.joined(separator: " ")) ")
                        + "(apt-get --simulate): left as they are; remove them by hand")
            }
        }
        for run in runs {
            try await Apt.check(["-y"] + run)
        }
        let now = try await current()
        guard now.installed == before.installed else {
            let extra = now.installed.subtracting(before.installed).sorted()
            let gone = before.installed.subtracting(now.installed).sorted()
            throw Failure(
                "after removing the build's packages, dpkg's installed packages differ from before:"
                    + (extra.isEmpty ? "" : " still installed: \(extra.joined(separator: " "));")
                    + (gone.isEmpty ? "" : " gone: \(gone.joined(separator: " "))"))
        }
        return (purge + remove).sorted()
    }
}
