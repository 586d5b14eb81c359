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

    /// apt-get's argument vector: quiet, dpkg's lock waited for.
    public static func argv(_ arguments: [String]) -> [String] {
        ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=\(lockWait)"] + arguments
    }

    /// Whether apt-get failed only because another process holds one of its locks.
    public static func heldByAnother(_ result: CommandResult) -> Bool {
        guard !result.succeeded else { return false }
        let text = result.stderr + "\n" + result.stdout
        return text.contains("Could not get lock") || text.contains("Unable to acquire the dpkg frontend lock")
            || text.contains("Unable to lock directory")
    }

    /// Runs apt-get with `arguments` (the result whatever it is); while it fails on a lock another
    /// process holds, again every `retryMs` until `lockWait` has passed.
    public static func run(
        _ arguments: [String], workingDirectory: String? = nil, retryMs: Int = 2000
    ) async throws -> CommandResult {
        let deadline = Clock.nowMs() + Double(lockWait) * 1000
        while true {
            let result = try await Command.run(argv(arguments), environment: environment, workingDirectory: workingDirectory)
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
    /// failure then says what the update could not fetch. `explain` adds to that error.
    public static func install(
        _ packages: [String], explain: (HearthError) async -> HearthError = { $0 }
    ) async throws {
        let install = ["-y", "--no-install-recommends", "install"] + packages
        if try await run(install).succeeded { return }
        let update = try await run(["update"])
        guard update.succeeded else { throw Command.failure(update) }
        let second = try await run(install)
        guard second.succeeded else {
            throw await explain(AptFetchProblems.explain(Command.failure(second), update: update))
        }
    }
}
