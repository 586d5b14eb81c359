#if canImport(Glibc)
import Glibc
#endif

/// What the operator sees: one line per action and a summary per step. Colour only when
/// standard output is a terminal (and NO_COLOR is unset).
public struct Console: Sendable {
    public let colour: Bool
    /// When set, what would be printed is kept there instead (tests).
    public let transcript: Transcript?

    public init(colour: Bool? = nil, transcript: Transcript? = nil) {
        self.colour = colour ?? (isatty(STDOUT_FILENO) == 1 && getenv("NO_COLOR") == nil)
        self.transcript = transcript
    }

    public enum Tone: Sendable, CaseIterable { case ok, changed, pending, unknown, failed, plain }

    /// The SGR parameters of a tone (nil: no colour): the one table `paint` writes from and
    /// `ourColours` lets through.
    static func sgr(_ tone: Tone) -> String? {
        switch tone {
        case .ok: return "32"
        case .changed: return "36"
        case .pending: return "33"
        case .unknown: return "35"
        case .failed: return "1;31"
        case .plain: return nil
        }
    }

    public func paint(_ text: String, _ tone: Tone) -> String {
        guard colour, let code = Console.sgr(tone) else { return text }
        return "\u{1B}[\(code)m\(text)\u{1B}[0m"
    }

    public func out(_ line: String) {
        if let transcript { return transcript.append(Console.printable(line) + "\n") }
        Console.write(Console.printable(line) + "\n", to: STDOUT_FILENO)
    }

    public func err(_ line: String) {
        if let transcript { return transcript.append(Console.printable(line) + "\n") }
        Console.write(Console.printable(line) + "\n", to: STDERR_FILENO)
    }

    /// The SGR parameters `paint` writes (and the reset): the only escape sequences that pass.
    /// Any other (8: concealed, 5: blinking, 30;40: black on black) would let a tenant's text
    /// hide what follows it on the terminal.
    /// (Every tone's: a tone whose code was left out printed a raw `^[[35m` before each unknown
    /// of a dry run on a colour terminal.)
    static let ourColours: Set<String> = Set(Tone.allCases.compactMap(sgr) + ["0"])

    /// What reaches the operator's terminal is printable. Text from outside the suite — a
    /// server's error, a revision id a tenant wrote into its alembic_version, a name in another
    /// account's files — may hold terminal control sequences (a window title, the clipboard, a
    /// report the terminal types back as input): every control character but newline and tab is
    /// shown in caret notation (ESC as `^[`), C1 controls as U+FFFD; only our own colours (SGR,
    /// `ESC [ digits m` of `ourColours`) pass.
    /// On the UTF-8 bytes, into one buffer: linear in the text (scalar by scalar it took
    /// quadratic time on a tenant's string of control characters).
    public static func printable(_ text: String) -> String {
        let bytes = Array(text.utf8)
        let n = bytes.count
        var out: [UInt8] = []
        out.reserveCapacity(n)
        var i = 0
        while i < n {
            let c = bytes[i]
            if c == 0x1B, i + 1 < n, bytes[i + 1] == 0x5B {  // ESC [
                var j = i + 2
                while j < n, (0x30...0x39).contains(bytes[j]) || bytes[j] == 0x3B { j += 1 }
                if j < n, bytes[j] == 0x6D, j - i < 16,
                    Console.ourColours.contains(String(decoding: bytes[(i + 2)..<j], as: UTF8.self))
                {
                    out += bytes[i...j]
                    i = j + 1
                    continue
                }
            }
            switch c {
            case 0x0A, 0x09: out.append(c)
            case 0x00..<0x20: out += [0x5E, c + 0x40]  // ^@ .. ^_
            case 0x7F: out += [0x5E, 0x3F]  // ^?
            case 0xC2 where i + 1 < n && (0x80...0x9F).contains(bytes[i + 1]):
                out += [0xEF, 0xBF, 0xBD]  // a C1 control (U+0080..U+009F): U+FFFD
                i += 2
                continue
            default: out.append(c)
            }
            i += 1
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Unbuffered, so console lines and child processes' output keep their order.
    package static func write(_ text: String, to fd: Int32) {
        FileSystem.writeAll(fd, Array(text.utf8))
    }
}
