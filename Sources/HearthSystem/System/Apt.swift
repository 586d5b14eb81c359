#if canImport(Glibc)
import Glibc
#endif

/// apt-get as the suite runs it: without questions (DEBIAN_FRONTEND=noninteractive), and
/// waiting while another apt or dpkg works. On a freshly booted Debian host apt-daily and
/// unattended-upgrades hold dpkg's lock for minutes; an install that failed at once with
/// "Could not get lock /var/lib/dpkg/lock-frontend" would make `sudo ./install.sh` fail for
/// nothing. dpkg's lock is waited for by apt itself (DPkg::Lock::Timeout); the locks apt has no
/// such wait for (its lists, its archive cache) by running the command again while its error is
/// a lock held by another process. Either way no longer than `lockWait`.
public enum Apt {
    public static let environment: [String: String?] = ["DEBIAN_FRONTEND": "noninteractive"]

    /// How long a run of apt-get waits for the locks of another apt or dpkg, in seconds.
    public static let lockWait = 300

    /// apt-get's argument vector: quiet, dpkg's lock waited for (`lockTimeout` seconds).
    public static func argv(_ arguments: [String], lockTimeout: Int = lockWait) -> [String] {
        ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=\(lockTimeout)"] + arguments
    }

    /// Whether apt-get failed only because another process holds one of its locks: apt's own
    /// error lines on standard error, as apt words them. Not text that merely contains those
    /// words: a mirror's HTTP reason phrase ("E: Failed to fetch … 503 <reason>", "Err:" lines),
    /// or what a maintainer script printed (pg_ctlcluster prints the cluster's log, which the
    /// postgres account writes), would otherwise keep a failure going for `lockWait`. Once dpkg
    /// ran ("E: Sub-process /usr/bin/dpkg …"), apt held its locks: never a lock, and never run
    /// again. A lock file apt cannot open ("Could not open lock file", not root) nobody holds.
    public static func heldByAnother(_ result: CommandResult) -> Bool {
        guard !result.succeeded else { return false }
        let errors = result.stderr.split(separator: "\n").map(String.init).filter { $0.hasPrefix("E: ") }
        if errors.contains(where: { $0.hasPrefix("E: Sub-process ") || $0.hasPrefix("E: Could not open lock file ") }) {
            return false
        }
        return errors.contains { line in
            (line.hasPrefix("E: Could not get lock /")
                && (line.contains(". It is held by process ") || line.hasSuffix(" - open (11: Resource temporarily unavailable)")))
                || (line.hasPrefix("E: Unable to acquire the dpkg frontend lock (/")
                    && line.hasSuffix("), is another process using it?"))
        }
    }

    /// Runs apt-get with `arguments` (the result whatever it is); while it fails on a lock another
    /// process holds, again every `retryMs` until `lockWait` has passed (or `deadline`, a
    /// `Clock.nowMs()` time, when given). apt's own wait for dpkg's lock is what is left of that
    /// time, so a run ends by the deadline and not `lockWait` after it.
    public static func run(
        _ arguments: [String], workingDirectory: String? = nil, retryMs: Int = 2000, deadline: Double? = nil
    ) async throws -> CommandResult {
        let deadline = deadline ?? Clock.nowMs() + Double(lockWait) * 1000
        while true {
            let left = max(0, Int((deadline - Clock.nowMs()) / 1000))
            let result = try await Command.run(
                argv(arguments, lockTimeout: left), environment: environment, workingDirectory: workingDirectory)
            guard heldByAnother(result), Clock.nowMs() + Double(retryMs) < deadline else { return result }
            try await Task.sleep(nanoseconds: UInt64(retryMs) * 1_000_000)
        }
    }

    /// Runs apt-get with `arguments`; a failure throws with its output.
    @discardableResult
    public static func check(_ arguments: [String], workingDirectory: String? = nil) async throws -> String {
        let result = try await run(arguments, workingDirectory: workingDirectory)
        guard result.succeeded else { throw Command.failure(result) }
        return result.stdout
    }

    /// `apt-get install` of `packages` (no recommends). When that fails, `apt-get update` (a
    /// fresh host may have no package lists yet, or stale ones) and the install again; its
    /// failure then says what the update could not fetch. `updateFirst`: the update before the
    /// first install (what the postgres step's first install does: PostgreSQL from lists as new
    /// as the mirror's, not from what an image shipped with). `explain` adds to that error. The
    /// runs wait for locks `lockWait` in all, not each. What an interrupted dpkg left is
    /// finished first (`finishInterrupted`).
    public static func install(
        _ packages: [String], updateFirst: Bool = false, explain: (Failure) async -> Failure = { $0 }
    ) async throws {
        let install = ["-y", "--no-install-recommends", "install"] + packages
        let deadline = Clock.nowMs() + Double(lockWait) * 1000
        try await finishInterrupted(deadline: deadline)
        var update: CommandResult? = nil
        if updateFirst {
            // (a failed update is not the end: the lists there may serve; the install says)
            update = try await run(["update"], deadline: deadline)
        }
        if try await run(install, deadline: deadline).succeeded { return }
        if update == nil {
            let fresh = try await run(["update"], deadline: deadline)
            guard fresh.succeeded else { throw Command.failure(fresh) }
            update = fresh
        }
        let second = try await run(install, deadline: deadline)
        guard second.succeeded else {
            throw await explain(AptFetchProblems.explain(Command.failure(second), update: update!))
        }
    }

    /// What an interrupted dpkg left (DpkgStatus.unfinished), once no other dpkg or apt is at
    /// work: while one holds dpkg's lock its packages are half-installed only for the moment
    /// (apt-daily, unattended-upgrades, an operator's apt), so this waits for it (until
    /// `deadline`, a Clock.nowMs() time; then an error naming the holder). nil when dpkg's
    /// status file cannot be read.
    public static func unfinished(directory: String = DpkgStatus.defaultDirectory, deadline: Double? = nil) async throws
        -> (journal: Bool, packages: [String])?
    {
        let deadline = deadline ?? Clock.nowMs() + Double(lockWait) * 1000
        while let holder = DpkgStatus.lockHolder(directory: directory) {
            guard Clock.nowMs() + 1000 < deadline else {
                throw Failure(
                    "another dpkg or apt (pid \(holder)) has held dpkg's lock for \(lockWait) s: it may still be at "
                        + "work; rerun once it is done")
            }
            try await Task.sleep(nanoseconds: 1_000_000_000)
        }
        return DpkgStatus.unfinished(directory: directory)
    }

    /// How long `dpkg --configure -a` (or `dpkg --install`) and the maintainer scripts it runs may
    /// take, in seconds: past it they are killed, their process group with them (coreutils'
    /// timeout), and dpkg's lock is free again.
    public static let maintainerScriptsTimeout = 900

    /// Whether dpkg failed only because another process holds its lock: its own error and its
    /// own note after it, and nothing else on standard error. (dpkg stops at once then, having
    /// run nothing; a maintainer script's output, which may quote the postgres account's files,
    /// is never it.)
    public static func dpkgLockedByAnother(_ result: CommandResult) -> Bool {
        guard !result.succeeded else { return false }
        let lines = result.stderr.split(separator: "\n").filter { !$0.isEmpty }
        guard let first = lines.first else { return false }
        let locked = ["dpkg: error: dpkg frontend lock was locked by another process with pid ",
                      "dpkg: error: dpkg database lock was locked by another process with pid "]
        guard locked.contains(where: { first.hasPrefix($0) }), first.dropFirst(locked[0].count).allSatisfy(\.isNumber)
        else { return false }
        return Array(lines.dropFirst()) == dpkgLockNote
    }

    /// dpkg's note after its lock error (dpkg 1.21).
    static let dpkgLockNote: [Substring] = [
        "Note: removing the lock file is always wrong, can damage the locked area",
        "and the entire system. See <https://wiki.debian.org/Teams/Dpkg/FAQ#db-lock>.",
    ]

    /// Finishes what an interrupted dpkg left (a power cut, a kill in the middle of an install):
    /// while dpkg's journal has entries or a package is half-installed, unpacked, half-configured
    /// or waiting for triggers, apt refuses every install ("dpkg was interrupted, you must
    /// manually run 'dpkg --configure -a'"). This does what apt tells the operator to do —
    /// `dpkg --configure -a` — then `apt-get install --fix-broken` for a package that must be
    /// reinstalled (its unpack was cut), and fails, naming the packages, when dpkg still has
    /// unfinished work. Returns what it finished ([]: nothing was unfinished; no process started).
    ///
    /// `reinstallFrom`: package files (by package name) for packages no apt source offers (the
    /// release's pgvector package): one of those left half-installed is installed again from its
    /// file (`dpkg -i`), which apt cannot do ("needs to be reinstalled, but I can't find an archive").
    @discardableResult
    public static func finishInterrupted(
        directory: String = DpkgStatus.defaultDirectory, deadline: Double? = nil, reinstallFrom files: [String: String] = [:]
    ) async throws -> [String] {
        let deadline = deadline ?? Clock.nowMs() + Double(lockWait) * 1000
        guard let before = try await unfinished(directory: directory, deadline: deadline), before.journal || !before.packages.isEmpty
        else { return [] }
        let what = before.packages.isEmpty ? ["dpkg's journal"] : before.packages
        // dpkg itself does not wait for its lock: again while another dpkg or apt holds it. The
        // maintainer scripts it runs as root (postgresql-common's read the postgres account's
        // files) are bounded: a FIFO there would hold dpkg, and dpkg's lock, forever.
        while true {
            let configured = try await Command.run(
                ["dpkg", "--force-confdef", "--force-confold", "--configure", "-a"], environment: environment,
                timeout: maintainerScriptsTimeout)
            if configured.succeeded { break }
            guard dpkgLockedByAnother(configured), Clock.nowMs() + 2000 < deadline else { break }
            try await Task.sleep(nanoseconds: 2_000_000_000)
        }
        if let after = DpkgStatus.unfinished(directory: directory) {
            for package in after.packages {
                guard let file = files[package] else { continue }
                _ = try await Command.run(
                    ["dpkg", "--force-confdef", "--force-confold", "--install", file], environment: environment,
                    timeout: maintainerScriptsTimeout)
            }
        }
        if let after = DpkgStatus.unfinished(directory: directory), !after.packages.isEmpty || after.journal {
            // --no-remove: apt would settle a broken package by removing it, whatever it is (an
            // operator's package of its own): it aborts instead, and the step names the package.
            let fixed = try await run(
                ["-y", "--no-install-recommends", "--no-remove", "-o", "Dpkg::Options::=--force-confdef",
                 "-o", "Dpkg::Options::=--force-confold", "--fix-broken", "install"], deadline: deadline)
            if let last = DpkgStatus.unfinished(directory: directory), !last.packages.isEmpty || last.journal {
                throw Failure(
                    "dpkg was interrupted and its work could not be finished (dpkg --configure -a, then apt-get "
                        + "--fix-broken install): still unfinished: "
                        + (last.packages.isEmpty ? "dpkg's journal" : last.packages.joined(separator: ", "))
                        + (fixed.succeeded ? "" : "\n" + Command.failure(fixed).message))
            }
        }
        return what
    }
}
