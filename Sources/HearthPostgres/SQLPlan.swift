import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The statements an action runs, computed once from what the server has (a role's state, a
/// database's privileges) by the same function for the dry run and for the apply: the dry run
/// shows `shown`, the apply runs `run`. One source of truth for both.
///
/// Statements go in batches, each sent as one simple query (one implicit transaction; `CREATE
/// DATABASE` cannot run in one with others, so it is a batch of its own). Identifiers and values
/// are escaped by libpq when the statements are made. A password goes only as a SCRAM verifier,
/// and the verifier itself is masked in what is shown (`maskedVerifier`): never a password, in
/// the console or the log.
public struct SQLPlan: Sendable, Equatable {
    public struct Statement: Sendable, Equatable {
        /// What runs.
        public let sql: String
        /// What a dry run shows: `sql`, with a verifier masked.
        public let shown: String
    }

    public private(set) var batches: [[Statement]] = [[]]

    public init() {}

    /// Adds a statement to the current batch; `shown`: what a dry run shows instead (a masked
    /// verifier).
    public mutating func add(_ sql: String, shown: String? = nil) {
        batches[batches.count - 1].append(Statement(sql: sql, shown: shown ?? sql))
    }

    /// What follows goes in a batch of its own.
    public mutating func newBatch() {
        if !(batches.last?.isEmpty ?? true) { batches.append([]) }
    }

    public var statements: [Statement] { batches.flatMap { $0 } }
    public var isEmpty: Bool { statements.isEmpty }

    /// The statements as a dry run shows them: one per line, each ended by `;`.
    public var shown: String {
        statements.map { $0.shown + ";" }.joined(separator: "\n")
    }

    /// Runs every batch, in order (a batch's statements joined as one query string).
    public func run(_ db: PGConnection) throws {
        for batch in batches where !batch.isEmpty {
            try db.execute(batch.map(\.sql).joined(separator: ";\n"))
        }
    }

    /// A SCRAM verifier as a dry run shows it: its iteration count, never its salt or keys
    /// (a verifier is what an offline guess at the password starts from).
    public static func maskedVerifier(_ verifier: String) -> String {
        let parts = verifier.split(separator: "$", maxSplits: 1, omittingEmptySubsequences: false)
        let iterations = parts.count == 2 ? parts[1].prefix(while: { $0.isNumber }) : ""
        return iterations.isEmpty
            ? "'<SCRAM-SHA-256 verifier, masked>'" : "'<SCRAM-SHA-256 verifier (\(iterations) iterations), masked>'"
    }

    /// What a dry run plans with in place of a verifier (it computes none: the password may be one
    /// the run is yet to generate): shown as `maskedVerifier` shows the real one.
    public static func verifierPlaceholder(iterations: Int) -> String {
        "SCRAM-SHA-256$\(iterations):"
    }
}
