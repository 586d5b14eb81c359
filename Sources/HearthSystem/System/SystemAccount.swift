#if canImport(Glibc)
import Glibc
#endif

/// A system account as the password and group databases describe it.
public struct SystemAccount: Sendable, Equatable {
    public let name: String
    public let uid: UInt32
    public let gid: UInt32
    public let home: String
    public let shell: String
    /// The comment (GECOS) field.
    public let comment: String

    /// Looks a user up by name (getpwnam_r); nil when there is none.
    public static func lookup(_ name: String) -> SystemAccount? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        let rc = getpwnam_r(name, &entry, &buffer, buffer.count, &result)
        guard rc == 0, result != nil else { return nil }
        return SystemAccount(
            name: String(cString: entry.pw_name), uid: entry.pw_uid, gid: entry.pw_gid,
            home: String(cString: entry.pw_dir), shell: String(cString: entry.pw_shell),
            comment: entry.pw_gecos.map { String(cString: $0) } ?? "")
    }

    /// The name of the account with `uid`; nil when there is none.
    public static func name(uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: entry.pw_name)
    }

    /// The account running this process (by real uid).
    public static func current() -> SystemAccount? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getpwuid_r(getuid(), &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return lookup(String(cString: entry.pw_name))
    }

    /// A group's id by name; nil when there is no such group.
    public static func groupID(_ name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.gr_gid
    }

    /// The group name of a gid; nil when there is none.
    public static func groupName(_ gid: UInt32) -> String? {
        var entry = group()
        var result: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 16384)
        guard getgrgid_r(gid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return String(cString: entry.gr_name)
    }

    /// The upper bound of system uids (SYS_UID_MAX in /etc/login.defs, else UID_MIN - 1, else 999).
    public static func systemUIDMax(loginDefs: String = "/etc/login.defs") -> UInt32 {
        systemIDMax("SYS_UID_MAX", "UID_MIN", loginDefs: loginDefs)
    }

    /// The upper bound of system gids (SYS_GID_MAX, else GID_MIN - 1, else 999).
    public static func systemGIDMax(loginDefs: String = "/etc/login.defs") -> UInt32 {
        systemIDMax("SYS_GID_MAX", "GID_MIN", loginDefs: loginDefs)
    }

    static func systemIDMax(_ maxKey: String, _ minKey: String, loginDefs: String) -> UInt32 {
        guard let text = try? FileSystem.readText(loginDefs) else { return 999 }
        var sysMax: UInt32? = nil
        var idMin: UInt32? = nil
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.count >= 2 else { continue }
            if fields[0] == maxKey { sysMax = UInt32(fields[1]) }
            if fields[0] == minKey { idMin = UInt32(fields[1]) }
        }
        return sysMax ?? idMin.map { $0 - 1 } ?? 999
    }

    /// A group's member list (the names /etc/group lists); nil when there is no such group.
    public static func groupMembers(_ name: String) -> [String]? {
        var entry = group()
        var result: UnsafeMutablePointer<group>? = nil
        var buffer = [CChar](repeating: 0, count: 65536)
        guard getgrnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        var members: [String] = []
        var pointer = entry.gr_mem
        while let member = pointer?.pointee {
            members.append(String(cString: member))
            pointer = pointer! + 1
        }
        return members
    }

    /// The accounts whose primary group is `gid` (the whole password database, read once).
    public static func primaryMembers(gid: UInt32) -> [String] {
        var names: [String] = []
        setpwent()
        while let entry = getpwent() {
            if entry.pointee.pw_gid == gid { names.append(String(cString: entry.pointee.pw_name)) }
        }
        endpwent()
        return names
    }

    public static var isRoot: Bool { geteuid() == 0 }
}
