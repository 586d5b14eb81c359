// swift-tools-version: 6.2
import PackageDescription

/// One executable, `hearthminds`, serves every command by the name it is run as: the steps
/// (`hm-service-user` ... `hm-verify`, in the order of bootstrap/steps; `hm-reset`, only when
/// asked) and `hm-migrate` are links to it (HearthKit's MultiCall; `make dist` makes them hard
/// links in bootstrap/bin/). One static Swift runtime instead of nine.
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
        .target(
            name: "HearthKit",
            dependencies: [
                "CLibPQ",
                "CCrypto",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        .executableTarget(name: "hearthminds", dependencies: ["HearthKit"]),
        .testTarget(
            name: "HearthKitTests",
            dependencies: ["HearthKit"],
            exclude: ["Fixtures"]
        ),
        .executableTarget(name: "hm-pgvector-deb", dependencies: ["HearthKit"]),
    ]
)
