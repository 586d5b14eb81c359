/// What a Console printed, kept instead of written to the terminal (tests read what an operator
/// would see: a dry run's diffs and statements, and that no secret is among them).
public final class Transcript: @unchecked Sendable {
    private let mutex = Mutex()
    private var lines: [String] = []

    public init() {}

    func append(_ text: String) {
        mutex.locked { lines.append(text) }
    }

    /// Everything printed so far, standard output and standard error in the order printed.
    public var text: String { mutex.locked { lines.joined() } }
}
