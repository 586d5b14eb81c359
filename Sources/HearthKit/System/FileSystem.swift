#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file operations the steps need, on Glibc directly.
public enum FileSystem {
    public static func errnoText(_ code: Int32 = errno) -> String {
        String(cString: strerror(code))
    }

    public static func exists(_ path: String) -> Bool {
        access(path, F_OK) == 0
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    public struct Status: Sendable, Equatable {
        public let uid: UInt32
        public let gid: UInt32
        /// Permission bits only (e.g. 0o640).
        public let mode: UInt32
        public let isDirectory: Bool
    }

    public static func status(_ path: String) -> Status? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Status(
            uid: st.st_uid, gid: st.st_gid, mode: UInt32(st.st_mode) & 0o7777,
            isDirectory: (st.st_mode & S_IFMT) == S_IFDIR)
    }

    public static func readBytes(_ path: String) throws(HearthError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw HearthError("\(path): \(errnoText())") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw HearthError("\(path): \(errnoText())")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return bytes
    }

    public static func readText(_ path: String) throws(HearthError) -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// Writes a whole file through a temporary file and rename, so a reader sees the old
    /// content or the new one, never half; mode and owner are set before the rename.
    public static func writeAtomically(
        _ path: String, _ text: String, mode: UInt32 = 0o644, uid: UInt32? = nil, gid: UInt32? = nil
    ) throws(HearthError) {
        let temp = "\(path).hm-tmp-\(getpid())"
        let fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode_t(0o600))
        guard fd >= 0 else { throw HearthError("cannot write \(temp): \(errnoText())") }
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                let why = errnoText()
                close(fd)
                unlink(temp)
                throw HearthError("cannot write \(temp): \(why)")
            }
            offset += n
        }
        bytes.removeAll()
        let synced = fsync(fd) == 0
        close(fd)
        guard synced,
            chmod(temp, mode_t(mode)) == 0,
            (uid == nil && gid == nil) || chown(temp, uid ?? UInt32.max, gid ?? UInt32.max) == 0
        else {
            let why = errnoText()
            unlink(temp)
            throw HearthError("cannot prepare \(path): \(why)")
        }
        guard rename(temp, path) == 0 else {
            let why = errnoText()
            unlink(temp)
            throw HearthError("cannot replace \(path): \(why)")
        }
    }

    /// `mkdir -p` with a mode for the directories it creates.
    public static func makeDirectories(_ path: String, mode: UInt32 = 0o755) throws(HearthError) {
        var current = path.hasPrefix("/") ? "" : "."
        for part in path.split(separator: "/") {
            current += "/" + part
            if isDirectory(current) { continue }
            if mkdir(current, mode_t(mode)) != 0 && errno != EEXIST {
                throw HearthError("cannot create directory \(current): \(errnoText())")
            }
        }
    }

    public static func setOwner(_ path: String, uid: UInt32, gid: UInt32, mode: UInt32) throws(HearthError) {
        guard chown(path, uid, gid) == 0, chmod(path, mode_t(mode)) == 0 else {
            throw HearthError("cannot set owner and mode of \(path): \(errnoText())")
        }
    }

    public static func remove(_ path: String) {
        unlink(path)
    }

    /// Names in a directory, sorted, without `.` and `..`.
    public static func list(_ path: String) throws(HearthError) -> [String] {
        guard let dir = opendir(path) else { throw HearthError("cannot list \(path): \(errnoText())") }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}

/// The process environment as a dictionary.
public func currentEnvironment() -> [String: String] {
    var result: [String: String] = [:]
    var pointer = environ
    while let entry = pointer.pointee {
        let text = String(cString: entry)
        if let eq = text.firstIndex(of: "=") {
            result[String(text[..<eq])] = String(text[text.index(after: eq)...])
        }
        pointer += 1
    }
    return result
}
