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

    /// The target of the symbolic link `path`; nil when it is none.
    public static func readLink(_ path: String) -> String? {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlink(path, &buffer, 4096)
        guard n > 0 else { return nil }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public static func status(_ path: String) -> Status? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Status(
            uid: st.st_uid, gid: st.st_gid, mode: UInt32(st.st_mode) & 0o7777,
            isDirectory: (st.st_mode & S_IFMT) == S_IFDIR)
    }

    /// Writes every byte of `bytes` to `fd`: a short write goes on with the rest, a write
    /// interrupted by a signal (EINTR) is made again, and a non-blocking descriptor that is full
    /// (EAGAIN) is waited for (poll). nil when all was written, else the errno of the failure
    /// (EIO when the descriptor took nothing and said no more).
    @discardableResult
    public static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Int32? {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 {
                offset += n
                continue
            }
            guard n < 0 else { return EIO }
            let code = errno
            if code == EINTR { continue }
            guard code == EAGAIN || code == EWOULDBLOCK else { return code }
            var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            if poll(&ready, 1, -1) < 0 && errno != EINTR { return errno }
        }
        return nil
    }

    public static func readBytes(_ path: String) throws(Failure) -> [UInt8] {
        try readFile(path).bytes
    }

    /// A regular file's bytes, and its owner and mode, from one descriptor: what is checked is
    /// what was read.
    public static func readFile(_ path: String) throws(Failure) -> (bytes: [UInt8], status: Status) {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure("\(path): \(errnoText())") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw Failure("\(path): not a regular file")
        }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure("\(path): \(errnoText())")
            }
            if n == 0 { break }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return (bytes, Status(uid: st.st_uid, gid: st.st_gid, mode: UInt32(st.st_mode) & 0o7777, isDirectory: false))
    }

    public static func readText(_ path: String) throws(Failure) -> String {
        String(decoding: try readBytes(path), as: UTF8.self)
    }

    /// Writes a whole file through its directory's handle (OpenDirectory.write: an
    /// unpredictable temporary name opened O_EXCL|O_NOFOLLOW, owner and mode set on its
    /// descriptor, renamed over the file), its directory reached by the trust rule.
    public static func writeAtomically(
        _ path: String, _ text: String, mode: UInt32 = 0o644, uid: UInt32? = nil, gid: UInt32? = nil,
        trust: DirectoryTrust = .root
    ) throws(Failure) {
        do {
            let (directory, name) = try OpenDirectory.split(path)
            try OpenDirectory.open(directory, trust: trust).write(name, text, mode: mode, uid: uid, gid: gid)
        } catch { throw Failure("\(error)") }
    }

    /// `mkdir -p` through handles: the directories it makes get `mode`.
    public static func makeDirectories(_ path: String, mode: UInt32 = 0o755, trust: DirectoryTrust = .root)
        throws(Failure)
    {
        do { _ = try OpenDirectory.makePath(path, mode: mode, trust: trust) } catch { throw Failure("\(error)") }
    }

    /// Sets owner and mode on the file or directory's own descriptor (a link there is refused).
    public static func setOwner(
        _ path: String, uid: UInt32, gid: UInt32, mode: UInt32, trust: DirectoryTrust = .root
    ) throws(Failure) {
        do {
            let (directory, name) = try OpenDirectory.split(path)
            try OpenDirectory.open(directory, trust: trust).setOwner(name, uid: uid, gid: gid, mode: mode)
        } catch { throw Failure("\(error)") }
    }

    /// Removes a file or a link (never what it points to); nothing when it is not there.
    public static func remove(_ path: String, trust: DirectoryTrust = .root) {
        guard let (directory, name) = try? OpenDirectory.split(path),
            let handle = try? OpenDirectory.openIfPresent(directory, trust: trust)
        else { return }
        try? handle.remove(name)
    }

    /// Names in a directory, sorted, without `.` and `..`.
    public static func list(_ path: String) throws(Failure) -> [String] {
        guard let dir = opendir(path) else { throw Failure("cannot list \(path): \(errnoText())") }
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
