/// The suite's one failure type, as postgres-nio's PSQLError with its code and Debian's
/// PgCommon's one `error`: what went wrong, and a kind that says what it means. The runner, the
/// dry run, the exit status and the JSON log (its `failure` and `key` fields) read the kind,
/// never the wording.
public struct Failure: Error, CustomStringConvertible, Equatable, Sendable {
    /// What a failure means.
    public enum Kind: String, Sendable, CaseIterable {
        /// A bad key or value, or a bad command line: nothing has been touched yet (exit 64).
        case configuration
        /// A check cannot be made before an earlier step's work (no cluster yet): a dry run shows
        /// the action unknown, needing that step (`needs`); a run, false.
        case needsStep = "needs_step"
        /// A check has looked and found the host wrong in a way no apply can fix (an ordinary
        /// user where a system user should be): false, in a dry run too.
        case hostWrong = "host_wrong"
        /// A revision file, or a database in a state the migrator cannot go on from, or a
        /// failing statement of a revision (naming the file, line or database).
        case migration
        /// libpq or the server said no (`sqlState` when it gave one).
        case database
        /// A file larger than it was allowed to be: not read.
        case tooLarge = "too_large"
        /// Any other failure while checking or changing the host: the message says what and why.
        case error
    }

    public let kind: Kind
    public let message: String
    /// The configuration key a configuration failure names, when one is to blame.
    public let key: String?
    /// The step whose work is missing (needsStep: "postgres").
    public let needs: String?
    /// The server's SQLSTATE (database).
    public let sqlState: String?
    /// The refused value as the message shows it, quoted (configuration; nil for a secret's).
    public let value: String?

    private init(
        _ kind: Kind, _ message: String, key: String? = nil, needs: String? = nil, sqlState: String? = nil,
        value: String? = nil
    ) {
        (self.kind, self.message, self.key, self.needs, self.sqlState, self.value) =
            (kind, message, key, needs, sqlState, value)
    }

    /// A failure while checking or changing the host (`error`); bounded, for a tenant's value in
    /// it may be of any size.
    public init(_ message: String) {
        self.init(.error, Bounded.text(message, 2 * Bounded.detailBytes))
    }

    /// A check that cannot be made before `step`'s work (`needsStep`).
    public init(_ message: String, needs step: String) {
        self.init(.needsStep, Bounded.text(message, 2 * Bounded.detailBytes), needs: step)
    }

    /// A bad key or value (`configuration`), naming the key when one is to blame.
    public static func configuration(key: String?, _ message: String) -> Failure {
        Failure(.configuration, message, key: key)
    }

    /// A refused value of `key` (`configuration`), shown quoted unless it is a secret's.
    public static func configuration(key: String, value: String?, _ message: String) -> Failure {
        Failure(.configuration, message, key: key, value: value.map(\.debugDescription))
    }

    /// The host found wrong beyond repair (`hostWrong`).
    public static func hostWrong(_ message: String) -> Failure {
        Failure(.hostWrong, message)
    }

    /// A migration problem (`migration`), naming the file (and line) or the database.
    public static func migration(_ message: String) -> Failure {
        Failure(.migration, Bounded.text(message, 2 * Bounded.detailBytes))
    }

    /// libpq's or the server's error (`database`), bounded: a server's error may quote a
    /// tenant's value whole.
    public static func database(message: String, sqlState: String?) -> Failure {
        Failure(.database, Bounded.text(message), sqlState: sqlState)
    }

    /// A file not read for its size (`tooLarge`).
    public static func tooLarge(_ message: String) -> Failure {
        Failure(.tooLarge, message)
    }

    public var description: String {
        switch kind {
        case .configuration: return key.map { "\($0)\(value.map { "=" + $0 } ?? ""): \(message)" } ?? message
        case .database: return sqlState.map { "\(message) [SQLSTATE \($0)]" } ?? message
        default: return message
        }
    }

    /// The kind of any error: a Failure's own, `error` for anything else.
    public static func kind(of error: any Error) -> Kind {
        (error as? Failure)?.kind ?? .error
    }

    /// Whether `error` is a Failure of `kind`.
    public static func isKind(_ error: any Error, _ kind: Kind) -> Bool {
        (error as? Failure)?.kind == kind
    }
}

/// Exit codes shared by every step executable and install.sh.
public enum ExitStatus {
    public static let ok: Int32 = 0
    public static let failed: Int32 = 1
    public static let usage: Int32 = 64
    /// Another run holds the lock (RunLock): nothing was done.
    public static let busy: Int32 = 75
}
