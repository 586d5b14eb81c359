import HearthPostgres
import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// The client side of a host: `pg_service.conf` and one password file per password role
/// (mode 0600) under /etc/hearthminds, so that
/// `PGSERVICEFILE=/etc/hearthminds/pg_service.conf psql service=logos` reaches a database
/// without a password on the command line.
public struct ClientFiles: Sendable {
    public let directory: String
    /// Relative path (under `directory`) to content; password files are the secret ones.
    public let files: [String: String]
    public let secretFiles: Set<String>

    public static let defaultDirectory = PasswordBook.defaultDirectory
    public static let serviceFile = "pg_service.conf"
    public static let passwordDirectory = PasswordBook.passwordDirectory

    /// The files for every password role's password in `passwords` (an error names a role that
    /// has none yet).
    public init(
        config: HearthConfig, server: PGServer, passwords book: PasswordBook,
        directory: String = ClientFiles.defaultDirectory
    ) throws(Failure) {
        try self.init(config: config, server: server, directory: directory) { (role) throws(Failure) in
            try book.password(role)
        }
    }

    /// The files with each role's password from `password` (a dry run's preview: placeholders
    /// for the passwords the run is yet to generate).
    init(
        config: HearthConfig, server: PGServer, directory: String,
        password: (String) throws(Failure) -> Secret
    ) throws(Failure) {
        self.directory = directory
        var services: [String] = [
            "# Managed by the HearthMinds bootstrap (hm-databases): replaced whole on every run.",
            "# Use: PGSERVICEFILE=\(directory)/\(ClientFiles.serviceFile) psql service=NAME (as root: the",
            "# password files are root's, mode 0600).",
        ]
        var files: [String: String] = [:]
        var secret: Set<String> = []

        func entry(_ service: String, host: String, database: String, user: String, passfile: String?) {
            services.append("")
            services.append("[\(service)]")
            services.append("host=\(host)")
            services.append("port=\(server.port)")
            services.append("dbname=\(database)")
            services.append("user=\(user)")
            if let passfile { services.append("passfile=\(directory)/\(passfile)") }
        }
        func passfile(_ user: String, _ password: Secret, _ databases: [String]) -> String {
            let path = "\(ClientFiles.passwordDirectory)/\(user)"
            files[path] = databases.map {
                [server.tcpHost, String(server.port), $0, user, password.reveal].map(ClientFiles.escape)
                    .joined(separator: ":")
            }.joined(separator: "\n") + "\n"
            secret.insert(path)
            return path
        }

        let manager = passfile(config.hearthmindsUser, try password(config.hearthmindsUser), [config.hearthmindsDB])
        entry(config.hearthmindsUser, host: server.tcpHost, database: config.hearthmindsDB, user: config.hearthmindsUser,
              passfile: manager)
        entry(config.serviceUser, host: server.socketDirectory, database: config.hearthmindsDB, user: config.serviceUser,
              passfile: nil)
        for ai in config.ais {
            let file = passfile(ai.name, try password(ai.name), [ai.database, config.hearthmindsDB])
            entry(ai.name, host: server.tcpHost, database: ai.database, user: ai.name, passfile: file)
            entry("\(ai.name)-shared", host: server.tcpHost, database: config.hearthmindsDB, user: ai.name, passfile: file)
        }
        files[ClientFiles.serviceFile] = services.joined(separator: "\n") + "\n"
        self.files = files
        self.secretFiles = secret
    }

    /// A .pgpass field: backslash and colon escaped.
    static func escape(_ field: String) -> String {
        field.replacing("\\", with: "\\\\").replacing(":", with: "\\:")
    }

    func mode(_ path: String) -> UInt32 { secretFiles.contains(path) ? 0o600 : 0o644 }

    /// Files on disk that are ours but no longer wanted (an AI removed from the config).
    func strayPasswordFiles(_ passwords: OpenDirectory?) throws -> [String] {
        guard let passwords else { return [] }
        return try passwords.list().filter { files["\(ClientFiles.passwordDirectory)/\($0)"] == nil }
    }

    /// Every file present with this content, owner root and its mode; no stray password file.
    /// Read without following links (through the directories' handles).
    public func isConverged() -> Bool {
        guard let top = try? OpenDirectory.openIfPresent(directory) else { return false }
        let passwords = try? top.directory(ClientFiles.passwordDirectory)
        for (path, content) in files {
            let (inner, name) = split(path)
            guard let holder = inner == nil ? top : passwords,
                let status = try? holder.entry(name), status.kind == .file, status.uid == 0, status.mode == mode(path),
                let text = try? holder.readText(name), text == content
            else { return false }
        }
        return (try? strayPasswordFiles(passwords).isEmpty) == true
    }

    /// Writes every file through the directories' handles (root's, 0755 and 0700), and removes
    /// the password files of roles no longer configured.
    public func write() throws {
        let top = try OpenDirectory.makePath(directory, mode: 0o755)
        let passwords = try top.makeDirectory(ClientFiles.passwordDirectory, mode: 0o700, uid: 0, gid: 0)
        for (path, content) in files.sorted(by: { $0.key < $1.key }) {
            let (inner, name) = split(path)
            try (inner == nil ? top : passwords).write(name, content, mode: mode(path), uid: 0, gid: 0)
        }
        for stray in try strayPasswordFiles(passwords) { try passwords.remove(stray) }
    }

    /// "pgpass/logos" -> ("pgpass", "logos"); "pg_service.conf" -> (nil, "pg_service.conf").
    func split(_ path: String) -> (String?, String) {
        guard let slash = path.firstIndex(of: "/") else { return (nil, path) }
        return (String(path[..<slash]), String(path[path.index(after: slash)...]))
    }
}
