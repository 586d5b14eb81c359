#if canImport(Glibc)
import Glibc
#endif

/// What the operator sees: one line per action and a summary per step. Colour only when
/// standard output is a terminal (and NO_COLOR is unset).
public struct Console: Sendable {
    public let colour: Bool

    public init(colour: Bool? = nil) {
        self.colour = colour ?? (isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil)
    }

    public enum Tone: Sendable { case ok, changed, pending, failed, plain }

    public func paint(_ text: String, _ tone: Tone) -> String {
        guard colour else { return text }
        let code: String
        switch tone {
        case .ok: code = "32"
        case .changed: code = "36"
        case .pending: code = "33"
        case .failed: code = "1;31"
        case .plain: return text
        }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    public func out(_ line: String) {
        Console.write(line + "\n", to: STDOUT_FILENO)
    }

    public func err(_ line: String) {
        Console.write(line + "\n", to: STDERR_FILENO)
    }

    /// Unbuffered, so console lines and child processes' output keep their order.
    static func write(_ text: String, to fd: Int32) {
        let bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n <= 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }
}
