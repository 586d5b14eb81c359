/// The text helpers the parsers, the console and the commands share: one of each.
extension String {
    /// Without the leading and trailing characters of `set`, taken scalar by scalar: "\r\n" is
    /// one Character of Swift's, but two scalars, each of which the set may hold.
    package func trimmingCharacters(in set: String) -> String {
        let trimmed = Set(set.unicodeScalars)
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !trimmed.contains($0) }),
            let last = scalars.lastIndex(where: { !trimmed.contains($0) })
        else { return "" }
        return String(scalars[first...last])
    }

    /// The text and at least one space, `width` characters in all when it is shorter: a column
    /// of a console table.
    package func padded(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}

/// Text bounded before it reaches the log, the console or an error: what another account
/// controls (a tenant's value in a server's error, a revision id) can be of any size, and the
/// log, the console and root's time are not its to fill. Linear in the text (a byte count and
/// one cut at a scalar boundary).
public enum Bounded {
    /// A log record's detail, an error's message, a console line's detail: a few KiB.
    public static let detailBytes = 4096
    /// A dry run's preview (a unified diff, statements).
    public static let previewBytes = 65536

    /// `text` when its UTF-8 is at most `limit` bytes; otherwise its first `limit` bytes or
    /// fewer (cut at a scalar boundary) and "… (N bytes more)".
    public static func text(_ text: String, _ limit: Int = detailBytes) -> String {
        let utf8 = text.utf8
        let total = utf8.count
        guard total > limit else { return text }
        var cut = utf8.index(utf8.startIndex, offsetBy: max(limit, 0))
        // Back to the start of a scalar: continuation bytes are 0b10xxxxxx.
        while cut > utf8.startIndex, utf8[cut] & 0xC0 == 0x80 { cut = utf8.index(before: cut) }
        let kept = utf8.distance(from: utf8.startIndex, to: cut)
        return String(Substring(utf8[..<cut])) + "… (\(total - kept) bytes more)"
    }
}

extension Unicode.Scalar {
    package var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
    package var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

extension Character {
    package var isASCIIDigitCharacter: Bool { ("0"..."9").contains(self) }
}
