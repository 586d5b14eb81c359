import HearthSystem
/// What a dry run shows of a file the suite owns and replaces whole (pg_hba.conf, pg_ident.conf,
/// conf.d/hearthminds.conf, the createcluster.d drop-in, start.conf, the client files): a
/// unified diff from the file on disk to the file the run writes, with its mode and owner when
/// those change too.
///
/// The file is read as its check reads it: through the handle of its directory (OpenDirectory,
/// reached by the trust rule), without following a link. A link, a directory or anything else in
/// the file's place is named, never read through; a missing file is a diff from /dev/null.
public enum DryRunPreview {
    /// `directory`: the directory the file is in, open (nil: it does not exist yet, nor the file).
    /// `mode`, `uid`, `gid`: what the run gives the file (nil: not changed). `mask`: applied to
    /// (on disk, wanted) before they are compared, to hide secrets on both sides.
    public static func file(
        _ path: String, in directory: OpenDirectory?, _ name: String, text: String, mode: UInt32,
        uid: UInt32? = nil, gid: UInt32? = nil, mask: ((String?, String) -> (String?, String))? = nil
    ) throws -> String {
        func masked(_ old: String?) -> (String?, String) { mask?(old, text) ?? (old, text) }
        guard let directory, let entry = try directory.entry(name) else {
            return UnifiedDiff.render(old: nil, new: masked(nil).1, path: path)
        }
        guard entry.kind == .file else {
            let owner = OpenDirectory.userName(entry.uid)
            switch entry.kind {
            case .symlink:
                return "\(path) is a symbolic link (owned by \(owner)), not a file of ours: not followed, not read; "
                    + "the run replaces the link with this file:\n" + UnifiedDiff.render(old: nil, new: masked(nil).1, path: path)
            case .directory:
                return "\(path) is a directory (owned by \(owner)), not a file of ours: not read; the run cannot "
                    + "replace it (a false result): move it away"
            default:
                return "\(path) is not a regular file (owned by \(owner)): not read; the run replaces it with this "
                    + "file:\n" + UnifiedDiff.render(old: nil, new: masked(nil).1, path: path)
            }
        }
        var lines: [String] = []
        let wantedUID = uid ?? entry.uid
        let wantedGID = gid ?? entry.gid
        if entry.uid != wantedUID || entry.gid != wantedGID {
            lines.append(
                "\(path): owned by \(OpenDirectory.userName(entry.uid)), group \(entry.gid), not the suite's "
                    + "\(OpenDirectory.userName(wantedUID)), group \(wantedGID): the run gives it to them")
        }
        if entry.mode != mode {
            lines.append("\(path): mode \(OpenDirectory.octal(entry.mode)) -> \(OpenDirectory.octal(mode))")
        }
        let (old, new) = masked(try directory.readText(name))
        let diff = UnifiedDiff.render(old: old, new: new, path: path)
        if !diff.isEmpty { lines.append(diff) }
        return lines.joined(separator: "\n")
    }
}
