import HearthPgvector
import HearthConfiguration
import HearthRunner
import HearthSystem
import HearthPG
/// Renders the cluster's pg_hba.conf and pg_ident.conf from the shipped templates
/// (etc/pg_hba.conf.template, etc/pg_ident.conf.template) and the configuration. Pure: no
/// file or server is touched, so every configuration shape is unit-tested.
///
/// Template language: `{{NAME}}` is replaced by a value. Some placeholders belong to a list of
/// rows: `{{AI}}` and `{{AI_DATABASES}}` (one row per AI), `{{NETWORK}}`, `{{ADMIN_ROLE}}`,
/// `{{ADMIN_PASSWORD_ROLE}}` (a row when POSTGRES_ADMIN_PASSWORD is set). A line holding list
/// placeholders is written once per row (per combination of rows, for two lists, such as each
/// AI on each network), and not at all when a list is empty. Any other `{{...}}` is an error,
/// and so is a rendered rule whose method is not one of `peer`, `scram-sha-256`, `cert` or
/// `reject` (never `trust`, `md5`, `password`).
public enum HbaRenderer {
    public static let hbaTemplateName = "pg_hba.conf.template"
    public static let identTemplateName = "pg_ident.conf.template"
    /// The pg_ident map through which root and postgres administer the cluster.
    public static let adminMap = "hearthminds_admin"
    public static let allowedMethods: Set<String> = ["peer", "scram-sha-256", "cert", "reject"]

    public struct Files: Sendable, Equatable {
        public let hba: String
        public let ident: String
    }

    public struct Templates: Sendable {
        public let hba: String
        public let ident: String

        public init(hba: String, ident: String) {
            self.hba = hba
            self.ident = ident
        }

        /// Reads both templates from `<root>/etc/`.
        public static func load(root: String) throws(Failure) -> Templates {
            Templates(
                hba: try FileSystem.readText(root + "/etc/" + hbaTemplateName),
                ident: try FileSystem.readText(root + "/etc/" + identTemplateName))
        }

        /// Reads them from the shipped tree (HEARTHMINDS_ROOT, or the tree around the executable).
        public static func shipped() throws(Failure) -> Templates {
            guard let root = ShippedFiles.root() else {
                throw Failure(
                    "cannot find the shipped etc/\(hbaTemplateName): run from the HearthMinds tree or set HEARTHMINDS_ROOT")
            }
            return try load(root: root)
        }
    }

    /// The networks allowed to log in with a password over TCP besides loopback:
    /// POSTGRES_HOST's own address (when it is not loopback), then PG_ALLOWED_NETWORKS,
    /// without repeats.
    public static func networks(_ config: HearthConfig) -> [String] {
        var result: [String] = []
        if !HostAddresses.isLoopback(config.host) {
            result.append(config.host + (HostAddresses.isIPv6(config.host) ? "/128" : "/32"))
        }
        for network in config.allowedNetworks where !result.contains(network) {
            if network == "127.0.0.1/32" || network == "::1/128" { continue }
            result.append(network)
        }
        return result
    }

    /// The roles the admin map serves: postgres (the cluster's own superuser, which the steps
    /// use) and POSTGRES_ADMIN_USER when that is another role.
    public static func adminRoles(_ config: HearthConfig) -> [String] {
        config.adminUser == "postgres" ? ["postgres"] : ["postgres", config.adminUser]
    }

    public static func render(_ templates: Templates, _ config: HearthConfig) throws(Failure) -> Files {
        let roles = adminRoles(config)
        let scalars: [String: String] = [
            "VERSION": String(config.pgVersion),
            "CLUSTER": config.clusterName,
            "HEARTHMINDS_DB": token(config.hearthmindsDB),
            "SERVICE_USER": token(config.serviceUser),
            "MANAGER": token(config.hearthmindsUser),
            "ADMIN_ROLES": roles.map(token).joined(separator: ","),
            "ADMIN_MAP": adminMap,
            // The monitoring account (issue 23): the postgres database (the exporter's own) and ours.
            "MONITOR_USER": token(config.monitoring.user),
            "MONITOR_DATABASES": (["postgres"] + config.databases).map(token).joined(separator: ","),
        ]
        let lists: [String: [[String: String]]] = [
            "NETWORK": networks(config).map { ["NETWORK": $0] },
            "ADMIN_ROLE": roles.map { ["ADMIN_ROLE": token($0)] },
            "AI": config.ais.map {
                ["AI": token($0.name), "AI_DATABASES": [$0.database, config.hearthmindsDB].map(token).joined(separator: ",")]
            },
            "ADMIN_PASSWORD_ROLE": config.adminPassword == nil ? [] : [["ADMIN_PASSWORD_ROLE": token(config.adminUser)]],
        ]
        let hba = try expand(templates.hba, name: hbaTemplateName, scalars: scalars, lists: lists)
        try checkMethods(hba)
        let ident = try expand(templates.ident, name: identTemplateName, scalars: scalars, lists: lists)
        return Files(hba: hba, ident: ident)
    }

    /// A role, database or system user name as one pg_hba/pg_ident token: quoted when it is
    /// not a plain name, or is one of the files' keywords.
    public static func token(_ name: String) -> String {
        let keywords: Set<String> = ["all", "sameuser", "samerole", "samegroup", "replication"]
        let plain = name.unicodeScalars.first.map { ("a"..."z").contains($0) || $0 == "_" } ?? false
            && name.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || $0.isASCIIDigit || $0 == "_" || $0 == "-" }
        if plain && !keywords.contains(name) { return name }
        return "\"" + name + "\""
    }

    /// `lists`: list name → rows, each row its placeholders' values (a list's placeholders
    /// appear in no other list).
    static func expand(
        _ template: String, name: String, scalars: [String: String], lists: [String: [[String: String]]]
    ) throws(Failure) -> String {
        var listOf: [String: String] = [:]  // placeholder -> its list
        for (list, rows) in lists {
            listOf[list] = list
            for row in rows { for key in row.keys { listOf[key] = list } }
        }
        var out: [String] = []
        var lineNumber = 0
        for line in template.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) {
            lineNumber += 1
            let names = try placeholders(in: line, template: name, line: lineNumber)
            for unknown in names where scalars[unknown] == nil && listOf[unknown] == nil {
                throw Failure("\(name):\(lineNumber): unknown placeholder {{\(unknown)}}")
            }
            var base = line
            for key in names where scalars[key] != nil {
                base = base.replacing("{{\(key)}}", with: scalars[key]!)
            }
            // Every combination of the rows of the lists the line uses, in order of appearance.
            var used: [String] = []
            for key in names { if let list = listOf[key], !used.contains(list) { used.append(list) } }
            var lines = [base]
            for list in used {
                lines = lines.flatMap { partial in
                    (lists[list] ?? []).map { row in
                        row.reduce(partial) { text, entry in text.replacing("{{\(entry.key)}}", with: entry.value) }
                    }
                }
            }
            out += lines
        }
        return out.joined(separator: "\n")
    }

    /// The names of the `{{NAME}}` placeholders of a line; an unclosed `{{` is an error.
    static func placeholders(in line: String, template: String, line number: Int) throws(Failure) -> [String] {
        var names: [String] = []
        var rest = Substring(line)
        while let open = rest.firstRange(of: "{{") {
            let after = rest[open.upperBound...]
            guard let close = after.firstRange(of: "}}") else {
                throw Failure("\(template):\(number): '{{' without '}}'")
            }
            names.append(String(after[..<close.lowerBound]))
            rest = after[close.upperBound...]
        }
        return names
    }

    /// Every rule's method must be one we allow: a template edit cannot bring in trust or md5.
    static func checkMethods(_ hba: String) throws(Failure) {
        var number = 0
        for raw in hba.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = raw.prefix(while: { $0 != "#" })
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            if fields.isEmpty { continue }
            let methodIndex: Int
            switch fields[0] {
            case "local": methodIndex = 3
            case "host", "hostssl", "hostnossl", "hostgssenc", "hostnogssenc":
                // ADDRESS as CIDR (one field) or as address and mask (two).
                let separateMask = fields.count > 5 && !fields[3].contains("/")
                    && (HostAddresses.isIPv4(fields[3]) || HostAddresses.isIPv6(fields[3]))
                    && (HostAddresses.isIPv4(fields[4]) || HostAddresses.isIPv6(fields[4]))
                methodIndex = separateMask ? 5 : 4
            default:
                throw Failure("pg_hba.conf line \(number): unknown connection type '\(fields[0])'")
            }
            guard fields.count > methodIndex else {
                throw Failure("pg_hba.conf line \(number): no authentication method: \(line)")
            }
            let method = fields[methodIndex]
            guard allowedMethods.contains(method) else {
                throw Failure(
                    "pg_hba.conf line \(number): method '\(method)' is not allowed (only \(allowedMethods.sorted().joined(separator: ", ")))")
            }
        }
    }
}
