#if canImport(Glibc)
import Glibc
#endif
import Testing
@testable import HearthCommands
@testable import HearthKit
@testable import HearthPgvector
@testable import HearthPostgres
@testable import HearthClient
@testable import HearthMigrations
@testable import HearthMonitoring
@testable import HearthBackup
@testable import HearthPG
@testable import HearthRunner
@testable import HearthConfiguration
@testable import HearthSystem

/// The server sized to its machine (issue 24): two machine sizes, the keys, the machine read from
/// a faked /proc and cgroup tree.
@Suite("server tuning (unit)")
struct ServerTuningTests {
    static let gib = 1 << 30

    func values(_ tuning: ServerTuning) -> [String: String] {
        Dictionary(uniqueKeysWithValues: tuning.values.map { ($0.name, $0.value) })
    }

    @Test("a small machine (2 GiB, 1 core, rotating disks): floors and small parallelism")
    func smallMachine() throws {
        let config = try loadConfig("")
        let tuning = ServerTuning(config.tuning, machine: MachineSize(memoryBytes: 2 * Self.gib, cores: 1, rotational: true))
        let v = values(tuning)
        #expect(v["shared_buffers"] == String(512 * 1024 / 8))  // 512MB in 8kB blocks
        #expect(v["effective_cache_size"] == String(1536 * 1024 / 8))
        #expect(v["maintenance_work_mem"] == String(256 * 1024))  // kB
        #expect(v["work_mem"] == String(5 * 1024))  // (2048 - 512) / 300 = 5MB
        #expect(v["max_worker_processes"] == "8")
        #expect(v["max_parallel_workers"] == "2")  // at least the maintenance workers
        #expect(v["max_parallel_workers_per_gather"] == "0")
        #expect(v["max_parallel_maintenance_workers"] == "2")  // PostgreSQL's default at least
        #expect(v["random_page_cost"] == "4")
        #expect(v["effective_io_concurrency"] == "2")
        #expect(v["min_wal_size"] == "1024" && v["max_wal_size"] == "4096")
        #expect(v["checkpoint_timeout"] == "900" && v["checkpoint_completion_target"] == "0.9")
        let text = tuning.render()
        #expect(text.contains("shared_buffers                  = 512MB\n"))
        #expect(text.contains("checkpoint_timeout              = 15min\n"))
        #expect(text.contains("(2.0 GiB, 1 core, rotating disks)"))
    }

    @Test("a large machine (64 GiB, 16 cores, SSD): a quarter, caps, parallel index builds")
    func largeMachine() throws {
        let config = try loadConfig("")
        let tuning = ServerTuning(config.tuning, machine: MachineSize(memoryBytes: 64 * Self.gib, cores: 16))
        let v = values(tuning)
        #expect(v["shared_buffers"] == String(16384 * 1024 / 8))  // 16GB: a quarter
        #expect(v["effective_cache_size"] == String(49152 * 1024 / 8))
        #expect(v["maintenance_work_mem"] == String(8192 * 1024))  // 8GB: the cap
        #expect(v["work_mem"] == String(163 * 1024))  // (65536 - 16384) / 300
        #expect(v["max_worker_processes"] == "16")
        #expect(v["max_parallel_workers"] == "16")
        #expect(v["max_parallel_workers_per_gather"] == "4")
        #expect(v["max_parallel_maintenance_workers"] == "8")  // the cores less one, at most 8
        #expect(v["random_page_cost"] == "1.1")
        #expect(v["effective_io_concurrency"] == "200")
        #expect(tuning.render().contains("shared_buffers                  = 16GB\n"))
        // Different machines, different files; the same machine, the same file.
        let small = ServerTuning(config.tuning, machine: MachineSize(memoryBytes: 2 * Self.gib, cores: 1))
        #expect(small != tuning)
        #expect(ServerTuning(config.tuning, machine: MachineSize(memoryBytes: 64 * Self.gib, cores: 16)) == tuning)
    }

    @Test("PG_TUNE_MEMORY and PG_TUNE_CORES size for another machine; each key overrides its setting")
    func overrides() throws {
        let machine = MachineSize(memoryBytes: 64 * Self.gib, cores: 16)
        let config = try loadConfig(
            """
            PG_TUNE_MEMORY=8GB
            PG_TUNE_CORES=4
            PG_WORK_MEM=32MB
            PG_RANDOM_PAGE_COST=1.5
            PG_CHECKPOINT_TIMEOUT=30min
            PG_MAINTENANCE_WORK_MEM=1048576kB
            """)
        let tuning = ServerTuning(config.tuning, machine: machine)
        let v = values(tuning)
        #expect(tuning.machine.memoryMB == 8192 && tuning.machine.cores == 4)
        #expect(v["shared_buffers"] == String(2048 * 1024 / 8))
        #expect(v["work_mem"] == String(32 * 1024))
        #expect(v["random_page_cost"] == "1.5")
        #expect(v["checkpoint_timeout"] == "1800")
        #expect(v["maintenance_work_mem"] == "1048576")
        #expect(v["max_parallel_maintenance_workers"] == "3")
        #expect(tuning.render().contains("maintenance_work_mem            = 1GB\n"))
        #expect(tuning.render().contains("checkpoint_timeout              = 30min\n"))

        // PG_TUNE=false: no line, no value: the server keeps PostgreSQL's defaults.
        let off = ServerTuning(try loadConfig("PG_TUNE=false").tuning, machine: machine)
        #expect(off.values.isEmpty && off.render().isEmpty)
        let settings = ServerSettings(try loadConfig("PG_TUNE=false"), machine: machine)
        #expect(!settings.render(clusterID: "15/main").contains("shared_buffers"))
        #expect(ServerSettings(config, machine: machine).render(clusterID: "15/main").contains("shared_buffers"))
    }

    @Test("bad tuning values are errors naming the key")
    func errors() {
        for (text, key) in [
            ("PG_TUNE=maybe", "PG_TUNE"),
            ("PG_TUNE_MEMORY=lots", "PG_TUNE_MEMORY"),
            ("PG_TUNE_MEMORY=100MB", "PG_TUNE_MEMORY"),
            ("PG_TUNE_CORES=0", "PG_TUNE_CORES"),
            ("PG_SHARED_BUFFERS=12kB", "PG_SHARED_BUFFERS"),  // not a multiple of 8kB
            ("PG_SHARED_BUFFERS=1.5GB", "PG_SHARED_BUFFERS"),
            ("PG_WORK_MEM=2PB", "PG_WORK_MEM"),
            ("PG_MAX_WORKER_PROCESSES=0", "PG_MAX_WORKER_PROCESSES"),
            ("PG_RANDOM_PAGE_COST=-1", "PG_RANDOM_PAGE_COST"),
            ("PG_RANDOM_PAGE_COST=nan", "PG_RANDOM_PAGE_COST"),
            ("PG_CHECKPOINT_TIMEOUT=5s", "PG_CHECKPOINT_TIMEOUT"),
            ("PG_CHECKPOINT_COMPLETION_TARGET=2", "PG_CHECKPOINT_COMPLETION_TARGET"),
            ("PG_MIN_WAL_SIZE=16MB", "PG_MIN_WAL_SIZE"),
            ("PG_MIN_WAL_SIZE=8GB\nPG_MAX_WAL_SIZE=2GB", "PG_MIN_WAL_SIZE"),
        ] {
            do {
                _ = try loadConfig(text)
                Issue.record("\(text) was accepted")
            } catch {
                #expect(error.description.hasPrefix(key + "="), "\(text): \(error)")
            }
        }
    }

    @Test("the restart settings are shared_buffers and max_worker_processes, beside listen_addresses and port")
    func restartSettings() {
        #expect(ServerTuning.restartSettings == ["shared_buffers", "max_worker_processes"])
        #expect(ServerSettings.restartSettings.isSuperset(of: ["listen_addresses", "port", "shared_buffers"]))
        #expect(!ServerSettings.restartSettings.contains("work_mem"))
    }

    @Test("the machine read from /proc and the cgroup tree: memory.max and cpu.max cap MemTotal and the CPUs")
    func detection() throws {
        let root = TestFiles.temporaryDirectory("hm-machine")
        defer { TestFiles.removeTree(root) }
        func write(_ path: String, _ text: String) throws {
            try FileSystem.makeDirectories(root + String(path[..<path.lastIndex(of: "/")!]))
            try FileSystem.writeAtomically(root + path, text)
        }
        try write("/proc/meminfo", "MemTotal:       24576000 kB\nMemFree:        1000 kB\n")
        try write("/proc/self/status", "Name:\tx\nCpus_allowed_list:\t0-7,16\n")
        try write("/proc/self/cgroup", "0::/system.slice/postgresql.service\n")
        try write("/sys/block/sda/queue/rotational", "1\n")
        try write("/sys/block/loop0/queue/rotational", "0\n")
        // No cgroup limits: the machine's.
        var machine = MachineSize.detect(root: root)
        #expect(machine.memoryBytes == 24_576_000 * 1024)
        #expect(machine.cores == 9)
        #expect(machine.rotational)  // the loop device is not a disk

        // A limit on the slice (an ancestor) and a smaller quota on the service.
        try write("/sys/fs/cgroup/system.slice/memory.max", "\(4 * Self.gib)\n")
        try write("/sys/fs/cgroup/system.slice/postgresql.service/memory.max", "max\n")
        try write("/sys/fs/cgroup/system.slice/postgresql.service/cpu.max", "250000 100000\n")
        try write("/sys/fs/cgroup/cpu.max", "max 100000\n")
        try write("/sys/block/nvme0n1/queue/rotational", "0\n")
        machine = MachineSize.detect(root: root)
        #expect(machine.memoryBytes == 4 * Self.gib)
        #expect(machine.cores == 3)  // 2.5 CPUs of quota, rounded up
        #expect(!machine.rotational)
        let tuning = ServerTuning(try loadConfig("").tuning, machine: machine)
        #expect(values(tuning)["shared_buffers"] == String(1024 * 1024 / 8))

        // cgroup v1 (a hybrid host): memory.limit_in_bytes and cfs quota of the controllers' hierarchies.
        try write("/proc/self/cgroup", "4:memory:/app/x\n1:cpu,cpuacct:/app/x\n0::/\n")
        try write("/sys/fs/cgroup/memory/app/memory.limit_in_bytes", "\(6 * Self.gib)\n")
        try write("/sys/fs/cgroup/memory/memory.limit_in_bytes", "9223372036854771712\n")
        try write("/sys/fs/cgroup/cpu,cpuacct/app/x/cpu.cfs_quota_us", "-1\n")
        try write("/sys/fs/cgroup/cpu,cpuacct/app/x/cpu.cfs_period_us", "100000\n")
        try write("/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_quota_us", "150000\n")
        try write("/sys/fs/cgroup/cpu,cpuacct/app/cpu.cfs_period_us", "100000\n")
        machine = MachineSize.detect(root: root)
        #expect(machine.memoryBytes == 6 * Self.gib)
        #expect(machine.cores == 2)
        // virtio disks say they rotate whatever backs them: not taken as rotating.
        try write("/sys/block/nvme0n1/queue/rotational", "1\n")
        try write("/sys/block/vda/queue/rotational", "1\n")
        #expect(MachineSize.detect(root: root).rotational)
        try write("/sys/block/nvme0n1/queue/rotational", "0\n")
        #expect(!MachineSize.detect(root: root).rotational)

        #expect(MachineSize.cpuListCount("0") == 1 && MachineSize.cpuListCount("0-1,4-5") == 4)
        #expect(MachineSize.cpuListCount("x") == nil)
        // This machine: something sensible.
        let host = MachineSize.detect()
        #expect(host.memoryBytes > 64 << 20 && host.cores >= 1)
    }
}
