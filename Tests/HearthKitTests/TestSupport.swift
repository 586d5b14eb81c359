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

/// Files and directories the tests use, found beside this source file.
enum TestFiles {
    static let testsDirectory: String = {
        var path = #filePath
        while let last = path.last, last != "/" { path.removeLast() }
        return String(path.dropLast())
    }()

    static let repositoryRoot: String = {
        var path = testsDirectory
        for _ in 0..<2 {
            while let last = path.last, last != "/" { path.removeLast() }
            path.removeLast()
        }
        return path
    }()

    static func fixture(_ name: String) -> String { testsDirectory + "/Fixtures/" + name }

    /// The debug build's directory, with a link `hm-<command>` to the one executable
    /// (`hearthminds`) for every command (MultiCall), made once per test process: SwiftPM builds
    /// the executable only, as `make dist` makes the release's links.
    static let buildDirectory: String = {
        let directory = repositoryRoot + "/.build/debug"
        for (name, _) in MultiCall.commands {
            let path = directory + "/" + name
            var buffer = [CChar](repeating: 0, count: 256)
            let n = readlink(path, &buffer, buffer.count - 1)
            if n > 0 && String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == MultiCall.name {
                continue
            }
            // A new link under a temporary name, renamed over what is there (an old build's own
            // executable of that name): another test process may be doing the same.
            let temporary = path + ".link-\(getpid())"
            unlink(temporary)
            precondition(symlink(MultiCall.name, temporary) == 0, "cannot link \(temporary)")
            precondition(rename(temporary, path) == 0, "cannot rename \(temporary)")
        }
        return directory
    }()

    /// The debug build's command `name` (`hm-migrate`, `hm-reset`, ...): a link to `hearthminds`.
    static func executable(_ name: String) -> String { buildDirectory + "/" + name }

    /// A copy of the shipped tree whose bootstrap/bin is this build (install.sh runs from it as
    /// from a release tarball), and a configuration file test.env (the log in the tree).
    static func installTree() throws -> String {
        let tree = TestFiles.temporaryDirectory("hm-install")
        chmod(tree, 0o755)
        let root = TestFiles.repositoryRoot
        try FileSystem.makeDirectories(tree + "/bootstrap")
        for (path, mode) in [("install.sh", 0o755), ("bootstrap/lib.sh", 0o644), ("bootstrap/steps", 0o644)] as [(String, UInt32)] {
            try FileSystem.writeAtomically(tree + "/" + path, try FileSystem.readText(root + "/" + path), mode: mode)
        }
        symlink(TestFiles.buildDirectory, tree + "/bootstrap/bin")
        symlink(root + "/etc", tree + "/etc")
        symlink(root + "/Migrations", tree + "/Migrations")
        try FileSystem.writeAtomically(tree + "/test.env", "HEARTHMINDS_LOG=\(tree)/log.jsonl\nBACKUP=off\n", mode: 0o600)
        return tree
    }

    /// `installTree()` with a configuration file hm.env for a Debian test cluster (its name and
    /// port; the log in the tree).
    static func installTree(for cluster: DebianTestCluster) throws -> String {
        let tree = try installTree()
        try FileSystem.writeAtomically(
            tree + "/hm.env",
            "PG_CLUSTER_NAME=\(cluster.name)\nPOSTGRES_PORT=\(cluster.port)\nHEARTHMINDS_LOG=\(tree)/log.jsonl\nBACKUP=off\n",
            mode: 0o600)
        return tree
    }

    /// A new private directory under /tmp, removed by the caller.
    static func temporaryDirectory(_ prefix: String = "hm-test") -> String {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
        precondition(made != nil, "mkdtemp failed")
        return String(cString: template)
    }

    /// Writes `text` to a new file and returns its path.
    static func write(_ text: String, name: String = "hearthminds.env") throws -> String {
        let path = temporaryDirectory() + "/" + name
        try FileSystem.writeAtomically(path, text, mode: 0o600)
        return path
    }

    static func removeTree(_ path: String) {
        precondition(path.hasPrefix("/tmp/"))
        spawn(["/bin/rm", "-rf", path])
    }

    /// Runs a program to completion, synchronously (for clean-up in `defer`); its exit status.
    @discardableResult
    static func spawn(_ argv: [String]) -> Int32 {
        var pid: pid_t = 0
        let arguments: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        guard posix_spawnp(&pid, argv[0], nil, nil, arguments, environ) == 0 else { return -1 }
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return status
    }
}

/// Loads a configuration from the given host-file text, environment and flags only (never the
/// machine's own /etc/hearthminds).
func loadConfig(
    _ text: String = "", environment: [String: String] = [:], overrides: [String] = [],
    shipped: String? = nil
) throws(Failure) -> HearthConfig {
    let path: String
    do { path = try TestFiles.write(text) } catch { fatalError("cannot write a test file: \(error)") }
    defer { TestFiles.removeTree(String(path.prefix(upTo: path.lastIndex(of: "/")!))) }
    // Backups are on by default; a test's cluster has no repository unless the test says BACKUP=on
    // (BackupTests): off, the postgres step sets archive_mode off and verify only warns.
    var environment = environment
    let setsBackup = text.split(separator: "\n").contains { $0.hasPrefix("BACKUP=") }
        || environment["BACKUP"] != nil || overrides.contains { $0.hasPrefix("BACKUP=") }
    if !setsBackup && shipped == nil { environment["BACKUP"] = "off" }
    return try HearthConfig.load(
        ConfigSources(shippedFile: shipped, hostFile: path, environment: environment, overrides: overrides))
}

/// The key a configuration error names, or nil when loading succeeded.
func configErrorKey(_ text: String, environment: [String: String] = [:], overrides: [String] = []) -> String? {
    do {
        _ = try loadConfig(text, environment: environment, overrides: overrides)
        return nil
    } catch {
        return error.key.map { key in String(key.prefix(while: { $0 != "=" })) } ?? "(no key)"
    }
}

/// ": comment", or "".
private func note(_ comment: Comment?) -> String {
    comment.map { ": \($0.rawValue)" } ?? ""
}

/// Expects `body` to throw the suite's Failure of `kind` (as `#expect(throws:)` does for a type).
@discardableResult
func expectFailure<R>(
    _ kind: Failure.Kind, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () throws -> R
) -> Failure? {
    let thrown: (any Error)?
    do { _ = try body(); thrown = nil } catch { thrown = error }
    return judgeFailure(thrown, kind, comment, sourceLocation)
}

/// `expectFailure` for an asynchronous body.
@discardableResult
func expectFailureAsync<R>(
    _ kind: Failure.Kind, _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: () async throws -> R
) async -> Failure? {
    let thrown: (any Error)?
    do { _ = try await body(); thrown = nil } catch { thrown = error }
    return judgeFailure(thrown, kind, comment, sourceLocation)
}

/// What `expectFailure` records of what its body threw: the Failure when it is one (its kind
/// expected to be `kind`), an issue when nothing or something else was thrown.
private func judgeFailure(
    _ thrown: (any Error)?, _ kind: Failure.Kind, _ comment: Comment?, _ sourceLocation: SourceLocation
) -> Failure? {
    guard let thrown else {
        Issue.record(Comment(rawValue: "no \(kind.rawValue) failure was thrown" + note(comment)), sourceLocation: sourceLocation)
        return nil
    }
    guard let failure = thrown as? Failure else {
        Issue.record(Comment(rawValue: "not a Failure: \(thrown)" + note(comment)), sourceLocation: sourceLocation)
        return nil
    }
    #expect(failure.kind == kind, Comment(rawValue: "\(failure)" + note(comment)), sourceLocation: sourceLocation)
    return failure
}
