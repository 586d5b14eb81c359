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

@Suite("unified diff (what a dry run shows of a file)")
struct UnifiedDiffTests {
    func numbered(_ range: ClosedRange<Int>) -> String {
        range.map { "\($0)\n" }.joined()
    }

    /// `text` with its whole line `line` replaced by `replacement` (lines, each with its newline).
    func replacing(_ text: String, line: String, with replacement: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).dropLast().map { $0 == line ? replacement : $0 + "\n" }
            .joined()
    }

    @Test("identical texts: no diff")
    func identical() {
        #expect(UnifiedDiff.render(old: "a\nb\n", new: "a\nb\n", path: "f").isEmpty)
        #expect(UnifiedDiff.render(old: nil, new: nil, path: "f").isEmpty)
    }

    @Test("a changed line: one hunk with three lines of context each side")
    func change() {
        let new = replacing(numbered(1...10), line: "5", with: "five\n")
        #expect(
            UnifiedDiff.render(old: numbered(1...10), new: new, path: "/etc/f") == """
                --- /etc/f
                +++ /etc/f
                @@ -2,7 +2,7 @@
                 2
                 3
                 4
                -5
                +five
                 6
                 7
                 8
                """)
    }

    @Test("lines added and removed")
    func addRemove() {
        #expect(UnifiedDiff.render(old: "a\nb\n", new: "a\nb\nc\n", path: "f") == "--- f\n+++ f\n@@ -1,2 +1,3 @@\n a\n b\n+c")
        #expect(UnifiedDiff.render(old: "a\nb\nc\n", new: "a\nc\n", path: "f") == "--- f\n+++ f\n@@ -1,3 +1,2 @@\n a\n-b\n c")
        #expect(UnifiedDiff.render(old: "a\n", new: "", path: "f") == "--- f\n+++ f\n@@ -1 +0,0 @@\n-a")
    }

    @Test("a last line without a newline is marked, and gaining one is a change")
    func noTrailingNewline() {
        #expect(
            UnifiedDiff.render(old: "a\nb", new: "a\nb\n", path: "f")
                == "--- f\n+++ f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b")
        #expect(
            UnifiedDiff.render(old: "a\n", new: "a\nc", path: "f")
                == "--- f\n+++ f\n@@ -1 +1,2 @@\n a\n+c\n\\ No newline at end of file")
    }

    @Test("a new file is a diff from /dev/null; a removed one a diff to it")
    func newAndRemoved() {
        #expect(UnifiedDiff.render(old: nil, new: "x\ny\n", path: "p") == "--- /dev/null\n+++ p\n@@ -0,0 +1,2 @@\n+x\n+y")
        #expect(UnifiedDiff.render(old: "x\n", new: nil, path: "p") == "--- p\n+++ /dev/null\n@@ -1 +0,0 @@\n-x")
        #expect(UnifiedDiff.render(old: nil, new: "", path: "p") == "--- /dev/null\n+++ p")
    }

    @Test("changes far apart are separate hunks; near ones share one")
    func hunks() {
        let far = replacing(replacing(numbered(1...30), line: "3", with: "three\n"), line: "25", with: "twenty-five\n")
        let farDiff = UnifiedDiff.render(old: numbered(1...30), new: far, path: "f")
        #expect(farDiff.split(separator: "\n").filter { $0.hasPrefix("@@") } == ["@@ -1,6 +1,6 @@", "@@ -22,7 +22,7 @@"])
        let near = replacing(replacing(numbered(1...30), line: "10", with: "ten\n"), line: "16", with: "sixteen\n")
        let nearDiff = UnifiedDiff.render(old: numbered(1...30), new: near, path: "f")
        #expect(nearDiff.split(separator: "\n").filter { $0.hasPrefix("@@") } == ["@@ -7,13 +7,13 @@"])
    }

    /// Random texts, diffed by us and by GNU diff (same hunks, where the shortest script is
    /// unique enough for both to agree), and always applied by patch(1) back to the new text.
    @Test("random texts: patch(1) turns the old text into the new one with our diff")
    func againstPatch() async throws {
        let directory = TestFiles.temporaryDirectory("hm-diff")
        defer { TestFiles.removeTree(directory) }
        var generator = SystemRandomNumberGenerator()
        func text() -> String {
            let count = Int.random(in: 0...25, using: &generator)
            var lines = (0..<count).map { _ in ["alpha", "beta", "gamma", "delta", "eps"].randomElement(using: &generator)! }
            if !lines.isEmpty && Bool.random(using: &generator) { lines[lines.count - 1] += "!" }
            let body = lines.joined(separator: "\n")
            return body.isEmpty || Int.random(in: 0..<4, using: &generator) == 0 ? body : body + "\n"
        }
        var checked = 0
        for i in 0..<60 {
            let (old, new) = (text(), text())
            let diff = UnifiedDiff.render(old: old, new: new, path: "f")
            if old == new {
                #expect(diff.isEmpty)
                continue
            }
            try FileSystem.writeAtomically("\(directory)/old\(i)", old, mode: 0o600)
            try FileSystem.writeAtomically("\(directory)/diff\(i)", diff + "\n", mode: 0o600)
            let result = try await Command.run(
                ["patch", "--quiet", "--force", "-F0", "-o", "\(directory)/out\(i)", "\(directory)/old\(i)", "\(directory)/diff\(i)"])
            #expect(result.status == 0, "patch: \(result.stdout) \(result.stderr)\n--- old:\n\(old)\n--- new:\n\(new)\n--- diff:\n\(diff)")
            #expect(try FileSystem.readText("\(directory)/out\(i)") == new, "\(diff)")
            checked += 1
        }
        #expect(checked > 30)
    }

    @Test("the hunks are GNU diff's for edits with one shortest script")
    func sameAsGNUDiff() async throws {
        let directory = TestFiles.temporaryDirectory("hm-diff")
        defer { TestFiles.removeTree(directory) }
        let cases: [(String?, String?)] = [
            (numbered(1...10), replacing(numbered(1...10), line: "5", with: "five\n")),
            (numbered(1...40), replacing(replacing(numbered(1...40), line: "3", with: ""), line: "30", with: "30\nthirty\n")),
            ("a\nb", "a\nb\n"),
            ("a\nb\n", "c\nd\n"),
            (nil, "x\ny\n"),
            ("x\ny\n", nil),
        ]
        for (i, (old, new)) in cases.enumerated() {
            var argv = ["diff", "-u"]
            for (side, text) in [("a", old), ("b", new)] {
                if let text {
                    try FileSystem.writeAtomically("\(directory)/\(side)\(i)", text, mode: 0o600)
                    argv += ["--label", "f", "\(directory)/\(side)\(i)"]
                } else {
                    argv += ["--label", "/dev/null", "/dev/null"]
                }
            }
            let gnu = try await Command.run(argv)
            #expect(gnu.status == 1)
            #expect(UnifiedDiff.render(old: old, new: new, path: "f") + "\n" == gnu.stdout, "case \(i)")
        }
    }

    @Test("a file rewritten whole past the edit limit: the middle removed, then added")
    func rewrittenWhole() {
        let old = (0..<1500).map { "old \($0)\n" }.joined()
        let new = (0..<1500).map { "new \($0)\n" }.joined()
        let diff = UnifiedDiff.render(old: "head\n" + old + "tail\n", new: "head\n" + new + "tail\n", path: "f")
        let lines = diff.split(separator: "\n")
        #expect(lines[2] == "@@ -1,1502 +1,1502 @@")
        #expect(lines.filter { $0.hasPrefix("-old") }.count == 1500 && lines.filter { $0.hasPrefix("+new") }.count == 1500)
        #expect(lines.firstIndex(of: "+new 0")! > lines.firstIndex(of: "-old 1499")!)
    }
}
