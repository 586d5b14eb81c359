/// Errors every executable maps to an exit code: configuration and usage errors exit 64
/// before anything changes; everything else is a false result (exit 1).

/// A bad key or value, or a bad command line: nothing has been touched yet.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let key: String?
    public let message: String

    public init(key: String?, _ message: String) {
        self.key = key
        self.message = message
    }

    public var description: String {
        if let key { return "\(key): \(message)" }
        return message
    }
}

/// A failure while checking or changing the host: the message says what and why.
public struct HearthError: Error, CustomStringConvertible {
    public let message: String
    /// The step whose work is missing, when that is why the check could not be made (no cluster
    /// yet: "postgres"): a dry run reports the action as unknown, needing that step.
    public var needs: String?

    public init(_ message: String) {
        self.message = Bounded.text(message, 2 * Bounded.detailBytes)
    }

    public init(_ message: String, needs step: String) {
        self.message = Bounded.text(message, 2 * Bounded.detailBytes)
        self.needs = step
    }

    public var description: String { message }
}

/// Exit codes shared by every step executable and install.sh.
public enum ExitStatus {
    public static let ok: Int32 = 0
    public static let failed: Int32 = 1
    public static let usage: Int32 = 64
    /// Another run holds the lock (RunLock): nothing was done.
    public static let busy: Int32 = 75
}

/// Thrown by a check that has looked and found the host wrong in a way no apply can fix
/// (an ordinary user where a system user should be): a false result with its reason, in a
/// dry run too. Any other error thrown by a check in a dry run means "cannot check yet".
public struct CheckFailed: Error, CustomStringConvertible {
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
