// swift-tools-version: 6.2
import PackageDescription

/// One executable per host step; the order they run in lives in bootstrap/steps (reset is not
/// in it: it runs only when asked, hm-reset or install.sh --reset).
let steps = ["service-user", "postgres", "pg-hba", "pgvector", "databases", "migrations", "verify", "reset"]
/// Tools beside the steps.
let tools = ["migrate"]

let package = Package(
    name: "hearthminds-bootstrap",
    products: (steps + tools).map { .executable(name: "hm-\($0)", targets: ["hm-\($0)"]) },
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
        .testTarget(
            name: "HearthKitTests",
            dependencies: ["HearthKit"],
            exclude: ["Fixtures"]
        ),
    ] + (steps + tools).map {
        .executableTarget(name: "hm-\($0)", dependencies: ["HearthKit"])
    }
)
