#if canImport(Glibc)
import Glibc
#endif

/// One run at a time: an exclusive flock on /run/hearthminds/bootstrap.lock, a directory only
/// root may enter (made 0700, root's; refused when it is a link or another account's), so no
/// local user can hold every run off or point the lock at a file of root's.
///
/// install.sh takes it and runs each step with its descriptor, named in HEARTHMINDS_LOCK_FD:
/// the step checks that the descriptor is the lock file (device and inode) and holds it (a
/// flock on the same open file description succeeds), and so does not wait for itself. A step
/// run directly takes the lock itself. Either way the descriptor is close-on-exec from then on:
/// no daemon a step starts (the postmaster, where no systemd runs) keeps it.
public enum RunLock {
    public static let directory = "/run/hearthminds"
    public static let fileName = "bootstrap.lock"
    /// The environment variable install.sh names its lock descriptor in.
    public static let descriptorVariable = "HEARTHMINDS_LOCK_FD"
    public static var path: String { directory + "/" + fileName }

    public enum Outcome: Equatable, Sendable {
        /// Held through this descriptor (kept open until the process ends).
        case held(descriptor: Int32, inherited: Bool)
        /// Another run holds it.
        case busy
    }

    /// The descriptor this process holds the lock through (never closed: the lock ends with
    /// the process).
    nonisolated(unsafe) static var held: Int32 = -1

    /// The environment variable that names another lock directory (tests use a private one;
    /// install.sh honours it too).
    public static let directoryVariable = "HEARTHMINDS_LOCK_DIR"

    /// Takes the lock in `directory` (default: HEARTHMINDS_LOCK_DIR, else /run/hearthminds). A
    /// lock directory or file that fails the rules is an error naming it.
    public static func acquire(environment: [String: String], directory: String? = nil) throws -> Outcome {
        let directory = directory ?? environment[directoryVariable].flatMap { $0.isEmpty ? nil : $0 } ?? RunLock.directory
        let (parentPath, name) = try OpenDirectory.split(directory)
        // /run: root's and nobody else's to write; then our directory, root's, 0700.
        let parent = try OpenDirectory.open(parentPath)
        let lockDirectory = try parent.makeDirectory(name, mode: 0o700, uid: 0, gid: 0)
        guard lockDirectory.status.uid == 0 || lockDirectory.status.uid == geteuid() else {
            throw Failure.hostWrong("\(directory) is owned by \(OpenDirectory.userName(lockDirectory.status.uid)), not root")
        }
        let shown = directory + "/" + fileName

        if let text = environment[descriptorVariable], !text.isEmpty {
            guard let fd = Int32(text), fd > 2 else {
                throw Failure("\(descriptorVariable)=\(text) is not a descriptor number")
            }
            var st = stat()
            guard fstat(fd, &st) == 0 else {
                throw Failure("\(descriptorVariable)=\(fd) is not an open descriptor (\(FileSystem.errnoText()))")
            }
            guard let file = try lockDirectory.entry(fileName), file.kind == .file,
                file.device == UInt64(st.st_dev), file.inode == UInt64(st.st_ino)
            else {
                throw Failure("\(descriptorVariable)=\(fd) is not the lock file \(shown)")
            }
            guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
                if errno == EWOULDBLOCK { return .busy }
                throw Failure("cannot lock \(shown): \(FileSystem.errnoText())")
            }
            guard fcntl(fd, F_SETFD, FD_CLOEXEC) == 0 else {
                throw Failure("cannot set close-on-exec on \(descriptorVariable)=\(fd): \(FileSystem.errnoText())")
            }
            held = fd
            return .held(descriptor: fd, inherited: true)
        }

        let fd = openat(
            lockDirectory.fd, fileName, O_RDWR | O_CREAT | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC, mode_t(0o600))
        guard fd >= 0 else {
            if errno == ELOOP { throw Failure.hostWrong("\(shown) is a symbolic link: refused") }
            throw Failure("cannot open the lock \(shown): \(FileSystem.errnoText())")
        }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG, st.st_uid == geteuid() else {
            close(fd)
            throw Failure.hostWrong("\(shown) is not a regular file of root's: refused")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { return .busy }
            throw Failure("cannot lock \(shown): \(FileSystem.errnoText(code))")
        }
        held = fd
        return .held(descriptor: fd, inherited: false)
    }
}
