#if canImport(Glibc)
import Glibc
#endif

/// Who besides root may own the directories on a path the suite writes through as root.
///
/// The rule: every directory on a path is root's (or, for a process that is not root, its own
/// account's) and not writable by group or others unless sticky (/tmp). Only the last
/// directories of a path that we expect to be another account's may be that account's: the
/// cluster's configuration tree (/etc/postgresql and below) is the cluster owner's.
public struct DirectoryTrust: Sendable, Equatable {
    /// The account trusted at and below `zone`, besides root.
    public var account: UInt32?
    public var zone: String
    /// For reads only: directories of any owner and mode (symbolic links are still refused).
    public var anyOwner: Bool

    /// Root's directories only (the default).
    public static let root = DirectoryTrust(account: nil, zone: "", anyOwner: false)
    /// For reads only (a postmaster.pid in a data directory the cluster owner owns).
    public static let reading = DirectoryTrust(account: nil, zone: "", anyOwner: true)

    /// Root's directories, and `uid`'s at and below `zone`.
    public static func account(_ uid: UInt32, from zone: String) -> DirectoryTrust {
        DirectoryTrust(account: uid, zone: zone, anyOwner: false)
    }

    /// Why a directory at `path` (its resolved location) with this status is not trusted; nil
    /// when it is. A process that is not root gains nothing by a write: it trusts every directory.
    func refusal(_ status: OpenDirectory.Entry, path: String, shown: String) -> String? {
        if anyOwner || geteuid() != 0 { return nil }
        let inZone = account != nil && !zone.isEmpty && (path == zone || path.hasPrefix(zone + "/"))
        if !(status.uid == 0 || status.uid == geteuid() || (inZone && status.uid == account)) {
            let trusted = inZone ? "root or \(OpenDirectory.userName(account!))" : "root"
            return "\(shown) is owned by \(OpenDirectory.userName(status.uid)), not \(trusted): the suite does not write "
                + "as root through a directory another account controls"
        }
        if status.mode & 0o022 != 0 && status.mode & UInt32(S_ISVTX) == 0 {
            return "\(shown) is writable by group or others (mode \(OpenDirectory.octal(status.mode))) and not sticky: "
                + "the suite does not write as root through it"
        }
        return nil
    }
}


/// An open directory reached from / component by component without following a link another
/// account could change (openat O_NOFOLLOW|O_DIRECTORY), and the file operations the steps
/// need relative to it: no-follow reads and stats, writes through an unpredictable temporary
/// name opened O_CREAT|O_EXCL|O_NOFOLLOW with fchmod/fchown on its descriptor and renameat in
/// the same directory, directories made with mkdirat and set up through their own descriptor,
/// and a removal by descriptors that stays on one file system. Every write and removal the
/// suite makes as root goes through here.
///
/// On the way from /, a symbolic link is followed only when root owns it and it lies in a
/// directory that root owns and nobody else may write (/var/run -> /run); any other link is
/// refused (a hostWrong Failure, naming it).
public final class OpenDirectory: @unchecked Sendable {
    /// The path as asked for (for messages).
    public let path: String
    /// Where it is, with the links on the way resolved (for the trust rule).
    public let resolvedPath: String
    public let trust: DirectoryTrust
    /// The directory's own status (fstat of its descriptor).
    public let status: Entry
    package let fd: Int32

    public struct Entry: Sendable, Equatable {
        public enum Kind: Sendable, Equatable {
            case file, directory, symlink, other
        }

        public let kind: Kind
        public let uid: UInt32
        public let gid: UInt32
        /// Permission bits (with setuid, setgid and sticky), e.g. 0o640.
        public let mode: UInt32
        public let device: UInt64
        public let inode: UInt64
        /// Modification time, seconds since the epoch with the fraction.
        public let modified: Double

        init(_ st: stat) {
            switch st.st_mode & S_IFMT {
            case S_IFREG: kind = .file
            case S_IFDIR: kind = .directory
            case S_IFLNK: kind = .symlink
            default: kind = .other
            }
            uid = st.st_uid
            gid = st.st_gid
            mode = UInt32(st.st_mode) & 0o7777
            device = UInt64(st.st_dev)
            inode = UInt64(st.st_ino)
            modified = Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9
        }
    }

    private init(fd: Int32, path: String, resolvedPath: String, trust: DirectoryTrust, status: Entry) {
        self.fd = fd
        self.path = path
        self.resolvedPath = resolvedPath
        self.trust = trust
        self.status = status
    }

    deinit { close(fd) }

    // MARK: reaching a directory

    /// Opens the directory `path` from /. A missing component is a Failure naming it; a
    /// link or an owner the trust rule refuses is a hostWrong Failure naming it.
    public static func open(_ path: String, trust: DirectoryTrust = .root) throws -> OpenDirectory {
        guard let found = try walk(path, trust: trust, create: nil) else {
            throw Failure("\(path) does not exist")
        }
        return found
    }

    /// The directory, or nil when it (or a directory above it) does not exist.
    public static func openIfPresent(_ path: String, trust: DirectoryTrust = .root) throws -> OpenDirectory? {
        try walk(path, trust: trust, create: nil)
    }

    /// `mkdir -p`: the directories missing on the way are made, root's (the caller's), with `mode`.
    public static func makePath(_ path: String, mode: UInt32 = 0o755, trust: DirectoryTrust = .root) throws
        -> OpenDirectory
    {
        guard let found = try walk(path, trust: trust, create: mode) else { throw Failure("\(path) does not exist") }
        return found
    }

    /// The directory part and the last name of a path to a file ("/etc/x/y" -> "/etc/x", "y").
    public static func split(_ path: String) throws -> (directory: String, name: String) {
        let full = absolute(path)
        guard let slash = full.lastIndex(of: "/") else { throw Failure("\(path): not a path") }
        let name = String(full[full.index(after: slash)...])
        guard isPlainName(name) else { throw Failure("\(path): not a path to a file") }
        let directory = String(full[..<slash])
        return (directory.isEmpty ? "/" : directory, name)
    }

    static func absolute(_ path: String) -> String {
        if path.hasPrefix("/") { return path }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "/" + path }
        let cwd = String(cString: buffer)
        return (cwd == "/" ? "" : cwd) + "/" + path
    }

    package static func isPlainName(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && !name.contains("/") && !name.contains("\0")
    }

    private static func walk(_ path: String, trust: DirectoryTrust, create mode: UInt32?) throws -> OpenDirectory? {
        let full = absolute(path)
        var pending = full.split(separator: "/").map(String.init)
        var fd = Glibc.open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure("cannot open /: \(FileSystem.errnoText())") }
        var status = try fstatus(fd, "/")
        var resolved = ""
        var links = 0
        let lenient = geteuid() != 0
        do {
            if let why = trust.refusal(status, path: "/", shown: "/") { throw Failure.hostWrong(why) }
            while !pending.isEmpty {
                let name = pending.removeFirst()
                if name.isEmpty || name == "." { continue }
                if name == ".." {
                    throw Failure("\(path): '..' on the way is not supported")
                }
                let here = resolved + "/" + name
                var next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if next < 0 && errno == ENOENT, let mode {
                    let made = mkdirat(fd, name, mode_t(0o700)) == 0
                    if !made && errno != EEXIST {
                        throw Failure("cannot create directory \(here): \(FileSystem.errnoText())")
                    }
                    next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                    // Made by us just now (ours, 0700): give it its mode on its descriptor.
                    if made && next >= 0 && fchmod(next, mode_t(mode)) != 0 {
                        let code = errno
                        close(next)
                        throw Failure("cannot set the mode of \(here): \(FileSystem.errnoText(code))")
                    }
                }
                if next < 0 {
                    let code = errno
                    if code == ENOENT { close(fd); return nil }
                    guard code == ELOOP || code == ENOTDIR else {
                        throw Failure("cannot open \(here): \(FileSystem.errnoText(code))")
                    }
                    var st = stat()
                    guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                        throw Failure("cannot open \(here): \(FileSystem.errnoText())")
                    }
                    let entry = Entry(st)
                    guard entry.kind == .symlink else { throw Failure("\(here) is not a directory") }
                    guard lenient || (entry.uid == 0 && status.uid == 0 && status.mode & 0o022 == 0) else {
                        throw Failure.hostWrong(
                            "\(here) is a symbolic link (owned by \(userName(entry.uid))) where a directory should be: "
                                + "refused, the suite does not follow a link another account can change; replace it with "
                                + "the directory itself")
                    }
                    links += 1
                    guard links <= 40 else { throw Failure("\(path): too many symbolic links") }
                    let target = try readLink(fd, name, here)
                    if target.hasPrefix("/") {
                        let root = Glibc.open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
                        guard root >= 0 else { throw Failure("cannot open /: \(FileSystem.errnoText())") }
                        close(fd)
                        fd = root
                        status = try fstatus(fd, "/")
                        resolved = ""
                    }
                    pending = target.split(separator: "/").map(String.init) + pending
                    continue
                }
                let entry: Entry
                do { entry = try fstatus(next, here) } catch {
                    close(next)
                    throw error
                }
                if let why = trust.refusal(entry, path: here, shown: here) {
                    close(next)
                    throw Failure.hostWrong(why)
                }
                close(fd)
                fd = next
                status = entry
                resolved = here
            }
        } catch {
            close(fd)
            throw error
        }
        return OpenDirectory(
            fd: fd, path: full, resolvedPath: resolved.isEmpty ? "/" : resolved, trust: trust, status: status)
    }

    private static func fstatus(_ fd: Int32, _ path: String) throws -> Entry {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw Failure("cannot stat \(path): \(FileSystem.errnoText())") }
        return Entry(st)
    }

    private static func readLink(_ fd: Int32, _ name: String, _ shown: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: 4097)
        let n = readlinkat(fd, name, &buffer, 4096)
        guard n > 0 else { throw Failure("cannot read the link \(shown): \(FileSystem.errnoText())") }
        return String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    package static func userName(_ uid: UInt32) -> String {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        if getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil {
            return "\(String(cString: entry.pw_name)) (uid \(uid))"
        }
        return "uid \(uid)"
    }

    package static func octal(_ mode: UInt32) -> String {
        let digits = String(mode, radix: 8)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }

    func child(_ name: String) -> String { (path == "/" ? "" : path) + "/" + name }

    private func plain(_ name: String) throws {
        guard Self.isPlainName(name) else { throw Failure("\(child(name)): not a plain name") }
    }

    // MARK: reading

    /// The entry `name` as it is (a link is a link: not followed); nil when there is none.
    public func entry(_ name: String) throws -> Entry? {
        try plain(name)
        var st = stat()
        guard fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
            if errno == ENOENT { return nil }
            throw Failure("cannot stat \(child(name)): \(FileSystem.errnoText())")
        }
        return Entry(st)
    }

    /// How much `readBytes` reads at most unless told otherwise. The files the suite reads as
    /// root may be another account's (the cluster's configuration tree, a data directory): a
    /// sparse file of a terabyte there costs that account nothing, and read whole it would take
    /// root's process all the memory of the host.
    public static let defaultReadLimit = 64 << 20

    /// The bytes of the regular file `name`; a link or anything else is an error naming it, and
    /// so is a file of more than `limit` bytes (not read).
    public func readBytes(_ name: String, limit: Int = OpenDirectory.defaultReadLimit) throws -> [UInt8] {
        try plain(name)
        let file = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard file >= 0 else {
            let code = errno
            if code == ELOOP { throw Failure("\(child(name)) is a symbolic link: not read") }
            throw Failure("\(child(name)): \(FileSystem.errnoText(code))")
        }
        defer { close(file) }
        var st = stat()
        guard fstat(file, &st) == 0, st.st_mode & S_IFMT == S_IFREG else {
            throw Failure("\(child(name)) is not a regular file: not read")
        }
        func tooLarge() -> Failure {
            Failure.tooLarge("\(child(name)) is larger than \(limit) bytes: not read")
        }
        guard Int(st.st_size) <= limit else { throw tooLarge() }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(file, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw Failure("\(child(name)): \(FileSystem.errnoText())")
            }
            if n == 0 { break }
            // (it may grow while it is read)
            guard bytes.count + n <= limit else { throw tooLarge() }
            bytes.append(contentsOf: buffer[0..<n])
        }
        return bytes
    }

    public func readText(_ name: String, limit: Int = OpenDirectory.defaultReadLimit) throws -> String {
        String(decoding: try readBytes(name, limit: limit), as: UTF8.self)
    }

    /// The text of `name` when it is a regular file; nil when it is missing or anything else (a
    /// link in its place is not a file of ours: a check then reports it as not right).
    public func textIfFile(_ name: String, limit: Int = OpenDirectory.defaultReadLimit) throws -> String? {
        guard let found = try entry(name), found.kind == .file else { return nil }
        return try readText(name, limit: limit)
    }

    /// Whether `name` is a regular file holding exactly `text`: missing, anything else, or a
    /// larger file (not read) is false — for a file of ours that the check compares and the
    /// apply replaces whole, in a directory another account may fill.
    public func holds(_ name: String, _ text: String) throws -> Bool {
        guard let found = try entry(name), found.kind == .file else { return false }
        do { return try readText(name, limit: text.utf8.count) == text } catch let error as Failure where error.kind == .tooLarge { return false }
    }

    /// Names in the directory, sorted, without `.` and `..`.
    public func list() throws -> [String] {
        try Self.names(fd, path)
    }

    private static func names(_ fd: Int32, _ path: String) throws -> [String] {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0, let dir = fdopendir(copy) else {
            if copy >= 0 { close(copy) }
            throw Failure("cannot list \(path): \(FileSystem.errnoText())")
        }
        defer { closedir(dir) }
        rewinddir(dir)
        var names: [String] = []
        while let item = readdir(dir) {
            let name = withUnsafePointer(to: item.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }

    // MARK: writing

    /// Replaces `name` whole: the content goes to a new file of an unpredictable name opened
    /// O_CREAT|O_EXCL|O_NOFOLLOW in this directory, is written whole and synced, gets its owner
    /// and mode on its descriptor, and is renamed over `name` (a link there is replaced, never
    /// followed). A reader sees the old content or the new, never half.
    public func write(_ name: String, _ text: String, mode: UInt32 = 0o644, uid: UInt32? = nil, gid: UInt32? = nil)
        throws
    {
        try write(name, bytes: Array(text.utf8), mode: mode, uid: uid, gid: gid)
    }

    public func write(_ name: String, bytes: [UInt8], mode: UInt32 = 0o644, uid: UInt32? = nil, gid: UInt32? = nil)
        throws
    {
        try plain(name)
        var temp = ""
        var file: Int32 = -1
        for _ in 0..<16 {
            temp = ".\(name).hm-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
            file = openat(fd, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode_t(0o600))
            if file >= 0 || errno != EEXIST { break }
        }
        guard file >= 0 else { throw Failure("cannot write \(child(name)): \(FileSystem.errnoText())") }
        func fail(_ what: String, _ code: Int32 = errno) -> Failure {
            close(file)
            unlinkat(fd, temp, 0)
            return Failure("cannot \(what) \(child(name)): \(FileSystem.errnoText(code))")
        }
        if let code = FileSystem.writeAll(file, bytes) { throw fail("write", code) }
        guard fsync(file) == 0 else { throw fail("sync") }
        if uid != nil || gid != nil {
            guard fchown(file, uid ?? UInt32.max, gid ?? UInt32.max) == 0 else { throw fail("set the owner of") }
        }
        guard fchmod(file, mode_t(mode)) == 0 else { throw fail("set the mode of") }
        guard close(file) == 0 else {
            let code = errno
            unlinkat(fd, temp, 0)
            throw Failure("cannot write \(child(name)): \(FileSystem.errnoText(code))")
        }
        guard renameat(fd, temp, fd, name) == 0 else {
            let code = errno
            unlinkat(fd, temp, 0)
            throw Failure("cannot replace \(child(name)): \(FileSystem.errnoText(code))")
        }
        removeStaleTemporaries(of: name)
        fsync(fd)
    }

    /// The temporary files of earlier writes of `name` that were cut before their rename (a
    /// power cut, `kill -9`): `.<name>.hm-<hex>`, removed by name in this directory (never
    /// followed). Such a cut leaves `name` as it was, so the rerun writes it again, and this
    /// then leaves no half-written file of ours behind.
    func removeStaleTemporaries(of name: String) {
        let prefix = ".\(name).hm-"
        guard let names = try? list() else { return }
        for entry in names where entry.hasPrefix(prefix) && entry.count > prefix.count {
            let suffix = entry.dropFirst(prefix.count)
            guard suffix.count <= 16, suffix.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) else { continue }
            unlinkat(fd, entry, 0)
        }
    }

    /// The directory `name` below this one, or nil when there is none. A link in its place, or
    /// an owner the trust rule refuses, is a hostWrong Failure naming it.
    public func directory(_ name: String) throws -> OpenDirectory? {
        try plain(name)
        let next = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard next >= 0 else {
            let code = errno
            if code == ENOENT { return nil }
            if code == ELOOP || code == ENOTDIR {
                if let found = try entry(name), found.kind == .symlink {
                    throw Failure.hostWrong(
                        "\(child(name)) is a symbolic link (owned by \(Self.userName(found.uid))) where a directory "
                            + "should be: refused, the suite does not follow a link another account can change; "
                            + "replace it with the directory itself")
                }
                throw Failure.hostWrong("\(child(name)) is not a directory")
            }
            throw Failure("cannot open \(child(name)): \(FileSystem.errnoText(code))")
        }
        let st: Entry
        do { st = try Self.fstatus(next, child(name)) } catch {
            close(next)
            throw error
        }
        let resolved = (resolvedPath == "/" ? "" : resolvedPath) + "/" + name
        if let why = trust.refusal(st, path: resolved, shown: child(name)) {
            close(next)
            throw Failure.hostWrong(why)
        }
        return OpenDirectory(fd: next, path: child(name), resolvedPath: resolved, trust: trust, status: st)
    }

    /// The directory `name`, made (mkdirat) when missing, then given its owner and mode on its
    /// own descriptor. A link in its place, or an existing directory the trust rule refuses, is
    /// refused (a hostWrong Failure naming it).
    public func makeDirectory(_ name: String, mode: UInt32 = 0o755, uid: UInt32? = nil, gid: UInt32? = nil) throws
        -> OpenDirectory
    {
        try plain(name)
        if mkdirat(fd, name, mode_t(0o700)) != 0 && errno != EEXIST {
            throw Failure("cannot create directory \(child(name)): \(FileSystem.errnoText())")
        }
        guard let made = try directory(name) else { throw Failure("\(child(name)) vanished while being made") }
        if (uid != nil && made.status.uid != uid!) || (gid != nil && made.status.gid != gid!) {
            guard fchown(made.fd, uid ?? UInt32.max, gid ?? UInt32.max) == 0 else {
                throw Failure("cannot set the owner of \(made.path): \(FileSystem.errnoText())")
            }
        }
        if made.status.mode != mode {
            guard fchmod(made.fd, mode_t(mode)) == 0 else {
                throw Failure("cannot set the mode of \(made.path): \(FileSystem.errnoText())")
            }
        }
        // The status as it is now. The owner given is the one wanted (another account's, say):
        // the handle is not refused for it.
        let copy = fcntl(made.fd, F_DUPFD_CLOEXEC, 0)
        guard copy >= 0 else { throw Failure("cannot open \(made.path): \(FileSystem.errnoText())") }
        let now: Entry
        do { now = try Self.fstatus(copy, made.path) } catch {
            close(copy)
            throw error
        }
        return OpenDirectory(fd: copy, path: made.path, resolvedPath: made.resolvedPath, trust: trust, status: now)
    }

    /// Sets the owner and mode of the entry `name` (a file or a directory) on its own
    /// descriptor; a link there is refused, never followed. With `owner`, the entry must be that
    /// uid's already (a directory another account made is not adopted).
    public func setOwner(_ name: String, uid: UInt32, gid: UInt32, mode: UInt32, owner: UInt32? = nil) throws {
        try plain(name)
        let target = openat(fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
        guard target >= 0 else {
            if errno == ELOOP { throw Failure.hostWrong("\(child(name)) is a symbolic link: refused, not followed") }
            throw Failure("cannot open \(child(name)): \(FileSystem.errnoText())")
        }
        defer { close(target) }
        let st = try Self.fstatus(target, child(name))
        guard st.kind == .file || st.kind == .directory else {
            throw Failure.hostWrong("\(child(name)) is neither a file nor a directory: refused")
        }
        if let owner, st.uid != owner {
            throw Failure.hostWrong("\(child(name)) is owned by \(Self.userName(st.uid)), not \(Self.userName(owner)): not adopted")
        }
        guard fchown(target, uid, gid) == 0, fchmod(target, mode_t(mode)) == 0 else {
            throw Failure("cannot set the owner and mode of \(child(name)): \(FileSystem.errnoText())")
        }
    }

    // MARK: removing

    /// Removes the file or link `name` (a link itself, never what it points to); nothing when
    /// there is none.
    public func remove(_ name: String) throws {
        try plain(name)
        guard unlinkat(fd, name, 0) == 0 || errno == ENOENT else {
            throw Failure("cannot remove \(child(name)): \(FileSystem.errnoText())")
        }
    }

    /// Removes `name` and everything below it by descriptors: a link is removed itself, never
    /// followed, and a directory on another file system (a mount point) stops the removal,
    /// named. With `owner`, the directory `name` must be that uid's; with `directoryOnly`, a
    /// `name` that is not a directory (a link in its place) is refused, not removed. Nothing
    /// when there is none.
    public func removeTree(_ name: String, owner: UInt32? = nil, directoryOnly: Bool = false) throws {
        try plain(name)
        guard let found = try entry(name) else { return }
        func refuse(_ kind: Entry.Kind) -> Failure {
            Failure.hostWrong(
                "\(child(name)) is \(kind == .symlink ? "a symbolic link" : "not a directory"): not followed, not removed")
        }
        guard found.kind == .directory else {
            if directoryOnly { throw refuse(found.kind) }
            try remove(name)
            return
        }
        let top = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else {
            if errno == ENOENT { return }
            if errno == ELOOP || errno == ENOTDIR {
                // Replaced meanwhile: never followed.
                if directoryOnly { throw refuse(try entry(name)?.kind ?? .other) }
                return try remove(name)
            }
            throw Failure("cannot open \(child(name)): \(FileSystem.errnoText())")
        }
        defer { close(top) }
        let st = try Self.fstatus(top, child(name))
        if let owner, st.uid != owner {
            throw Failure.hostWrong("\(child(name)) is owned by \(Self.userName(st.uid)), not \(Self.userName(owner)): not removed")
        }
        for attempt in 0..<3 {
            try Self.removeContents(top, device: st.device, path: child(name))
            if unlinkat(fd, name, AT_REMOVEDIR) == 0 || errno == ENOENT { return }
            // Something was added meanwhile (its owner may still be at work): once more.
            if errno != ENOTEMPTY || attempt == 2 {
                throw Failure("cannot remove \(child(name)): \(FileSystem.errnoText())")
            }
        }
    }

    private static func removeContents(_ dirfd: Int32, device: UInt64, path: String) throws {
        for name in try names(dirfd, path) {
            var st = stat()
            guard fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 else {
                if errno == ENOENT { continue }
                throw Failure("cannot stat \(path)/\(name): \(FileSystem.errnoText())")
            }
            if st.st_mode & S_IFMT == S_IFDIR {
                let sub = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                if sub < 0 {
                    if errno == ENOENT { continue }
                    guard errno == ELOOP || errno == ENOTDIR else {
                        throw Failure("cannot open \(path)/\(name): \(FileSystem.errnoText())")
                    }
                    // Replaced by a link or a file meanwhile: that is removed, not followed.
                    if unlinkat(dirfd, name, 0) != 0 && errno != ENOENT {
                        throw Failure("cannot remove \(path)/\(name): \(FileSystem.errnoText())")
                    }
                    continue
                }
                defer { close(sub) }
                let inner = try fstatus(sub, "\(path)/\(name)")
                guard inner.device == device else {
                    throw Failure(
                        "\(path)/\(name) is on another file system (a mount point): not removed; unmount it and rerun")
                }
                try removeContents(sub, device: device, path: "\(path)/\(name)")
                if unlinkat(dirfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT {
                    throw Failure("cannot remove \(path)/\(name): \(FileSystem.errnoText())")
                }
            } else if unlinkat(dirfd, name, 0) != 0 && errno != ENOENT {
                throw Failure("cannot remove \(path)/\(name): \(FileSystem.errnoText())")
            }
        }
    }
}
