import HearthSystem
/// The validated configuration every step works from. Building one checks the whole of it;
/// a step changes nothing before it has one.
public struct HearthConfig: Sendable {
    public struct AI: Sendable, Equatable {
        /// The role name (the AI's name).
        public let name: String
        /// `<name><AI_DB_SUFFIX>`.
        public let database: String
        /// The configured password; nil: none configured (one is generated once and kept in the
        /// client files, see PasswordBook).
        public let password: Secret?
    }

    /// A role whose configured password is its own name (the seed's scheme), and where that
    /// was configured: every run warns about it.
    public struct NamedPassword: Sendable, Equatable {
        public let role: String
        public let key: String
        public let origin: String
    }

    /// The index on memory_shards.embedding: IVFFlat (revision 0003, the seed's) or HNSW
    /// (revision 0007 replaces it).
    public enum VectorIndexKind: String, Sendable, CaseIterable {
        case ivfflat, hnsw
    }

    /// How memory_shards.embedding is stored and indexed (revision 0008, issue 24): full
    /// precision, half precision, or full precision with an HNSW index on its binary
    /// quantization (re-ranked in full precision by memory_search).
    public enum VectorStorage: String, Sendable, CaseIterable {
        case vector, halfvec, binary
    }

    public enum PgvectorMethod: String, Sendable, CaseIterable {
        case auto, apt, shipped
        case debianSource = "debian-source"
        case tarball
    }

    public let pgVersion: Int
    public let clusterName: String
    public let host: String
    public let port: Int
    public let serviceUser: String
    public let serviceHome: String
    public let adminUser: String
    /// nil: the admin keeps peer-only access.
    public let adminPassword: Secret?
    public let hearthmindsDB: String
    public let hearthmindsUser: String
    /// nil: none configured (generated once, see PasswordBook).
    public let hearthmindsPassword: Secret?
    /// Configured passwords that equal their role's name.
    public let namedPasswords: [NamedPassword]
    /// TLS certificate and key for the server; nil: Debian's snakeoil pair.
    public let sslCertFile: String?
    public let sslKeyFile: String?
    public let ais: [AI]
    public let aiDBSuffix: String
    public let extensions: [String]
    public let embeddingDim: Int
    public let ivfflat: Bool
    /// nil: `auto`, lists from the rows when the vector-index step trains the index (see
    /// IvfflatTraining); revision files render it as 100.
    public let ivfflatLists: Int?
    /// nil: `auto`, the square root of the index's lists, rounded up.
    public let ivfflatProbes: Int?
    public let vectorIndex: VectorIndexKind
    public let hnswM: Int
    public let hnswEfConstruction: Int
    public let hnswEfSearch: Int
    /// PGVECTOR_STORAGE: a host key only (the configuration has no per-AI values but passwords).
    public let vectorStorage: VectorStorage
    /// PGVECTOR_RERANK: the candidates memory_search re-ranks with PGVECTOR_STORAGE=binary.
    public let rerank: Int
    public let allowedNetworks: [String]
    public let logPath: String
    public let pgvectorMethod: PgvectorMethod
    public let pgvectorSuite: String
    public let pgvectorSource: String
    public let pgvectorSHA256: String
    /// STEP_TIMEOUT: nil is `auto` (StepDeadline.seconds picks per step).
    public let stepTimeout: Int?
    /// BACKUP and BACKUP_*: nil when BACKUP is off.
    public let backup: BackupConfig?
    /// Monitoring (issue 23): the exporter's account and role, its listener, and the textfile
    /// directory of the run metrics (nil: none written).
    public let monitoring: MonitoringConfig
    /// PG_TUNE and the server's sizing keys (issue 24, ServerTuning).
    public let tuning: ServerTuning.Config
    /// PG_ANALYZE_FRACTION (TableStatistics); nil: off.
    public let analyzeFraction: Double?

    /// Names no AI may take and no database of ours may have.
    public static let reservedNames: Set<String> = ["postgres", "template0", "template1", "public", "root"]

    /// Loads the layers and validates them.
    public static func load(_ sources: ConfigSources) throws(Failure) -> HearthConfig {
        try ConfigLoader.load(sources)
    }

    /// The whole configuration from its raw values, checked part by part in the order below
    /// (the first bad key is the error).
    init(raw: [String: RawValue], aiNames: [String], passwords: [String: RawValue], seedScheme: String? = nil)
        throws(Failure)
    {
        let value = { (key: String) -> RawValue in raw[key]! }
        typealias V = ConfigValues

        (pgVersion, clusterName, host, port) = try Self.cluster(value)
        (serviceUser, serviceHome) = try Self.serviceAccount(value)

        adminUser = try V.identifier("POSTGRES_ADMIN_USER", value("POSTGRES_ADMIN_USER"))
        let adminPasswordRaw = value("POSTGRES_ADMIN_PASSWORD")
        adminPassword = adminPasswordRaw.value.isEmpty ? nil : Secret(adminPasswordRaw.value)

        hearthmindsDB = try V.identifier("HEARTHMINDS_DB", value("HEARTHMINDS_DB"))
        hearthmindsUser = try V.identifier("HEARTHMINDS_USER", value("HEARTHMINDS_USER"))
        let managerPassword = value("HEARTHMINDS_PASSWORD")
        hearthmindsPassword = managerPassword.value.isEmpty ? nil : Secret(managerPassword.value)
        var named: [NamedPassword] = []
        if managerPassword.value == hearthmindsUser {
            named.append(NamedPassword(role: hearthmindsUser, key: "HEARTHMINDS_PASSWORD", origin: managerPassword.origin))
        }

        let suffixRaw = value("AI_DB_SUFFIX")
        guard suffixRaw.value.unicodeScalars.allSatisfy({ ("a"..."z").contains($0) || $0.isASCIIDigit || $0 == "_" })
        else {
            throw V.fail("AI_DB_SUFFIX", suffixRaw, "may hold only lower-case letters, digits and _")
        }
        aiDBSuffix = suffixRaw.value

        try Self.requireDistinctRoles(
            value, hearthmindsDB: hearthmindsDB, hearthmindsUser: hearthmindsUser, serviceUser: serviceUser,
            adminUser: adminUser)
        let (ais, aiNamed) = try Self.ais(
            aiNames, value("AI_NAMES"), suffix: aiDBSuffix, passwords: passwords, seedScheme: seedScheme,
            taken: Self.reservedNames.union([hearthmindsUser, serviceUser, adminUser, hearthmindsDB]))
        self.ais = ais
        namedPasswords = named + aiNamed
        extensions = try Self.extensionNames(value("AI_DEFAULT_EXTENSIONS"))

        (ivfflat, vectorIndex, vectorStorage, embeddingDim) = try Self.vectorColumn(value)
        rerank = try V.int("PGVECTOR_RERANK", value("PGVECTOR_RERANK"), 1...1000, "a count of candidates")
        (ivfflatLists, ivfflatProbes) = try Self.ivfflatSettings(value)
        (hnswM, hnswEfConstruction, hnswEfSearch) = try Self.hnswSettings(value)

        allowedNetworks = try Self.networks(value("PG_ALLOWED_NETWORKS"))
        (sslCertFile, sslKeyFile) = try Self.tlsPair(value)

        logPath = try V.absolutePath("HEARTHMINDS_LOG", value("HEARTHMINDS_LOG"))

        (pgvectorMethod, pgvectorSuite, pgvectorSource, pgvectorSHA256) = try Self.pgvectorInstall(value)
        stepTimeout = try V.intOrAuto("STEP_TIMEOUT", value("STEP_TIMEOUT"), 1...86400, "a number of seconds")
        backup = try BackupConfig.load(value)
        monitoring = try MonitoringConfig(
            value, taken: Self.reservedNames.union([hearthmindsUser, serviceUser, adminUser, hearthmindsDB])
                .union(ais.map(\.name)))
        tuning = try ServerTuning.config(value)
        analyzeFraction = try ConfigValues.analyzeFraction(value("PG_ANALYZE_FRACTION"))
    }

    /// Every database the suite owns: HEARTHMINDS_DB, then each AI's.
    public var databases: [String] { [hearthmindsDB] + ais.map(\.database) }

    /// Debian's snakeoil pair (package ssl-cert), the server's certificate unless configured.
    public static let snakeoilCertFile = "/etc/ssl/certs/ssl-cert-snakeoil.pem"
    public static let snakeoilKeyFile = "/etc/ssl/private/ssl-cert-snakeoil.key"

    /// True when the server listens only on loopback.
    public var listensOnLoopbackOnly: Bool {
        host == "localhost" || host.hasPrefix("127.") || host == "::1"
    }
}

/// The parts of HearthConfig.init(raw:), in its order: each checks its keys and returns their values.
extension HearthConfig {
    fileprivate typealias V = ConfigValues
    fileprivate typealias Value = (String) -> RawValue

    /// PG_VERSION, PG_CLUSTER_NAME, POSTGRES_HOST, POSTGRES_PORT.
    fileprivate static func cluster(_ value: Value) throws(Failure)
        -> (version: Int, name: String, host: String, port: Int)
    {
        // 15 or later: from 15 on, PUBLIC may not create in schema public (a tenant could otherwise
        // plant objects in every database).
        let pgVersion = try V.int("PG_VERSION", value("PG_VERSION"), 15...18, "a supported PostgreSQL major version")
        let cluster = value("PG_CLUSTER_NAME")
        guard let c = cluster.value.unicodeScalars.first, c.isASCIILetter || c.isASCIIDigit,
            cluster.value.utf8.count <= 63,
            cluster.value.unicodeScalars.allSatisfy({
                $0.isASCIILetter || $0.isASCIIDigit || $0 == "_" || $0 == "-" || $0 == "."
            })
        else {
            throw V.fail("PG_CLUSTER_NAME", cluster, "not a cluster name: letters, digits, '_', '-' and '.'")
        }

        let hostRaw = value("POSTGRES_HOST")
        guard hostRaw.value == "localhost" || V.isIPAddress(hostRaw.value) else {
            throw V.fail("POSTGRES_HOST", hostRaw, "not an IP address of this host or 'localhost'")
        }
        let port = try V.int("POSTGRES_PORT", value("POSTGRES_PORT"), 1...65535, "a port number")
        return (pgVersion, cluster.value, hostRaw.value, port)
    }

    /// HEARTHMINDS_SERVICE_USER and HEARTHMINDS_SERVICE_HOME (default /var/lib/<user>).
    fileprivate static func serviceAccount(_ value: Value) throws(Failure) -> (user: String, home: String) {
        let serviceRaw = value("HEARTHMINDS_SERVICE_USER")
        guard V.isSystemUserName(serviceRaw.value) else {
            throw V.fail(
                "HEARTHMINDS_SERVICE_USER", serviceRaw,
                "not a system user name: a lower-case letter or _, then [a-z0-9_-], at most 32")
        }
        let serviceUser = serviceRaw.value
        let homeRaw = value("HEARTHMINDS_SERVICE_HOME")
        let serviceHome =
            homeRaw.value.isEmpty ? "/var/lib/\(serviceUser)" : try V.absolutePath("HEARTHMINDS_SERVICE_HOME", homeRaw)
        return (serviceUser, serviceHome)
    }

    /// The names that are ours or the server's: reserved ones, and the manager, the service and
    /// the admin each a role of its own.
    fileprivate static func requireDistinctRoles(
        _ value: Value, hearthmindsDB: String, hearthmindsUser: String, serviceUser: String, adminUser: String
    ) throws(Failure) {
        for (key, name) in [("HEARTHMINDS_DB", hearthmindsDB), ("HEARTHMINDS_USER", hearthmindsUser)]
        where Self.reservedNames.contains(name) {
            throw V.fail(key, value(key), "'\(name)' is reserved")
        }
        if hearthmindsUser == serviceUser || hearthmindsUser == adminUser {
            throw V.fail("HEARTHMINDS_USER", value("HEARTHMINDS_USER"), "must differ from the service and admin users")
        }
        if serviceUser == adminUser || serviceUser == "root" || serviceUser == "postgres" {
            throw V.fail("HEARTHMINDS_SERVICE_USER", value("HEARTHMINDS_SERVICE_USER"), "must not be root, postgres or the admin user")
        }
    }

    /// The AIs of AI_NAMES: plain names, none reserved (`taken`) or twice, their databases
    /// within PostgreSQL's limit, and their passwords (configured, the seed's scheme, or none);
    /// with the passwords that are their role's name.
    fileprivate static func ais(
        _ aiNames: [String], _ namesRaw: RawValue, suffix aiDBSuffix: String, passwords: [String: RawValue],
        seedScheme: String?, taken: Set<String>
    ) throws(Failure) -> ([AI], [NamedPassword]) {
        var named: [NamedPassword] = []
        var seen: Set<String> = []
        var ais: [AI] = []
        for name in aiNames {
            guard V.isPlainIdentifier(name) else {
                throw V.fail(
                    "AI_NAMES", namesRaw,
                    "'\(name)' is not a plain name: a lower-case letter, then lower-case letters, digits or _")
            }
            guard !name.hasPrefix("pg_") else {
                throw V.fail("AI_NAMES", namesRaw, "'\(name)': names starting with pg_ are reserved by PostgreSQL")
            }
            guard !taken.contains(name) else { throw V.fail("AI_NAMES", namesRaw, "'\(name)' is reserved") }
            guard seen.insert(name).inserted else { throw V.fail("AI_NAMES", namesRaw, "'\(name)' appears twice") }
            let database = name + aiDBSuffix
            guard database.utf8.count <= V.maxIdentifierBytes else {
                throw V.fail(
                    "AI_NAMES", namesRaw,
                    "database name '\(database)' is longer than PostgreSQL's \(V.maxIdentifierBytes)-byte limit")
            }
            guard !taken.contains(database) else {
                throw V.fail("AI_NAMES", namesRaw, "database name '\(database)' is reserved or already in use")
            }
            let key = "\(name.uppercased())_PASSWORD"
            var password: Secret?
            if let given = passwords[name] {
                if given.value.isEmpty { throw Failure.configuration(key: key, "must not be empty (from \(given.origin))") }
                password = Secret(given.value)
                if given.value == name { named.append(NamedPassword(role: name, key: key, origin: given.origin)) }
            } else if let seedScheme {
                password = Secret(name)
                named.append(NamedPassword(role: name, key: EnvFile.templateKey, origin: seedScheme))
            }
            ais.append(AI(name: name, database: database, password: password))
        }
        return (ais, named)
    }

    /// AI_DEFAULT_EXTENSIONS: plain names, each once.
    fileprivate static func extensionNames(_ extensionsRaw: RawValue) throws(Failure) -> [String] {
        let extensions = try V.list("AI_DEFAULT_EXTENSIONS", extensionsRaw)
        for ext in extensions where !V.isPlainIdentifier(ext) {
            throw V.fail("AI_DEFAULT_EXTENSIONS", extensionsRaw, "'\(ext)' is not an extension name")
        }
        if Set(extensions).count != extensions.count {
            throw V.fail("AI_DEFAULT_EXTENSIONS", extensionsRaw, "an extension appears twice")
        }
        return extensions
    }

    /// PGVECTOR_ENABLE_IVFFLAT, PGVECTOR_INDEX, PGVECTOR_STORAGE and EMBEDDING_DIM (at most
    /// what the column's kind and its index take).
    fileprivate static func vectorColumn(_ value: Value) throws(Failure)
        -> (ivfflat: Bool, index: VectorIndexKind, storage: VectorStorage, dimensions: Int)
    {
        let ivfflat = try V.bool("PGVECTOR_ENABLE_IVFFLAT", value("PGVECTOR_ENABLE_IVFFLAT"))
        let indexRaw = value("PGVECTOR_INDEX")
        guard let kind = VectorIndexKind(rawValue: indexRaw.value) else {
            throw V.fail("PGVECTOR_INDEX", indexRaw, "not one of ivfflat, hnsw")
        }
        let storageRaw = value("PGVECTOR_STORAGE")
        guard let storage = VectorStorage(rawValue: storageRaw.value) else {
            throw V.fail("PGVECTOR_STORAGE", storageRaw, "not one of vector, halfvec, binary")
        }
        if storage == .binary && kind != .hnsw {
            throw V.fail(
                "PGVECTOR_STORAGE", storageRaw,
                "binary needs PGVECTOR_INDEX=hnsw (PGVECTOR_INDEX is \(kind.rawValue)): its index is an HNSW index on "
                    + "the binary quantization (bit_hamming_ops); pgvector's IVFFlat on bit is not what the suite re-ranks")
        }
        // pgvector stores up to 16000 dimensions (vector and halfvec); its IVFFlat and HNSW
        // indexes take at most 2000 of vector, 4000 of halfvec, 64000 of bit (binary).
        let indexed = ivfflat || kind == .hnsw
        let dimRaw = value("EMBEDDING_DIM")
        let limit: Int
        let what: String
        switch storage {
        case .vector where indexed: (limit, what) = (2000, "a dimension an IVFFlat or HNSW index of vector takes")
        case .halfvec where indexed: (limit, what) = (4000, "a dimension an index of halfvec takes (PGVECTOR_STORAGE=halfvec)")
        default: (limit, what) = (16000, "a vector dimension")
        }
        let embeddingDim = try V.int("EMBEDDING_DIM", dimRaw, 1...limit, what)
        return (ivfflat, kind, storage, embeddingDim)
    }

    /// PGVECTOR_IVFFLAT_LISTS and PGVECTOR_IVFFLAT_PROBES (nil: auto).
    fileprivate static func ivfflatSettings(_ value: Value) throws(Failure) -> (lists: Int?, probes: Int?) {
        let ivfflatLists = try V.intOrAuto("PGVECTOR_IVFFLAT_LISTS", value("PGVECTOR_IVFFLAT_LISTS"), 1...32768, "a list count")
        let ivfflatProbes = try V.intOrAuto(
            "PGVECTOR_IVFFLAT_PROBES", value("PGVECTOR_IVFFLAT_PROBES"), 1...32768, "a probe count")
        return (ivfflatLists, ivfflatProbes)
    }

    /// PGVECTOR_HNSW_M, PGVECTOR_HNSW_EF_CONSTRUCTION (at least 2 m) and PGVECTOR_HNSW_EF_SEARCH.
    fileprivate static func hnswSettings(_ value: Value) throws(Failure)
        -> (m: Int, efConstruction: Int, efSearch: Int)
    {
        let hnswM = try V.int("PGVECTOR_HNSW_M", value("PGVECTOR_HNSW_M"), 2...100, "an HNSW m")
        let hnswEfConstruction = try V.int(
            "PGVECTOR_HNSW_EF_CONSTRUCTION", value("PGVECTOR_HNSW_EF_CONSTRUCTION"), 4...1000, "an HNSW ef_construction")
        if hnswEfConstruction < 2 * hnswM {
            throw V.fail(
                "PGVECTOR_HNSW_EF_CONSTRUCTION", value("PGVECTOR_HNSW_EF_CONSTRUCTION"),
                "must be at least 2 * PGVECTOR_HNSW_M (\(2 * hnswM)), as pgvector requires")
        }
        let hnswEfSearch = try V.int("PGVECTOR_HNSW_EF_SEARCH", value("PGVECTOR_HNSW_EF_SEARCH"), 1...1000, "an HNSW ef_search")
        return (hnswM, hnswEfConstruction, hnswEfSearch)
    }

    /// PG_ALLOWED_NETWORKS: networks in CIDR form.
    fileprivate static func networks(_ networksRaw: RawValue) throws(Failure) -> [String] {
        let networks = try V.list("PG_ALLOWED_NETWORKS", networksRaw)
        for network in networks where !V.isCIDR(network) {
            throw V.fail("PG_ALLOWED_NETWORKS", networksRaw, "'\(network)' is not a network in CIDR form (10.0.0.0/24)")
        }
        return networks
    }

    /// PG_SSL_CERT_FILE and PG_SSL_KEY_FILE: absolute paths, both or neither (nil: snakeoil).
    fileprivate static func tlsPair(_ value: Value) throws(Failure) -> (cert: String?, key: String?) {
        let certRaw = value("PG_SSL_CERT_FILE")
        let keyRaw = value("PG_SSL_KEY_FILE")
        let sslCertFile = certRaw.value.isEmpty ? nil : try V.absolutePath("PG_SSL_CERT_FILE", certRaw)
        let sslKeyFile = keyRaw.value.isEmpty ? nil : try V.absolutePath("PG_SSL_KEY_FILE", keyRaw)
        if (sslCertFile == nil) != (sslKeyFile == nil) {
            let (key, raw) = sslCertFile == nil ? ("PG_SSL_CERT_FILE", certRaw) : ("PG_SSL_KEY_FILE", keyRaw)
            throw V.fail(key, raw, "PG_SSL_CERT_FILE and PG_SSL_KEY_FILE go together: set both or neither")
        }
        return (sslCertFile, sslKeyFile)
    }

    /// PGVECTOR_INSTALL_METHOD, PGVECTOR_DEBIAN_SUITE, PGVECTOR_SOURCE and PGVECTOR_SHA256 (a
    /// source needs its digest; the tarball method needs both).
    fileprivate static func pgvectorInstall(_ value: Value) throws(Failure)
        -> (method: PgvectorMethod, suite: String, source: String, sha256: String)
    {
        let methodRaw = value("PGVECTOR_INSTALL_METHOD")
        guard let method = PgvectorMethod(rawValue: methodRaw.value) else {
            throw V.fail(
                "PGVECTOR_INSTALL_METHOD", methodRaw,
                "not one of \(PgvectorMethod.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let suiteRaw = value("PGVECTOR_DEBIAN_SUITE")
        guard V.isSystemUserName(suiteRaw.value), !suiteRaw.value.contains("_") else {
            throw V.fail("PGVECTOR_DEBIAN_SUITE", suiteRaw, "not a Debian suite name (trixie, sid, ...)")
        }
        let pgvectorSource = value("PGVECTOR_SOURCE").value
        let shaRaw = value("PGVECTOR_SHA256")
        let sha = shaRaw.value.lowercased()
        guard sha.isEmpty || (sha.utf8.count == 64 && sha.unicodeScalars.allSatisfy({ $0.isASCIIDigit || ("a"..."f").contains($0) }))
        else {
            throw V.fail("PGVECTOR_SHA256", shaRaw, "not a SHA-256 (64 hexadecimal digits)")
        }
        if method == .tarball && (pgvectorSource.isEmpty || sha.isEmpty) {
            throw V.fail("PGVECTOR_INSTALL_METHOD", methodRaw, "tarball needs PGVECTOR_SOURCE and PGVECTOR_SHA256")
        }
        if !pgvectorSource.isEmpty && sha.isEmpty {
            throw V.fail("PGVECTOR_SHA256", shaRaw, "PGVECTOR_SOURCE is set, so its SHA-256 must be too")
        }
        return (method, suiteRaw.value, pgvectorSource, sha)
    }
}
