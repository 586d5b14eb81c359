#if canImport(Glibc)
import Glibc
#endif

/// This process's descendants, read from /proc: what a step ending at its deadline must not
/// leave running as root (a maintainer script or a postgresql-common tool held by a FIFO of the
/// postgres account's would keep dpkg's lock, or its own, forever).
public enum ProcessTree {
    /// The pids of this process's descendants in its own session: a daemon that left the
    /// session (the postmaster pg_ctl starts calls setsid) is not one to kill.
    public static func descendants(of root: pid_t = getpid()) -> [pid_t] {
        guard let proc = opendir("/proc") else { return [] }
        defer { closedir(proc) }
        let session = getsid(root)
        var parents: [pid_t: (parent: pid_t, session: pid_t)] = [:]
        while let entry = readdir(proc) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix(while: { $0 != 0 }), as: UTF8.self)
            }
            guard let pid = pid_t(name), let stat = status(pid) else { continue }
            parents[pid] = stat
        }
        var found: [pid_t] = []
        var frontier: Set<pid_t> = [root]
        while !frontier.isEmpty {
            let children = parents.filter { frontier.contains($0.value.parent) && $0.value.session == session }.map(\.key)
            found += children
            frontier = Set(children)
        }
        return found
    }

    /// The parent and session of `pid` (/proc/<pid>/stat: after the command's closing
    /// parenthesis come the state, the parent, the process group and the session).
    static func status(_ pid: pid_t) -> (parent: pid_t, session: pid_t)? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, 1024) }
        guard n > 0 else { return nil }
        return parse(Array(buffer[0..<n]))
    }

    static func parse(_ bytes: [UInt8]) -> (parent: pid_t, session: pid_t)? {
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        let fields = bytes[(close + 1)...].split(separator: UInt8(ascii: " ")).map { String(decoding: $0, as: UTF8.self) }
        guard fields.count >= 4, let parent = pid_t(fields[1]), let session = pid_t(fields[3]) else { return nil }
        return (parent, session)
    }

    /// SIGKILL to every descendant (the deepest are found last; all are sent at once).
    public static func killDescendants() {
        for pid in descendants() { kill(pid, SIGKILL) }
    }
}
