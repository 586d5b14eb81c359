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
    public static func printable(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < scalars.count {
            let c = scalars[i]
            if c == "\u{1B}", i + 1 < scalars.count, scalars[i + 1] == "[" {
                var j = i + 2
                while j < scalars.count, ("0"..."9").contains(scalars[j]) || scalars[j] == ";" { j += 1 }
                if j < scalars.count, scalars[j] == "m",
                    Console.ourColours.contains(String(String.UnicodeScalarView(scalars[(i + 2)..<j])))
                {
                    out.append(contentsOf: scalars[i...j])
                    i = j + 1
                    continue
                }
            }
            switch c.value {
            case 0x0A, 0x09: out.append(c)
            case 0x00..<0x20: out.append(contentsOf: "^\(Character(Unicode.Scalar(c.value + 0x40)!))".unicodeScalars)
            case 0x7F: out.append(contentsOf: "^?".unicodeScalars)
            case 0x80..<0xA0: out.append("\u{FFFD}")
            default: out.append(c)
            }
            i += 1
        }
        return String(out)
    }

    /// Unbuffered, so console lines and child processes' output keep their order.
    static func write(_ text: String, to fd: Int32) {
        FileSystem.writeAll(fd, Array(text.utf8))
    }
}
