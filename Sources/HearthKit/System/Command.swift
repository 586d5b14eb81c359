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
/// standard input, never in the argument list.
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

    /// Shows an argument list the way a shell user would type it (for messages only).
    public static func display(_ argv: [String]) -> String {
        argv.map { arg in
            let plain = !arg.isEmpty && arg.unicodeScalars.allSatisfy {
                $0.isASCIILetter || $0.isASCIIDigit || "-_./=:,+@%".unicodeScalars.contains($0)
            }
            return plain ? arg : "'" + arg.replacing("'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }

    /// Runs `argv` and returns its result whatever the exit status.
    public static func run(
        _ argv: [String], input: String? = nil, asUser: SystemAccount? = nil,
        environment: [String: String?] = [:], workingDirectory: String? = nil
    ) async throws -> CommandResult {
        precondition(!argv.isEmpty)
        let shown = display(argv)
        guard let resolved = resolve(argv[0]) else {
            throw HearthError("cannot run `\(shown)`: \(argv[0]) not found")
        }
        var executable = resolved
        var arguments = Array(argv.dropFirst())
        let options = PlatformOptions()
        var env = environment
        if let user = asUser {
            // The identity change happens in setpriv (util-linux), not in the spawned child:
            // swift-subprocess starts children with a raw clone, after which glibc's
            // setgroups/setuid in the child wait forever for threads that are not there.
            guard let setpriv = resolve("setpriv") else {
                throw HearthError("cannot run `\(shown)` as \(user.name): setpriv (util-linux) not found")
            }
            arguments = ["--reuid=\(user.uid)", "--regid=\(user.gid)", "--clear-groups", "--", resolved] + arguments
            executable = setpriv
            env["HOME"] = user.home
            env["USER"] = user.name
            env["LOGNAME"] = user.name
        }
        var updates: [Environment.Key: String?] = [:]
        for (key, value) in env { updates[Environment.Key(stringLiteral: key)] = value }
        let limit = 64 * 1024 * 1024
        do {
            let result: ExecutionResult<Void, StringOutput<UTF8>, StringOutput<UTF8>>
            if let input {
                result = try await Subprocess.run(
                    .path(FilePath(executable)), arguments: Arguments(arguments),
                    environment: .inherit.updating(updates),
                    workingDirectory: workingDirectory.map { FilePath($0) }, platformOptions: options,
                    input: .string(input), output: .string(limit: limit), error: .string(limit: limit))
            } else {
                result = try await Subprocess.run(
                    .path(FilePath(executable)), arguments: Arguments(arguments),
                    environment: .inherit.updating(updates),
                    workingDirectory: workingDirectory.map { FilePath($0) }, platformOptions: options,
                    input: .none, output: .string(limit: limit), error: .string(limit: limit))
            }
            let status: Int32
            switch result.terminationStatus {
            case .exited(let code): status = Int32(code)
            case .signaled(let signal): status = 128 + Int32(signal)
            }
            return CommandResult(
                command: shown, status: status, stdout: result.standardOutput,
                stderr: result.standardError)
        } catch let error as HearthError {
            throw error
        } catch {
            throw HearthError("cannot run `\(shown)`: \(error)")
        }
    }

    /// Runs `argv` and returns its standard output; a non-zero exit throws with its stderr.
    @discardableResult
    public static func check(
        _ argv: [String], input: String? = nil, asUser: SystemAccount? = nil,
        environment: [String: String?] = [:], workingDirectory: String? = nil
    ) async throws -> String {
        let result = try await run(
            argv, input: input, asUser: asUser, environment: environment, workingDirectory: workingDirectory)
        guard result.succeeded else { throw failure(result) }
        return result.stdout
    }

    public static func failure(_ result: CommandResult) -> HearthError {
        var text = "`\(result.command)` exited \(result.status)"
        let err = result.stderr.trimmingCharacters(in: "\n ")
        let out = result.stdout.trimmingCharacters(in: "\n ")
        let shown = err.isEmpty ? out : err
        if !shown.isEmpty {
            // The end of a long output is where the cause usually is.
            let lines = shown.split(separator: "\n", omittingEmptySubsequences: false)
            text += ":\n" + lines.suffix(20).joined(separator: "\n")
        }
        return HearthError(text)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(self)
        while let f = s.first, set.contains(f) { s = s.dropFirst() }
        while let l = s.last, set.contains(l) { s = s.dropLast() }
        return String(s)
    }
}
