// swift-tools-version: 6.2
import PackageDescription

/// One executable, `hearthminds`, serves every command by the name it is run as: the steps
/// (`hm-service-user` ... `hm-verify`, in the order of bootstrap/steps) and the tools, which are
/// not steps (`hm-reset`, which install.sh runs only with --reset, and `hm-migrate`), are links
/// to it (HearthKit's MultiCall; `make dist` makes them hard links in bootstrap/bin/). One static
/// Swift runtime instead of nine.
let package = Package(
    name: "hearthminds-bootstrap",
    products: [
        .executable(name: "hearthminds", targets: ["hearthminds"]),
        // A build tool of `make dist`, not shipped: builds the pgvector package the tarball carries.
        .executable(name: "hm-pgvector-deb", targets: ["hm-pgvector-deb"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        // traits: [] leaves out the Foundation trait: the binaries stay small and start fast.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2", traits: []),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        // OpenSSL's libcrypto: SHA-256, HMAC, PBKDF2, base64. libpq5 links it already (libssl3),
        // and libpq-dev brings its headers (libssl-dev).
        .systemLibrary(
            name: "CCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // The library in layers, each a target (a folder of Sources), so that the compiler
        // rules out a cycle between them: the host (HearthSystem: commands, files as root,
        // accounts, apt and dpkg, threads, the console, libcrypto, the one Failure type); on it
        // the PostgreSQL client on libpq (HearthPG), the step contract (HearthRunner: Step,
        // Action, the runner, the JSON log, the dry run, the deadline's watchdog, the steps'
        // names) and the configuration (HearthConfiguration: keys, env files, validation, the
        // server's sizing); then pgvector's installation (HearthPgvector), the servers and what
        // is desired of them (HearthPostgres), the client files (HearthClient), migrations
        // (HearthMigrations), monitoring (HearthMonitoring), backups (HearthBackup), the steps
        // (HearthKit) and the commands (HearthCommands). docs/design.md draws it.
        .target(
            name: "HearthSystem",
            dependencies: [
                "CCrypto",
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        .target(name: "HearthPG", dependencies: ["CLibPQ", "HearthSystem"]),
        .target(name: "HearthRunner", dependencies: ["HearthSystem"]),
        .target(name: "HearthConfiguration", dependencies: ["HearthSystem"]),
        .target(name: "HearthPgvector", dependencies: ["HearthSystem", "HearthPG", "HearthRunner", "HearthConfiguration"]),
        .target(name: "HearthPostgres", dependencies: ["HearthSystem", "HearthPG", "HearthRunner", "HearthConfiguration", "HearthPgvector"]),
        .target(name: "HearthClient", dependencies: ["HearthSystem", "HearthPG", "HearthRunner", "HearthConfiguration", "HearthPostgres", "HearthPgvector"]),
        .target(name: "HearthMigrations", dependencies: ["HearthSystem", "HearthPG", "HearthRunner", "HearthConfiguration", "HearthPostgres", "HearthPgvector"]),
        .target(name: "HearthMonitoring", dependencies: ["HearthSystem", "HearthPG", "HearthRunner", "HearthConfiguration", "HearthMigrations", "HearthPostgres", "HearthPgvector"]),
        .target(name: "HearthBackup", dependencies: ["HearthSystem", "HearthPG", "HearthRunner", "HearthConfiguration", "HearthMonitoring", "HearthMigrations", "HearthPostgres", "HearthPgvector", "HearthClient"]),
        .target(
            name: "HearthKit",
            dependencies: [
                "HearthSystem",
                "HearthPG",
                "HearthRunner",
                "HearthConfiguration",
                "HearthPgvector",
                "HearthPostgres",
                "HearthClient",
                "HearthMigrations",
                "HearthMonitoring",
                "HearthBackup",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The commands: the steps' one generic command and its start-up (StepMain), the tools,
        // and the one list of them (CommandDefinitions.all, MultiCall).
        .target(
            name: "HearthCommands",
            dependencies: [
                "HearthKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(name: "hearthminds", dependencies: ["HearthCommands"]),
        .testTarget(
            name: "HearthKitTests",
            dependencies: [
                "HearthCommands", "HearthKit", "HearthSystem", "HearthPG", "HearthRunner", "HearthConfiguration",
                "HearthPgvector", "HearthPostgres", "HearthClient", "HearthMigrations", "HearthMonitoring", "HearthBackup",
            ],
            exclude: ["Fixtures"]
        ),
        .executableTarget(name: "hm-pgvector-deb", dependencies: ["HearthKit", "HearthPgvector"]),
    ]
)
