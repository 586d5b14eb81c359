#if canImport(Glibc)
import Glibc
#endif

/// Which packages dpkg has installed, read from its database (`/var/lib/dpkg/status`) in this
/// process: what `dpkg-query --show` answers, without starting it (10-70 ms a call here, twice
/// per converged run of the postgres step). While dpkg has journal entries not yet merged into
/// the status file (`/var/lib/dpkg/updates/<number>`, after an interrupted dpkg), the file alone
/// is not the answer: nil, and the caller asks dpkg-query.
public enum DpkgStatus {
    public static let defaultDirectory = "/var/lib/dpkg"

    /// The names among `packages` that are installed ("install ok installed"); nil when the
    /// status file cannot be read or has pending updates.
    public static func installed(_ packages: Set<String>, directory: String = defaultDirectory) -> Set<String>? {
        guard !hasJournal(directory), let bytes = statusBytes(directory) else { return nil }
        return parse(bytes, wanted: packages)
    }

    /// Whether dpkg's journal (`updates/<number>`) holds entries not yet merged into the status
    /// file: dpkg was interrupted, or is at work.
    static func hasJournal(_ directory: String) -> Bool {
        guard let updates = try? OpenDirectory.openIfPresent(directory + "/updates", trust: .reading),
            let names = try? updates.list()
        else { return false }
        return names.contains { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
    }

    /// The status file's bytes (a regular file, read without following a link); nil when it
    /// cannot be read.
    static func statusBytes(_ directory: String) -> [UInt8]? {
        guard let database = try? OpenDirectory.openIfPresent(directory, trust: .reading),
            let entry = try? database.entry("status"), entry.kind == .file
        else { return nil }
        return try? database.readBytes("status")
    }

    /// The pid of a process that holds dpkg's lock (`lock-frontend`, then `lock`): a dpkg or apt
    /// at work, whose packages are half-installed or unpacked only for the moment, not an
    /// interrupted one. nil when nobody holds it. Read from /proc/locks by the files' device and
    /// inode: the files are not opened, since closing a descriptor of a file releases every
    /// fcntl lock the process holds on it (a test's, here).
    public static func lockHolder(directory: String = defaultDirectory) -> pid_t? {
        guard let text = try? FileSystem.readText("/proc/locks") else { return nil }
        for name in ["lock-frontend", "lock"] {
            var info = stat()
            guard lstat(directory + "/" + name, &info) == 0 else { continue }
            if let pid = holder(locks: text, device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) { return pid }
        }
        return nil
    }

    /// The pid of the first lock in /proc/locks' `text` on the file `device`/`inode` (not a
    /// waiter's, "->"): "1: POSIX  ADVISORY  WRITE 4242 fe:00:388779 0 EOF".
    static func holder(locks text: String, device: UInt64, inode: UInt64) -> pid_t? {
        let major = ((device >> 8) & 0xfff) | ((device >> 32) & ~0xfff)
        let minor = (device & 0xff) | ((device >> 12) & ~0xff)
        for line in text.split(separator: "\n") where !line.contains("->") {
            let fields = line.split(separator: " ")
            guard fields.count >= 6, let pid = pid_t(fields[4]) else { continue }
            let file = fields[5].split(separator: ":")
            guard file.count == 3, UInt64(file[0], radix: 16) == major, UInt64(file[1], radix: 16) == minor,
                UInt64(file[2]) == inode
            else { continue }
            return pid
        }
        return nil
    }

    /// What an interrupted dpkg left unfinished (what `dpkg --audit` reports, and what makes apt
    /// refuse every install with "dpkg was interrupted, you must manually run 'dpkg --configure
    /// -a'"): `journal` when updates/ holds entries not yet merged into the status file, and
    /// the packages whose state is neither installed nor not-installed nor config-files
    /// (half-installed, unpacked, half-configured, triggers-awaited, triggers-pending), or whose
    /// Status line says it must be reinstalled. nil when the status file cannot be read.
    public static func unfinished(directory: String = defaultDirectory) -> (journal: Bool, packages: [String])? {
        guard let bytes = statusBytes(directory) else { return nil }
        return (hasJournal(directory), unfinishedPackages(bytes))
    }

    /// The packages of a status file whose Status line is not one of a finished package (see
    /// `unfinished`): each "\nStatus: " line found by memchr, its stanza's Package line read
    /// only for those.
    static func unfinishedPackages(_ bytes: [UInt8]) -> [String] {
        let text = framed(bytes)
        let status = Array("\nStatus: ".utf8)
        // "<want> <flag> <state>": finished is flag ok with one of these states
        let finished: Set<Substring> = ["installed", "not-installed", "config-files"]
        var names: [String] = []
        text.withUnsafeBufferPointer { buffer in
            var from = 0
            while let hit = search(status, buffer, from: from, to: buffer.count) {
                let start = hit + status.count
                var end = start
                while end < buffer.count, buffer[end] != 10 { end += 1 }
                from = end
                let words = String(decoding: buffer[start..<end], as: UTF8.self).split(separator: " ")
                guard words.count != 3 || words[1] != "ok" || !finished.contains(words[2]) else { continue }
                // the stanza's Package line: back to the blank line before this one, then forward
                var stanza = hit
                while stanza > 0, !(buffer[stanza] == 10 && buffer[stanza - 1] == 10) { stanza -= 1 }
                let package = Array("\nPackage: ".utf8)
                if let at = search(package, buffer, from: stanza, to: end) {
                    var stop = at + package.count
                    while stop < buffer.count, buffer[stop] != 10 { stop += 1 }
                    names.append(String(decoding: buffer[(at + package.count)..<stop], as: UTF8.self))
                } else {
                    names.append("?")
                }
            }
        }
        return names
    }

    static func parse(_ text: String, wanted: Set<String>) -> Set<String> {
        parse(Array(text.utf8), wanted: wanted)
    }

    /// The wanted packages with a stanza whose Status is "install ok installed": each wanted
    /// name's "Package: <name>" line searched for (memchr and memcmp), its stanza (up to a blank
    /// line) searched for the Status line. (The file is 0.5-1 MB; splitting it into lines took
    /// 30 ms.)
    static func parse(_ bytes: [UInt8], wanted: Set<String>) -> Set<String> {
        var found: Set<String> = []
        let text = framed(bytes)
        let installed = Array("\nStatus: install ok installed\n".utf8)
        text.withUnsafeBufferPointer { buffer in
            for name in wanted {
                forEachStanza(of: name, in: buffer) { stanza in
                    guard search(installed, buffer, from: stanza.lowerBound, to: stanza.upperBound) != nil else { return false }
                    found.insert(name)
                    return true
                }
            }
        }
        return found
    }

    /// The state (the last word of `Status:`: installed, config-files, ...) and version that
    /// dpkg's status file records for `package` (its first stanza, any architecture), or nil
    /// when it has none. Unlike `installed`, pending journal entries are not looked at: this is
    /// what a step reports, not what it decides by.
    public static func record(of package: String, statusFile: String = defaultDirectory + "/status")
        -> (state: String, version: String)?
    {
        guard let text = try? FileSystem.readText(statusFile) else { return nil }
        return record(of: package, inStatus: text)
    }

    public static func record(of package: String, inStatus text: String) -> (state: String, version: String)? {
        var found: (state: String, version: String)?
        framed(Array(text.utf8)).withUnsafeBufferPointer { buffer in
            forEachStanza(of: package, in: buffer) { stanza in
                var state = "", version = ""
                for line in buffer[stanza].split(separator: UInt8(ascii: "\n")) {
                    if line.starts(with: "Status: ".utf8) {
                        state = String(decoding: line.split(separator: UInt8(ascii: " ")).last ?? [], as: UTF8.self)
                    } else if line.starts(with: "Version: ".utf8) {
                        version = String(decoding: line.dropFirst("Version: ".utf8.count), as: UTF8.self)
                    }
                }
                found = (state, version)
                return true
            }
        }
        return found
    }

    /// The status file's bytes with a leading newline (the first stanza's lines then look like
    /// every other's) and a blank line after the last stanza.
    static func framed(_ bytes: [UInt8]) -> [UInt8] {
        [UInt8(ascii: "\n")] + bytes + [UInt8(ascii: "\n"), UInt8(ascii: "\n")]
    }

    /// Calls `body` with each stanza (a range of `buffer`, a `framed` file) whose "Package:
    /// <name>" line names `name`, in order, until it returns true: the name's line searched for
    /// (memchr and memcmp), its stanza the lines from the blank line before it to the one after.
    /// (The file is 0.5-1 MB; splitting it into lines took 30 ms.)
    static func forEachStanza(of name: String, in buffer: UnsafeBufferPointer<UInt8>, _ body: (Range<Int>) -> Bool) {
        let needle = Array("\nPackage: \(name)\n".utf8)
        let blank = Array("\n\n".utf8)
        var from = 0
        while let hit = search(needle, buffer, from: from, to: buffer.count) {
            var start = hit
            while start > 0, !(buffer[start] == 10 && buffer[start - 1] == 10) { start -= 1 }
            let stop = search(blank, buffer, from: hit + 1, to: buffer.count).map { $0 + 1 } ?? buffer.count
            if body(start..<stop) { return }
            from = stop
        }
    }

    /// Where `needle` first is in buffer[from..<to]; nil when it is not.
    static func search(_ needle: [UInt8], _ buffer: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard let base = buffer.baseAddress, let first = needle.first, to - from >= needle.count else { return nil }
        var at = from
        while to - at >= needle.count {
            guard let hit = memchr(base + at, Int32(first), to - at - needle.count + 1) else { return nil }
            let offset = UnsafeRawPointer(hit) - UnsafeRawPointer(base)
            if needle.withUnsafeBytes({ memcmp(base + offset, $0.baseAddress!, needle.count) }) == 0 { return offset }
            at = offset + 1
        }
        return nil
    }
}
