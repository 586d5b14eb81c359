// swift-tools-version: 6.2
import PackageDescription

/// One executable per host step; the order they run in lives in bootstrap/steps (reset is not
/// in it: it runs only when asked, hm-reset or install.sh --reset).
let steps = ["service-user", "postgres", "pg-hba", "pgvector", "databases", "migrations", "vector-index", "verify", "reset"]
/// Tools beside the steps.
let tools = ["migrate"]
/// Build tools of `make dist` (not shipped): the pgvector package.
let buildTools = ["pgvector-deb"]

let package = Package(
    name: "hearthminds-bootstrap",
    products: (steps + tools + buildTools).map { .executable(name: "hm-\($0)", targets: ["hm-\($0)"]) },
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
        .target(
            name: "HearthKit",
            dependencies: [
                "CLibPQ",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Subprocess", package: "swift-subprocess"),
            ]
        ),
        .testTarget(
            name: "HearthKitTests",
            dependencies: ["HearthKit"],
            exclude: ["Fixtures"]
        ),
    ] + (steps + tools + buildTools).map {
        .executableTarget(name: "hm-\($0)", dependencies: ["HearthKit"])
    }
)
