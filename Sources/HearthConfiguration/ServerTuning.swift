import HearthSystem
/// The server sized to its machine (issue 24): memory, parallelism, planner costs, WAL and
/// checkpoints, computed from the machine's RAM and cores (MachineSize) the way pgtune and
/// autobase do it, with more maintenance memory for the vector index builds; every setting
/// overridable by its key (PG_SHARED_BUFFERS, ...), the whole off with PG_TUNE=false (Debian's
/// defaults). Part of ServerSettings: its lines go into the same conf.d file, its values into
/// the same comparison with pg_settings.
public struct ServerTuning: Sendable, Equatable {
    /// What a setting holds, in pg_settings' own unit (the `setting` column).
    public enum Kind: Sendable, Equatable {
        /// Memory; `unitKB` is pg_settings' unit (8 for 8kB blocks, 1 for kB, 1024 for MB).
        case memory(unitKB: Int, minKB: Int)
        case integer(ClosedRange<Int>)
        case real(ClosedRange<Double>)
        /// Seconds.
        case seconds(ClosedRange<Int>)
    }

    /// One tuned setting: its name, its key, its kind, whether a change takes a restart, and
    /// its value for a machine (kB for memory, seconds for durations).
    public struct Setting: Sendable {
        public let name: String
        public let key: String
        public let kind: Kind
        public let restart: Bool
        public let help: String
        let auto: @Sendable (MachineSize) -> Double
    }

    /// Debian's max_connections, which work_mem is shared by (each query may use a few).
    static let connections = 100
    static let mb = 1024.0

    public static let settings: [Setting] = [
        Setting(
            name: "shared_buffers", key: "PG_SHARED_BUFFERS", kind: .memory(unitKB: 8, minKB: 128), restart: true,
            help: "a quarter of the memory, 128MB to 16GB",
            auto: { Double(clamp($0.memoryMB / 4, 128, 16384)) * mb }),
        Setting(
            name: "effective_cache_size", key: "PG_EFFECTIVE_CACHE_SIZE", kind: .memory(unitKB: 8, minKB: 8), restart: false,
            help: "three quarters of the memory", auto: { Double(max(128, $0.memoryMB * 3 / 4)) * mb }),
        Setting(
            name: "maintenance_work_mem", key: "PG_MAINTENANCE_WORK_MEM", kind: .memory(unitKB: 1, minKB: 1024), restart: false,
            help: "an eighth of the memory, 64MB to 8GB: an HNSW graph of a few hundred thousand vectors fits",
            auto: { Double(clamp($0.memoryMB / 8, 64, 8192)) * mb }),
        Setting(
            name: "work_mem", key: "PG_WORK_MEM", kind: .memory(unitKB: 1, minKB: 64), restart: false,
            help: "(memory - shared_buffers) / (3 x 100 connections), 4MB to 256MB",
            auto: { m in
                let shared = clamp(m.memoryMB / 4, 128, 16384)
                return Double(clamp((m.memoryMB - shared) / (3 * connections), 4, 256)) * mb
            }),
        Setting(
            name: "max_worker_processes", key: "PG_MAX_WORKER_PROCESSES", kind: .integer(1...262143), restart: true,
            help: "the cores, at least 8 (PostgreSQL's default: extensions take some)",
            auto: { Double(max(8, $0.cores)) }),
        Setting(
            name: "max_parallel_workers", key: "PG_MAX_PARALLEL_WORKERS", kind: .integer(0...1024), restart: false,
            help: "the cores, at least the maintenance workers", auto: { Double(max($0.cores, maintenanceWorkers($0))) }),
        Setting(
            name: "max_parallel_workers_per_gather", key: "PG_MAX_PARALLEL_WORKERS_PER_GATHER",
            kind: .integer(0...1024), restart: false, help: "half the cores, at most 4",
            auto: { Double(min(4, $0.cores / 2)) }),
        Setting(
            name: "max_parallel_maintenance_workers", key: "PG_MAX_PARALLEL_MAINTENANCE_WORKERS",
            kind: .integer(0...1024), restart: false,
            help: "the cores less one, 2 to 8 (parallel index builds; the leader works too)",
            auto: { Double(maintenanceWorkers($0)) }),
        Setting(
            name: "random_page_cost", key: "PG_RANDOM_PAGE_COST", kind: .real(0...1_000_000), restart: false,
            help: "1.1 on SSDs, 4 when every disk rotates", auto: { $0.rotational ? 4 : 1.1 }),
        Setting(
            name: "effective_io_concurrency", key: "PG_EFFECTIVE_IO_CONCURRENCY", kind: .integer(0...1000),
            restart: false, help: "200 on SSDs, 2 when every disk rotates", auto: { $0.rotational ? 2 : 200 }),
        Setting(
            name: "min_wal_size", key: "PG_MIN_WAL_SIZE", kind: .memory(unitKB: 1024, minKB: 32768), restart: false,
            help: "1GB", auto: { _ in 1024 * mb }),
        Setting(
            name: "max_wal_size", key: "PG_MAX_WAL_SIZE", kind: .memory(unitKB: 1024, minKB: 32768), restart: false,
            help: "4GB: fewer checkpoints under heavy ingest", auto: { _ in 4096 * mb }),
        Setting(
            name: "checkpoint_timeout", key: "PG_CHECKPOINT_TIMEOUT", kind: .seconds(30...86400), restart: false,
            help: "15min", auto: { _ in 900 }),
        Setting(
            name: "checkpoint_completion_target", key: "PG_CHECKPOINT_COMPLETION_TARGET", kind: .real(0...1),
            restart: false, help: "0.9", auto: { _ in 0.9 }),
    ]

    /// Workers of a parallel index build: pgvector's advice for a dedicated host (the cores less
    /// one, the leader builds too), at least PostgreSQL's default of 2 (on 2 cores, 2 workers built
    /// IVFFlat 14% and HNSW 3% faster than 1: bench/RESULTS.md §5), at most 8.
    static func maintenanceWorkers(_ machine: MachineSize) -> Int { min(8, max(2, machine.cores - 1)) }

    public static let settingsByKey: [String: Setting] = Dictionary(uniqueKeysWithValues: settings.map { ($0.key, $0) })

    /// The settings a change of which takes a restart.
    public static let restartSettings: Set<String> = Set(settings.filter(\.restart).map(\.name))

    /// The configuration's side (PG_TUNE, PG_TUNE_MEMORY, PG_TUNE_CORES and the overrides).
    public struct Config: Sendable, Equatable {
        public var enabled: Bool = true
        /// PG_TUNE_MEMORY; nil: the machine's.
        public var memoryBytes: Int?
        /// PG_TUNE_CORES; nil: the machine's.
        public var cores: Int?
        /// setting name → value in its pg_settings unit (kB for memory, seconds).
        public var overrides: [String: Double] = [:]

        public init() {}
    }

    public let machine: MachineSize
    /// (name, pg_settings value, the line's value): empty when PG_TUNE is false.
    public let entries: [(name: String, value: String, shown: String)]

    public static func == (a: ServerTuning, b: ServerTuning) -> Bool {
        a.machine == b.machine && a.entries.map { "\($0.name)=\($0.value)" } == b.entries.map { "\($0.name)=\($0.value)" }
    }

    /// The tuning for `config` on the machine `detected` (the host's own unless given).
    public init(_ config: Config, machine detected: MachineSize? = nil) {
        var machine = detected ?? MachineSize.detect()
        if let memory = config.memoryBytes { machine.memoryBytes = memory }
        if let cores = config.cores { machine.cores = cores }
        self.machine = machine
        guard config.enabled else {
            entries = []
            return
        }
        entries = Self.settings.map { setting in
            let value = config.overrides[setting.name] ?? setting.auto(machine)
            return (setting.name, Self.pgValue(setting.kind, value), Self.shown(setting.kind, value))
        }
    }

    /// name → value as pg_settings.setting shows it.
    public var values: [(name: String, value: String)] { entries.map { ($0.name, $0.value) } }

    /// The lines of our conf.d file.
    public func render() -> String {
        guard !entries.isEmpty else { return "" }
        let width = entries.map(\.name.count).max() ?? 0
        return """
            # Sized for this machine (\(machine)); PG_TUNE=false leaves PostgreSQL's defaults,
            # PG_SHARED_BUFFERS and the others (docs/configuration.md) override one setting.

            """
            + entries.map { "\($0.name.padded(width))= \($0.shown)\n" }.joined() + "\n"
    }

    // MARK: values

    static func clamp(_ value: Int, _ low: Int, _ high: Int) -> Int { min(high, max(low, value)) }

    /// In pg_settings' unit: memory in its unit (kB / unit, rounded down), reals as %g prints them.
    static func pgValue(_ kind: Kind, _ value: Double) -> String {
        switch kind {
        case .memory(let unitKB, _): return String(Int(value) / unitKB)
        case .integer, .seconds: return String(Int(value))
        case .real: return real(value)
        }
    }

    /// As the line in the file says it: memory in MB or GB where whole, else kB.
    static func shown(_ kind: Kind, _ value: Double) -> String {
        switch kind {
        case .memory(let unitKB, _):
            let kB = Int(value) / unitKB * unitKB
            if kB % (1024 * 1024) == 0 { return "\(kB / (1024 * 1024))GB" }
            if kB % 1024 == 0 { return "\(kB / 1024)MB" }
            return "\(kB)kB"
        case .seconds: return Int(value) % 60 == 0 ? "\(Int(value) / 60)min" : "\(Int(value))s"
        default: return pgValue(kind, value)
        }
    }

    static func real(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : "\(value)"
    }

    // MARK: configuration

    /// A size: a whole number with a unit of PostgreSQL's (kB, MB, GB, TB; no unit: MB), in kB.
    static func sizeKB(_ text: String) -> Int? {
        let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, digits.count <= 12, let number = Int(digits) else { return nil }
        let unit = text.dropFirst(digits.count)
        let factor: Int
        switch unit {
        case "kB": factor = 1
        case "", "MB": factor = 1024
        case "GB": factor = 1024 * 1024
        case "TB": factor = 1024 * 1024 * 1024
        default: return nil
        }
        return number * factor
    }

    /// A duration: a whole number with s, min or h (no unit: seconds), in seconds.
    static func durationSeconds(_ text: String) -> Int? {
        let digits = text.prefix(while: { $0.isASCII && $0.isNumber })
        guard !digits.isEmpty, digits.count <= 9, let number = Int(digits) else { return nil }
        switch text.dropFirst(digits.count) {
        case "", "s": return number
        case "min": return number * 60
        case "h": return number * 3600
        default: return nil
        }
    }

    /// The tuning keys from their raw values, each checked (a clear error naming the key).
    static func config(_ value: (String) -> RawValue) throws(Failure) -> Config {
        typealias V = ConfigValues
        var config = Config()
        config.enabled = try V.bool("PG_TUNE", value("PG_TUNE"))
        let memoryRaw = value("PG_TUNE_MEMORY")
        if memoryRaw.value.lowercased() != "auto" {
            guard let kB = sizeKB(memoryRaw.value), kB >= 256 * 1024 else {
                throw V.fail("PG_TUNE_MEMORY", memoryRaw, "not auto or a size of at least 256MB (512MB, 8GB)")
            }
            config.memoryBytes = kB * 1024
        }
        config.cores = try V.intOrAuto("PG_TUNE_CORES", value("PG_TUNE_CORES"), 1...4096, "a number of cores")
        for setting in settings {
            let raw = value(setting.key)
            if raw.value.lowercased() == "auto" { continue }
            switch setting.kind {
            case .memory(let unitKB, let minKB):
                guard let kB = sizeKB(raw.value), kB >= minKB, kB % unitKB == 0, kB / unitKB <= Int(Int32.max) else {
                    throw V.fail(
                        setting.key, raw,
                        "not auto or a size for \(setting.name) (a whole number of kB, MB or GB, at least \(minKB)kB\(unitKB > 1 ? ", a multiple of \(unitKB)kB" : ""))")
                }
                config.overrides[setting.name] = Double(kB)
            case .integer(let range):
                config.overrides[setting.name] = Double(try V.int(setting.key, raw, range, "a value for \(setting.name)"))
            case .seconds(let range):
                guard let seconds = durationSeconds(raw.value), range.contains(seconds) else {
                    throw V.fail(
                        setting.key, raw,
                        "not auto or a duration for \(setting.name) (s, min or h; \(range.lowerBound)s to \(range.upperBound)s)")
                }
                config.overrides[setting.name] = Double(seconds)
            case .real(let range):
                guard let number = Double(raw.value), number.isFinite, range.contains(number) else {
                    throw V.fail(
                        setting.key, raw,
                        "not auto or a number for \(setting.name) (\(real(range.lowerBound)) to \(real(range.upperBound)))")
                }
                config.overrides[setting.name] = number
            }
        }
        if let wal = config.overrides["min_wal_size"], let maxWal = config.overrides["max_wal_size"], wal > maxWal {
            throw V.fail("PG_MIN_WAL_SIZE", value("PG_MIN_WAL_SIZE"), "larger than PG_MAX_WAL_SIZE")
        }
        return config
    }
}
