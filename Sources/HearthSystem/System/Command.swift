#if canImport(Glibc)
import Glibc
#endif
import Subprocess

#if canImport(System)
import System
#else
import SystemPackage
#endif

/// What a finished command left: its exit status (128+N for signal N) and its output.
public struct CommandResult: Sendable {
    public let command: String
    public let status: Int32
    public let stdout: String
    public let stderr: String

    public var succeeded: Bool { status == 0 }
}

/// Runs commands as argument arrays — never through a shell — with captured output. The
/// failing command's standard error is part of the error it throws. Secrets go in on
/// standard input, never in the argument list, and never in the environment: a child gets a
/// minimal one (see `childEnvironment`), not ours, which may hold passwords.
public enum Command {
    /// Directories searched for a bare command name, after PATH: a root shell's sbin
    /// directories are not always on the PATH of a sudo or cron environment.
    static let fallbackPath = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]

    public static func resolve(_ name: String) -> String? {
        if name.contains("/") { return access(name, X_OK) == 0 ? name : nil }
        let path = (getenv("PATH").map { String(cString: $0) } ?? "").split(separator: ":").map(String.init)
        for directory in path + fallbackPath where !directory.isEmpty {
            let candidate = directory + "/" + name
            if access(candidate, X_OK) == 0 { return candidate }
        }
        return nil
    }

    /// Variables a child may take from our environment (a proxy apt or curl needs).
    static let passedThrough: Set<String> = [
        "http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "all_proxy",
        "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY", "ALL_PROXY",
    ]

    /// The whole environment of a child: PATH (ours, then the sbin and bin directories),
    /// LC_ALL=C.UTF-8 (messages the suite reads are in English), HOME (and USER and LOGNAME when
    /// it runs as another account), the proxy variables (only for a child of root's: a proxy URL
    /// may hold credentials, and another account reads its own processes' environment in
    /// /proc/<pid>/environ), and what the caller adds. Nothing else of ours: no configuration
    /// key, no *_PASSWORD.
    public static func childEnvironment(
        adding: [String: String?] = [:], asUser: SystemAccount? = nil,
        parent: [String: String] = currentEnvironment()
    ) throws -> [String: String] {
        var path: [String] = []
        for directory in (parent["PATH"] ?? "").split(separator: ":").map(String.init) + fallbackPath
        where directory.hasPrefix("/") && !path.contains(directory) {
            path.append(directory)
        }
        var env: [String: String] = ["PATH": path.joined(separator: ":"), "LC_ALL": "C.UTF-8"]
        env["HOME"] = asUser?.home ?? parent["HOME"] ?? SystemAccount.current()?.home ?? "/"
        if let user = asUser {
            env["USER"] = user.name
            env["LOGNAME"] = user.name
        }
        if asUser == nil {
            for (key, value) in parent where passedThrough.contains(key) { env[key] = value }
        }
        for (key, value) in adding {
            guard !key.uppercased().hasSuffix("_PASSWORD") else {
                throw Failure("refusing to pass \(key) to a child's environment: secrets go on standard input")
            }
            env[key] = value
        }
        return env
    }

    /// Shows an argument list the way a shell user would type it (for messages only).
    public static func display(_ argv: [String]) -> String {
        argv.map { arg in
            let plain = !arg.isEmpty && arg.unicodeScalars.allSatisfy {
                $0.isASCIILetter || $0.isASCIIDigit || "-_./=:,+@%".unicodeScalars.contains($0)
            }
            return plain ? arg : "'" + arg.replacing("'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    /// The supplementary groups of a command run as another account: none, or the account's own
    /// (initgroups, as `su` or postgresql-common's change_ugid give them: postgres reads Debian's
    /// snakeoil key through its group ssl-cert).
    public enum Groups: Sendable {
        case cleared, accounts
    }

    /// Runs `argv` and returns its result whatever the exit status. With `timeout` (seconds) it
    /// runs under coreutils' `timeout`: past it the command is sent SIGTERM (SIGKILL 5 s later)
    /// and the run is an error saying so.
    public static func run(
        _ argv: [String], input: String? = nil, asUser: SystemAccount? = nil, groups: Groups = .cleared,
        environment: [String: String?] = [:], workingDirectory: String? = nil, timeout: Int? = nil
    ) async throws -> CommandResult {
        precondition(!argv.isEmpty)
        let shown = display(argv)
        guard let resolved = resolve(argv[0]) else {
            throw Failure("cannot run `\(shown)`: \(argv[0]) not found")
        }
        var executable = resolved
        var arguments = Array(argv.dropFirst())
        let options = PlatformOptions()
        if let user = asUser {
            // The identity change happens in setpriv (util-linux), not in the spawned child:
            // swift-subprocess starts children with a raw clone, after which glibc's
            // setgroups/setuid in the child wait forever for threads that are not there.
            guard let setpriv = resolve("setpriv") else {
                throw Failure("cannot run `\(shown)` as \(user.name): setpriv (util-linux) not found")
            }
            let groupOption = groups == .accounts ? "--init-groups" : "--clear-groups"
            arguments = ["--reuid=\(user.uid)", "--regid=\(user.gid)", groupOption, "--", resolved] + arguments
            executable = setpriv
        }
        if let timeout {
            guard let timer = resolve("timeout") else {
                throw Failure("cannot run `\(shown)` with a deadline: timeout (coreutils) not found")
            }
            arguments = ["--kill-after=5", String(max(1, timeout)), executable] + arguments
            executable = timer
        }
        var variables: [Environment.Key: String] = [:]
        for (key, value) in try Self.childEnvironment(adding: environment, asUser: asUser) {
            variables[Environment.Key(stringLiteral: key)] = value
        }
        let limit = 64 * 1024 * 1024
        do {
            let result: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>
            if let input {
                result = try await Subprocess.run(
                    .path(FilePath(executable)), arguments: Arguments(arguments),
                    environment: .custom(variables),
                    workingDirectory: workingDirectory.map { FilePath($0) }, platformOptions: options,
                    input: .string(input), output: .string(limit: limit), error: .string(limit: limit))
            } else {
                result = try await Subprocess.run(
                    .path(FilePath(executable)), arguments: Arguments(arguments),
                    environment: .custom(variables),
                    workingDirectory: workingDirectory.map { FilePath($0) }, platformOptions: options,
                    input: .none, output: .string(limit: limit), error: .string(limit: limit))
            }
            let status: Int32
            switch result.terminationStatus {
            case .exited(let code): status = Int32(code)
            case .signaled(let signal): status = 128 + Int32(signal)
            }
            // coreutils' timeout: 124 when it ended the command, 137 when it had to kill it. A
            // definite false (a dry run too): rerunning the same command would wait the same.
            if let timeout, status == 124 || status == 137 {
                throw Failure.hostWrong(
                    "`\(shown)` did not finish within \(timeout) s and was killed (a file it reads that never "
                        + "ends, such as a FIFO in its place, holds it)"
                        + (result.standardError.isEmpty ? "" : ":\n" + result.standardError.trimmingCharacters(in: "\n ")))
            }
            return CommandResult(
                command: shown, status: status, stdout: result.standardOutput,
                stderr: result.standardError)
        } catch let error as Failure where error.kind == .error || error.kind == .hostWrong {
            throw error
        } catch {
            throw Failure("cannot run `\(shown)`: \(error)")
        }
    }

    /// Runs `argv` and returns its standard output; a non-zero exit throws with its stderr.
    @discardableResult
    public static func check(
        _ argv: [String], input: String? = nil, asUser: SystemAccount? = nil, groups: Groups = .cleared,
        environment: [String: String?] = [:], workingDirectory: String? = nil, timeout: Int? = nil
    ) async throws -> String {
        let result = try await run(
            argv, input: input, asUser: asUser, groups: groups, environment: environment,
            workingDirectory: workingDirectory, timeout: timeout)
        guard result.succeeded else { throw failure(result) }
        return result.stdout
    }

    public static func failure(_ result: CommandResult) -> Failure {
        var text = "`\(result.command)` exited \(result.status)"
        let err = result.stderr.trimmingCharacters(in: "\n ")
        let out = result.stdout.trimmingCharacters(in: "\n ")
        let shown = err.isEmpty ? out : err
        if !shown.isEmpty {
            // The end of a long output is where the cause usually is.
            let lines = shown.split(separator: "\n", omittingEmptySubsequences: false)
            text += ":\n" + lines.suffix(20).joined(separator: "\n")
        }
        return Failure(text)
    }
}
