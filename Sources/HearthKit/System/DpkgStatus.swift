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
        if let updates = try? OpenDirectory.openIfPresent(directory + "/updates", trust: .reading),
            let names = try? updates.list(), names.contains(where: { !$0.isEmpty && $0.allSatisfy(\.isNumber) })
        {
            return nil
        }
        guard let database = try? OpenDirectory.openIfPresent(directory, trust: .reading),
            let entry = try? database.entry("status"), entry.kind == .file,
            let bytes = try? database.readBytes("status")
        else { return nil }
        return parse(bytes, wanted: packages)
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
        // A leading newline makes the first stanza's lines look like every other's.
        let text = [UInt8(ascii: "\n")] + bytes + [UInt8(ascii: "\n"), UInt8(ascii: "\n")]
        let installed = Array("\nStatus: install ok installed\n".utf8)
        let blank = Array("\n\n".utf8)
        text.withUnsafeBufferPointer { buffer in
            for name in wanted {
                let needle = Array("\nPackage: \(name)\n".utf8)
                var from = 0
                while let hit = search(needle, buffer, from: from, to: buffer.count) {
                    // The stanza: back to the blank line before it, on to the blank line after it.
                    var start = hit
                    while start > 0, !(buffer[start] == 10 && buffer[start - 1] == 10) { start -= 1 }
                    let stop = search(blank, buffer, from: hit + 1, to: buffer.count).map { $0 + 1 } ?? buffer.count
                    if search(installed, buffer, from: start, to: stop) != nil {
                        found.insert(name)
                        break
                    }
                    from = stop
                }
            }
        }
        return found
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
