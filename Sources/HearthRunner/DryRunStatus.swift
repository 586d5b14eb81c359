import HearthSystem
#if canImport(Glibc)
import Glibc
#endif

/// How a dry run reports each action (StepRunner): `ok` (the check is true), `would change`
/// (the check is false; what the apply would do is shown under it, see DryRunPreview), and
/// `unknown` (the check cannot be made yet: what it reads is made by an earlier step, "unknown:
/// needs the postgres step", or by an earlier action of the same step), besides FAILED (a check
/// that found the host wrong beyond repair, a hostWrong Failure). The summary line counts them apart, the
/// log says `"status"` (ok, would_change, unknown, failed) and `"needs"`, and install.sh's
/// summary adds them up (DryRunCounts).
public enum DryRunStatus {
    /// The console's label of an unknown check.
    static func unknownLabel(needs: String?, step: String) -> String {
        guard let needs else { return "unknown" }
        return needs == step ? "unknown: needs an earlier action" : "unknown: needs the \(needs) step"
    }

    /// The summary line's part about unknown checks: ", 3 unknown (needs the postgres step)".
    static func unknownSummary(_ outcome: StepRunner.Outcome, step: String) -> String {
        guard outcome.unknown > 0 else { return "" }
        let named = outcome.needs.map { $0 == step ? "earlier actions of this step" : "the \($0) step" }
        let why: String
        switch named.count {
        case 0: why = "cannot check yet"
        case 1: why = "needs " + named[0]
        default: why = "needs " + named.dropLast().joined(separator: ", ") + " and " + named[named.count - 1]
        }
        return ", \(outcome.unknown) unknown (\(why))"
    }

    /// What an action's preview shows; its error, when it cannot show it.
    static func preview(_ preview: Action.Preview) -> String {
        do {
            return try preview()
        } catch {
            return "(what would change cannot be shown: \(error))"
        }
    }

    /// A preview as the console shows it under its action: indented, a diff's lines coloured
    /// on a terminal.
    static func indented(_ preview: String, _ console: Console) -> String {
        preview.split(separator: "\n", omittingEmptySubsequences: false).map { line -> String in
            let tone: Console.Tone
            if line.hasPrefix("+++") || line.hasPrefix("---") {
                tone = .plain
            } else if line.hasPrefix("+") {
                tone = .ok
            } else if line.hasPrefix("-") {
                tone = .failed
            } else if line.hasPrefix("@@") {
                tone = .changed
            } else {
                tone = .plain
            }
            return "      " + console.paint(String(line), tone)
        }.joined(separator: "\n")
    }
}

/// A dry run's counts for install.sh's summary: when install.sh names a descriptor in
/// HEARTHMINDS_COUNTS_FD (a file of its root-only lock directory, opened for this step), the
/// step writes one line to it at its end: `<would change> <unknown> <needs>` (needs: the steps
/// the unknown checks need, comma-separated, or `-`).
public enum DryRunCounts {
    public static let descriptorVariable = "HEARTHMINDS_COUNTS_FD"

    /// The descriptor install.sh passed, when it is one we may write to (a regular file or a
    /// pipe), made close-on-exec so that nothing the step runs inherits it; nil otherwise.
    public static func claim(_ environment: [String: String]) -> Int32? {
        guard let text = environment[descriptorVariable], let fd = Int32(text), fd > 2 else { return nil }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG || st.st_mode & S_IFMT == S_IFIFO else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    /// The line for `outcome`.
    public static func line(_ outcome: StepRunner.Outcome) -> String {
        "\(outcome.wouldChange) \(outcome.unknown) \(outcome.needs.isEmpty ? "-" : outcome.needs.joined(separator: ","))\n"
    }

    public static func report(_ outcome: StepRunner.Outcome, to fd: Int32?) {
        guard let fd else { return }
        Console.write(line(outcome), to: fd)
    }
}
