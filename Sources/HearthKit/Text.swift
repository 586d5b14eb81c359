/// The text helpers the parsers, the console and the commands share: one of each.
extension String {
    /// Without the leading and trailing characters of `set`, taken scalar by scalar: "\r\n" is
    /// one Character of Swift's, but two scalars, each of which the set may hold.
    func trimmingCharacters(in set: String) -> String {
        let trimmed = Set(set.unicodeScalars)
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !trimmed.contains($0) }),
            let last = scalars.lastIndex(where: { !trimmed.contains($0) })
        else { return "" }
        return String(scalars[first...last])
    }

    /// The text and at least one space, `width` characters in all when it is shorter: a column
    /// of a console table.
    func padded(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
