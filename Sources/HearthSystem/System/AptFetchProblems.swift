/// What `apt-get update` could not fetch, for the error of an install that then fails: an
/// unreachable mirror makes `apt-get update` warn and exit 0, and the install after it fails
/// only with "Unable to locate package", which hides the cause.
public enum AptFetchProblems {
    /// The `Err:` lines and the `W:`/`E:` lines about fetching, from `apt-get update`'s output.
    public static func lines(_ output: String) -> [String] {
        output.split(separator: "\n").map { String($0).trimmingCharacters(in: " \t") }.filter {
            $0.hasPrefix("Err:") || (($0.hasPrefix("W:") || $0.hasPrefix("E:"))
                && ($0.contains("fetch") || $0.contains("index files") || $0.contains("connect")))
        }
    }

    /// `failure` with the fetch problems appended, when there are any.
    public static func explain(_ failure: Failure, update: CommandResult) -> Failure {
        let problems = lines(update.stdout + "\n" + update.stderr)
        guard !problems.isEmpty else { return failure }
        return Failure(
            failure.message + "\n`apt-get update` could not fetch the package lists (is the mirror in the apt "
                + "sources reachable?):\n" + problems.suffix(10).joined(separator: "\n"))
    }
}
