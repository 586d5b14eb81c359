#if canImport(Glibc)
import Glibc
#endif

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
