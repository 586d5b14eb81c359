import HearthSystem
#if canImport(Glibc)
import Glibc
#endif

/// The machine the server is sized for (issue 24): its memory (/proc/meminfo's MemTotal, capped
/// by the memory.max of this process's cgroup and its ancestors), its cores (the CPUs this
/// process may run on, capped by the cgroup's cpu.max quota) and whether its disks spin.
/// `root` prefixes every path read, so that a test reads a machine of its own making.
public struct MachineSize: Sendable, Equatable, CustomStringConvertible {
    public var memoryBytes: Int
    public var cores: Int
    /// True only when every disk the kernel lists says it rotates (no SSD seen).
    public var rotational: Bool

    public init(memoryBytes: Int, cores: Int, rotational: Bool = false) {
        self.memoryBytes = memoryBytes
        self.cores = cores
        self.rotational = rotational
    }

    public var memoryMB: Int { memoryBytes >> 20 }

    public var description: String {
        let gib = Double(memoryBytes) / Double(1 << 30)
        let shown = (gib * 10).rounded() / 10
        return "\(shown) GiB, \(cores) core\(cores == 1 ? "" : "s")\(rotational ? ", rotating disks" : "")"
    }

    public static func detect(root: String = "") -> MachineSize {
        MachineSize(memoryBytes: memory(root: root), cores: cores(root: root), rotational: rotational(root: root))
    }

    // MARK: memory

    static func memory(root: String) -> Int {
        var bytes = memTotal(root: root) ?? Int(sysconf(Int32(_SC_PHYS_PAGES))) * Int(sysconf(Int32(_SC_PAGESIZE)))
        // v2: memory.max ("max" or bytes); v1: memory.limit_in_bytes (a huge number when none)
        let files = cgroupDirectories(root: root, controller: nil).map { $0 + "/memory.max" }
            + cgroupDirectories(root: root, controller: "memory").map { $0 + "/memory.limit_in_bytes" }
        for file in files {
            if let limit = read(file).flatMap({ Int($0.trimmingCharacters(in: " \n")) }), limit > 0 {
                bytes = min(bytes, limit)
            }
        }
        return bytes
    }

    static func memTotal(root: String) -> Int? {
        guard let text = read(root + "/proc/meminfo") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("MemTotal:") {
            let fields = line.split(separator: " ")
            if fields.count >= 2, let kB = Int(fields[1]) { return kB * 1024 }
        }
        return nil
    }

    // MARK: cores

    static func cores(root: String) -> Int {
        var count = allowedCPUs(root: root) ?? Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
        var quotas: [(quota: String?, period: String?)] = []
        // v2: cpu.max, "max 100000" (no quota) or "<quota> <period>"
        for directory in cgroupDirectories(root: root, controller: nil) {
            let fields = read(directory + "/cpu.max")?.split(whereSeparator: { $0 == " " || $0 == "\n" }) ?? []
            if fields.count >= 2 { quotas.append((String(fields[0]), String(fields[1]))) }
        }
        // v1: cpu.cfs_quota_us (-1: none) and cpu.cfs_period_us
        for directory in cgroupDirectories(root: root, controller: "cpu") {
            quotas.append((read(directory + "/cpu.cfs_quota_us"), read(directory + "/cpu.cfs_period_us")))
        }
        for (quotaText, periodText) in quotas {
            guard let quota = quotaText.flatMap({ Int($0.trimmingCharacters(in: " \n")) }),
                let period = periodText.flatMap({ Int($0.trimmingCharacters(in: " \n")) }), quota > 0, period > 0
            else { continue }
            count = min(count, (quota + period - 1) / period)
        }
        return max(1, count)
    }

    /// Cpus_allowed_list of /proc/self/status ("0-3,8"): the CPUs this process may run on.
    static func allowedCPUs(root: String) -> Int? {
        guard let text = read(root + "/proc/self/status") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            let list = String(line.dropFirst("Cpus_allowed_list:".count)).trimmingCharacters(in: " \t")
            return cpuListCount(list)
        }
        return nil
    }

    static func cpuListCount(_ list: String) -> Int? {
        var count = 0
        for part in list.split(separator: ",") {
            let bounds = part.split(separator: "-")
            if bounds.count == 1, Int(bounds[0]) != nil {
                count += 1
            } else if bounds.count == 2, let low = Int(bounds[0]), let high = Int(bounds[1]), high >= low {
                count += high - low + 1
            } else {
                return nil
            }
        }
        return count > 0 ? count : nil
    }

    // MARK: disks

    /// /sys/block/*/queue/rotational of the real disks (not loop, ram or zram devices, nor
    /// virtual ones whose flag is the kernel's default): true only when each of those rotates.
    static func rotational(root: String) -> Bool {
        guard let devices = try? FileSystem.list(root + "/sys/block") else { return false }
        var seen = false
        // (virtio and Xen disks say 1 whatever backs them: they tell nothing)
        let skipped = ["loop", "ram", "zram", "vd", "xvd"]
        for device in devices where !skipped.contains(where: { device.hasPrefix($0) }) {
            guard let flag = read(root + "/sys/block/\(device)/queue/rotational")?.trimmingCharacters(in: " \n") else {
                continue
            }
            if flag == "0" { return false }
            if flag == "1" { seen = true }
        }
        return seen
    }

    // MARK: cgroups

    /// This process's cgroup and its ancestors: with `controller` nil, the v2 hierarchy (the
    /// "0::" line of /proc/self/cgroup, below /sys/fs/cgroup); else that v1 controller's
    /// hierarchy (its line, below /sys/fs/cgroup/<its controllers>, or /sys/fs/cgroup/<controller>).
    static func cgroupDirectories(root: String, controller: String?) -> [String] {
        guard let text = read(root + "/proc/self/cgroup") else { return [] }
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            let controllers = fields[1].split(separator: ",").map(String.init)
            var mounts: [String]
            if let controller {
                guard controllers.contains(controller) else { continue }
                mounts = [root + "/sys/fs/cgroup/" + controllers.joined(separator: ",")]
                if controllers.count > 1 { mounts.append(root + "/sys/fs/cgroup/" + controller) }
            } else {
                guard fields[0] == "0", controllers.isEmpty else { continue }
                mounts = [root + "/sys/fs/cgroup"]
            }
            var path = String(fields[2])
            if path.contains("/..") || !path.hasPrefix("/") { return [] }
            var directories: [String] = []
            while true {
                for mount in mounts { directories.append(mount + (path == "/" ? "" : path)) }
                guard path != "/", let slash = path.lastIndex(of: "/") else { break }
                path = slash == path.startIndex ? "/" : String(path[..<slash])
            }
            return directories
        }
        return []
    }

    /// A small kernel file's text (nil when it cannot be read).
    static func read(_ path: String) -> String? {
        guard let bytes = try? FileSystem.readBytes(path), bytes.count < 1 << 20 else { return nil }
        return String(decoding: bytes, as: UTF8.self)
    }
}
