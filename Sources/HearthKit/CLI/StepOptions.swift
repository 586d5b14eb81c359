#if canImport(Glibc)
import Glibc
#endif
import ArgumentParser

/// The flags every step executable takes.
public struct StepOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: ArgumentHelp(
        "Host configuration file, read instead of \(ConfigSources.defaultHostFile).", valueName: "FILE"))
    public var config: String?

    @Option(name: .customLong("set"), help: ArgumentHelp(
        "Override one key (repeatable); secrets are refused here, they belong in the file or the environment.",
        valueName: "KEY=VALUE"))
    public var overrides: [String] = []

    @Flag(name: .long, help: "Run the checks only and report what would change; change nothing.")
    public var dryRun = false

    public init() {}

    /// The layers this invocation reads.
    public func sources(environment: [String: String] = currentEnvironment()) -> ConfigSources {
        ConfigSources(
            shippedFile: ShippedFiles.defaultsFile(environment: environment), hostFile: config,
            environment: environment, overrides: overrides)
    }
}

/// Where the shipped tree (etc/, Migrations/) is: HEARTHMINDS_ROOT when install.sh sets it,
/// else the nearest directory above the running executable that holds install.sh and etc/.
public enum ShippedFiles {
    public static func root(environment: [String: String] = currentEnvironment()) -> String? {
        if let root = environment["HEARTHMINDS_ROOT"], !root.isEmpty { return root }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return nil }
        var directory = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        for _ in 0..<5 {
            guard let slash = directory.lastIndex(of: "/"), slash != directory.startIndex else { return nil }
            directory = String(directory[..<slash])
            if FileSystem.exists(directory + "/install.sh") && FileSystem.exists(directory + "/etc/hearthminds.env") {
                return directory
            }
        }
        return nil
    }

    public static func defaultsFile(environment: [String: String] = currentEnvironment()) -> String? {
        guard let root = root(environment: environment) else { return nil }
        let path = root + "/etc/hearthminds.env"
        return FileSystem.exists(path) ? path : nil
    }
}

/// The body of every step executable: load and validate the configuration (exit 64 on any
/// error, before anything changes), take the run lock (exit 75 when another run holds it),
/// open the log, build the step, run it.
public enum StepMain {
    public static func run(
        _ name: String, _ options: StepOptions, requiresRoot: Bool = true,
        build: (HearthConfig) throws -> Step
    ) async -> Int32 {
        let console = Console()
        let environment = currentEnvironment()
        guard let config = prepare(name, options, requiresRoot: requiresRoot, environment: environment, console: console)
        else { return ExitStatus.usage }
        if let status = lock(name, environment: environment, console: console) { return status }
        let step: Step
        do {
            step = try build(config)
        } catch let error as ConfigError {
            console.err("hm-\(name): configuration error: \(error)")
            return ExitStatus.usage
        } catch {
            console.err("hm-\(name): \(error)")
            return ExitStatus.failed
        }
        return await execute(step, name: name, config: config, dryRun: options.dryRun, environment: environment)
    }

    /// The validated configuration, once the caller is known to be root (when it must be);
    /// nil after saying why on stderr (the caller exits 64: nothing has changed).
    public static func prepare(
        _ name: String, _ options: StepOptions, requiresRoot: Bool = true, environment: [String: String],
        console: Console
    ) -> HearthConfig? {
        let config: HearthConfig
        do {
            config = try HearthConfig.load(options.sources(environment: environment))
        } catch {
            console.err("hm-\(name): configuration error: \(error)")
            return nil
        }
        if requiresRoot && !SystemAccount.isRoot {
            console.err("hm-\(name): must run as root (sudo hm-\(name))")
            return nil
        }
        return config
    }

    /// Takes the run lock (RunLock: install.sh's descriptor when it passed one); nil when held,
    /// else the exit status after saying why on stderr: 75 when another run holds it, 1 when
    /// the lock's directory or file fails the rules.
    public static func lock(_ name: String, environment: [String: String], console: Console) -> Int32? {
        do {
            switch try RunLock.acquire(environment: environment) {
            case .held: return nil
            case .busy:
                console.err("hm-\(name): another run holds the lock (\(RunLock.path)); not starting")
                return ExitStatus.busy
            }
        } catch {
            console.err("hm-\(name): cannot take the lock \(RunLock.path): \(error)")
            return ExitStatus.failed
        }
    }

    /// Opens the log and runs the step under the run id install.sh set (or a new one).
    public static func execute(
        _ step: Step, name: String, config: HearthConfig, dryRun: Bool, environment: [String: String],
        console: Console = Console()
    ) async -> Int32 {
        let log: JSONLog
        do {
            log = try JSONLog(path: config.logPath)
        } catch {
            console.err("hm-\(name): \(error)")
            return ExitStatus.failed
        }
        let runID = environment["HEARTHMINDS_RUN_ID"].flatMap { $0.isEmpty ? nil : $0 } ?? Clock.newRunID()
        let runner = StepRunner(console: console, log: log, runID: runID, dryRun: dryRun)
        let counts = DryRunCounts.claim(environment)
        let outcome = await runner.run(step)
        DryRunCounts.report(outcome, to: counts)
        return outcome.status
    }
}
