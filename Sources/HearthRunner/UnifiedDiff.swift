import HearthSystem
/// A unified diff of two texts, as `diff -u` prints it: `---`/`+++` headers naming the paths
/// (`/dev/null` for a file that does not exist on that side), `@@ -l,s +l,s @@` hunks with
/// `context` lines of context around each change (hunks closer than twice that are merged), and
/// `\ No newline at end of file` after a last line without one. What a dry run shows of a file
/// the suite owns (DryRunPreview).
///
/// Lines are compared with their line ends, so a last line that gains or loses its newline is
/// a change. The edit script is Myers' shortest one; past `maximumEdits` differing lines (a file
/// rewritten whole) the differing middle is shown as removed, then added.
public enum UnifiedDiff {
    public static let defaultContext = 3
    /// Beyond this many edits (after the common head and tail are set aside) the differing
    /// middle is one removal and one addition: Myers' trace grows with the square of it.
    public static let maximumEdits = 1000

    /// The diff from `old` to `new` (nil: no such file, shown as /dev/null); "" when they are the
    /// same. `path` names both sides; `newPath` the new one when it differs.
    public static func render(
        old: String?, new: String?, path: String, newPath: String? = nil, context: Int = defaultContext
    ) -> String {
        if old == new { return "" }
        let a = lines(old ?? "")
        let b = lines(new ?? "")
        let ops = edits(a, b)
        var out = [
            "--- " + (old == nil ? "/dev/null" : path),
            "+++ " + (new == nil ? "/dev/null" : (newPath ?? path)),
        ]
        for hunk in hunks(ops, context: max(0, context)) {
            out.append(contentsOf: render(hunk, ops, a, b))
        }
        // (An empty file made or removed: the headers alone say it.)
        return out.joined(separator: "\n")
    }

    /// The lines of `text`, each with its "\n" (the last one without, when the text does not end
    /// with a newline).
    static func lines(_ text: String) -> [Substring] {
        var out: [Substring] = []
        var start = text.startIndex
        var i = text.startIndex
        while i < text.endIndex {
            let next = text.index(after: i)
            if text[i] == "\n" {
                out.append(text[start..<next])
                start = next
            }
            i = next
        }
        if start < text.endIndex { out.append(text[start...]) }
        return out
    }

    enum Op: Equatable {
        /// a[i] == b[j]
        case same(Int, Int)
        /// a[i] removed
        case delete(Int)
        /// b[j] added
        case insert(Int)

        var isChange: Bool {
            if case .same = self { return false }
            return true
        }
    }

    /// The edit script from `a` to `b`, in order.
    static func edits(_ a: [Substring], _ b: [Substring]) -> [Op] {
        var head = 0
        while head < a.count, head < b.count, a[head] == b[head] { head += 1 }
        var tail = 0
        while tail < a.count - head, tail < b.count - head, a[a.count - 1 - tail] == b[b.count - 1 - tail] { tail += 1 }
        var ops: [Op] = (0..<head).map { .same($0, $0) }
        let middleA = Array(a[head..<(a.count - tail)])
        let middleB = Array(b[head..<(b.count - tail)])
        if let middle = myers(middleA, middleB) {
            ops += middle.map { op in
                switch op {
                case .same(let i, let j): .same(i + head, j + head)
                case .delete(let i): .delete(i + head)
                case .insert(let j): .insert(j + head)
                }
            }
        } else {
            ops += (0..<middleA.count).map { .delete($0 + head) } + (0..<middleB.count).map { .insert($0 + head) }
        }
        ops += (0..<tail).map { .same(a.count - tail + $0, b.count - tail + $0) }
        return ops
    }

    /// Myers' O(ND) shortest edit script; nil past `maximumEdits`.
    static func myers(_ a: [Substring], _ b: [Substring]) -> [Op]? {
        let n = a.count
        let m = b.count
        if n == 0 { return (0..<m).map { .insert($0) } }
        if m == 0 { return (0..<n).map { .delete($0) } }
        let limit = min(n + m, maximumEdits)
        let offset = limit + 1
        var v = [Int](repeating: 0, count: 2 * limit + 3)
        // trace[d]: v[k] for k in -(d+1)...(d+1), as it was before round d.
        var trace: [[Int]] = []
        var found = false
        rounds: for d in 0...limit {
            trace.append(Array(v[(offset - d - 1)...(offset + d + 1)]))
            for k in stride(from: -d, through: d, by: 2) {
                var x: Int
                if k == -d || (k != d && v[offset + k - 1] < v[offset + k + 1]) {
                    x = v[offset + k + 1]
                } else {
                    x = v[offset + k - 1] + 1
                }
                var y = x - k
                while x < n, y < m, a[x] == b[y] {
                    x += 1
                    y += 1
                }
                v[offset + k] = x
                if x >= n && y >= m {
                    found = true
                    break rounds
                }
            }
        }
        guard found else { return nil }
        var reversed: [Op] = []
        var x = n
        var y = m
        for d in stride(from: trace.count - 1, through: 0, by: -1) {
            let saved = trace[d]
            func at(_ k: Int) -> Int { saved[k + d + 1] }
            let k = x - y
            let previousK = (k == -d || (k != d && at(k - 1) < at(k + 1))) ? k + 1 : k - 1
            let previousX = at(previousK)
            let previousY = previousX - previousK
            while x > previousX && y > previousY {
                reversed.append(.same(x - 1, y - 1))
                x -= 1
                y -= 1
            }
            if d > 0 {
                reversed.append(x == previousX ? .insert(previousY) : .delete(previousX))
            }
            x = previousX
            y = previousY
        }
        return reversed.reversed()
    }

    /// The ranges of `ops` that make the hunks: each change with `context` unchanged lines
    /// around it, hunks whose contexts meet merged.
    static func hunks(_ ops: [Op], context: Int) -> [Range<Int>] {
        var out: [Range<Int>] = []
        var i = 0
        while i < ops.count {
            guard ops[i].isChange else {
                i += 1
                continue
            }
            let start = max(0, i - context)
            var lastChange = i
            var j = i + 1
            while j < ops.count {
                if ops[j].isChange {
                    lastChange = j
                } else if j - lastChange > 2 * context {
                    break
                }
                j += 1
            }
            let end = min(ops.count, lastChange + context + 1)
            if let previous = out.last, previous.upperBound >= start {
                out[out.count - 1] = previous.lowerBound..<end
            } else {
                out.append(start..<end)
            }
            i = end
        }
        return out
    }

    private static func render(_ hunk: Range<Int>, _ ops: [Op], _ a: [Substring], _ b: [Substring]) -> [String] {
        // The lines of each side before the hunk: where it starts.
        var beforeA = 0
        var beforeB = 0
        for op in ops[..<hunk.lowerBound] {
            switch op {
            case .same: beforeA += 1; beforeB += 1
            case .delete: beforeA += 1
            case .insert: beforeB += 1
            }
        }
        var countA = 0
        var countB = 0
        var body: [String] = []
        func line(_ prefix: String, _ text: Substring) {
            if text.hasSuffix("\n") {
                body.append(prefix + text.dropLast())
            } else {
                body.append(prefix + text)
                body.append("\\ No newline at end of file")
            }
        }
        for op in ops[hunk] {
            switch op {
            case .same(let i, _):
                countA += 1
                countB += 1
                line(" ", a[i])
            case .delete(let i):
                countA += 1
                line("-", a[i])
            case .insert(let j):
                countB += 1
                line("+", b[j])
            }
        }
        func range(_ before: Int, _ count: Int) -> String {
            count == 1 ? "\(before + 1)" : "\(count == 0 ? before : before + 1),\(count)"
        }
        return ["@@ -\(range(beforeA, countA)) +\(range(beforeB, countB)) @@"] + body
    }
}
