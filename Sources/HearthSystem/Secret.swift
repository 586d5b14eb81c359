/// A password or other secret. It prints as `<redacted>` wherever it is interpolated, so a
/// secret cannot reach the log or the console by accident; `reveal` is the one way out.
public struct Secret: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    private let value: String

    public init(_ value: String) {
        self.value = value
    }

    /// The clear text, for libpq only (a connection parameter or PQencryptPasswordConn).
    public var reveal: String { value }

    public var isEmpty: Bool { value.isEmpty }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "<redacted>" }
}
