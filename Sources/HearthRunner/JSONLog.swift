import HearthSystem
#if canImport(Glibc)
import Glibc
#endif

/// The JSON-lines log: one object per action, appended with O_APPEND so the steps of one
/// install.sh run (and concurrent writers) never interleave within a line.
public struct LogRecord: Sendable {
    public var time: String
    public var run: String
    public var step: String
    public var action: String
    public var result: Bool
    public var changed: Bool
    public var ms: Double
    public var detail: String
    public var dryRun: Bool
    /// What the action came to: ok, changed, would_change, unknown or failed ("": not said).
    public var status = ""
    /// The step whose work an unknown check needs ("postgres"); for a step's record, every such
    /// step, comma-separated.
    public var needs = ""
    /// What a dry run would change (a unified diff, statements; secrets masked).
    public var preview = ""
    /// A dry run step's counts: actions that would change, actions unknown.
    public var counts: (wouldChange: Int, unknown: Int)?
    /// What the error that ended the action (or the start-up) meant: a Failure.Kind's raw value
    /// (configuration, needs_step, host_wrong, migration, database, too_large, error); "" when
    /// none was thrown (a check that was false says so in `status`).
    public var failure = ""
    /// The configuration key a configuration failure names.
    public var key = ""

    public init(
        time: String, run: String, step: String, action: String, result: Bool, changed: Bool, ms: Double,
        detail: String, dryRun: Bool, status: String = "", needs: String = "", preview: String = "",
        counts: (wouldChange: Int, unknown: Int)? = nil, failure: String = "", key: String = ""
    ) {
        (self.time, self.run, self.step, self.action, self.result, self.changed, self.ms) =
            (time, run, step, action, result, changed, ms)
        (self.detail, self.dryRun, self.status, self.needs, self.preview, self.counts, self.failure, self.key) =
            (detail, dryRun, status, needs, preview, counts, failure, key)
    }

    public var json: String {
        var fields: [String] = [
            "\"time\":\(JSON.string(time))",
            "\"run\":\(JSON.string(run))",
            "\"step\":\(JSON.string(Bounded.text(step, 256)))",
            "\"action\":\(JSON.string(Bounded.text(action, 1024)))",
            "\"result\":\(result)",
            "\"changed\":\(changed)",
            "\"ms\":\(JSON.number(ms))",
            // Bounded (a tenant's value in an error can be of any size): a record is a few KiB.
            "\"detail\":\(JSON.string(Bounded.text(detail)))",
        ]
        if dryRun { fields.append("\"dry_run\":true") }
        if !status.isEmpty { fields.append("\"status\":\(JSON.string(status))") }
        if !needs.isEmpty { fields.append("\"needs\":\(JSON.string(needs))") }
        if !preview.isEmpty { fields.append("\"preview\":\(JSON.string(Bounded.text(preview, Bounded.previewBytes)))") }
        if !failure.isEmpty { fields.append("\"failure\":\(JSON.string(failure))") }
        if !key.isEmpty { fields.append("\"key\":\(JSON.string(Bounded.text(key, 256)))") }
        if let counts {
            fields.append("\"would_change\":\(counts.wouldChange)")
            fields.append("\"unknown\":\(counts.unknown)")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }
}

public enum JSON {
    /// The text as a JSON string. On the UTF-8 bytes, into one buffer: linear in the text (a
    /// string of control characters built scalar by scalar took quadratic time, 145 s for 2 MiB).
    public static func string(_ text: String) -> String {
        let hex = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count + 2)
        out.append(0x22)
        for byte in text.utf8 {
            switch byte {
            case 0x22: out += [0x5C, 0x22]  // \"
            case 0x5C: out += [0x5C, 0x5C]  // \\
            case 0x0A: out += [0x5C, 0x6E]  // \n
            case 0x0D: out += [0x5C, 0x72]  // \r
            case 0x09: out += [0x5C, 0x74]  // \t
            case 0x00..<0x20: out += [0x5C, 0x75, 0x30, 0x30, hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]  // \u00XX
            default: out.append(byte)
            }
        }
        out.append(0x22)
        return String(decoding: out, as: UTF8.self)
    }

    public static func number(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        if rounded == rounded.rounded() { return String(Int(rounded)) }
        return String(rounded)
    }
}

public final class JSONLog: @unchecked Sendable {
    public let path: String
    private var fd: Int32 = -1
    private let mutex = Mutex()
    private var firstFailure: String?

    /// Opens (creating the directory, mode 0750, and the file, mode 0640) for appending. The
    /// directory is reached by the trust rule (every directory on the way root's, not writable
    /// by others unless sticky: a HEARTHMINDS_LOG in a directory another account owns is
    /// refused), and the file is opened without following a link and must be root's.
    public init(path: String) throws(Failure) {
        self.path = path
        do {
            let (directoryPath, name) = try OpenDirectory.split(path)
            let directory = try OpenDirectory.makePath(directoryPath, mode: 0o750)
            let opened = openat(
                directory.fd, name, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC,
                mode_t(0o640))
            guard opened >= 0 else {
                throw Failure("cannot open the log \(path): \(FileSystem.errnoText())")
            }
            var st = stat()
            guard fstat(opened, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == geteuid() else {
                close(opened)
                throw Failure(
                    "the log \(path) is not a regular file of \(OpenDirectory.userName(geteuid())): not written to")
            }
            fd = opened
        } catch let error as Failure where error.kind == .error {
            throw error
        } catch {
            throw Failure("the log \(path): \(error)")
        }
    }

    deinit {
        if fd >= 0 { close(fd) }
    }

    /// Appends one line, whole (FileSystem.writeAll: a short write goes on with the rest). A
    /// line that cannot be written (a full disk) is said once on standard error, and `failure`
    /// keeps why: the log of every result is part of the contract, so the run is not true.
    public func write(_ record: LogRecord) {
        guard let code = FileSystem.writeAll(fd, Array((record.json + "\n").utf8)) else { return }
        let text = "cannot write the log \(path): \(String(cString: strerror(code)))"
        let first = mutex.locked { () -> Bool in
            guard firstFailure == nil else { return false }
            firstFailure = text
            return true
        }
        if first { Console.write(Console.printable("hm: " + text + "; the run is not true\n"), to: STDERR_FILENO) }
    }

    /// Why a line could not be written, if one could not.
    public var failure: String? { mutex.locked { firstFailure } }
}
