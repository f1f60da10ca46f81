// swift-tools-version:6.0
import PackageDescription

// One settings list for every Swift target (swift-log style).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "vecgo",
    products: [
        .library(name: "Vecgo", targets: ["Vecgo"]),
        .library(name: "Stores", targets: ["Stores"]),
        .library(name: "SegmentFormat", targets: ["SegmentFormat"]),
        .executable(name: "vecgo", targets: ["VecgoCLI"]),
        .executable(name: "vecgo-bench", targets: ["VecgoBench"]),
        .executable(name: "cloud-tiered", targets: ["CloudTiered"]),
        .library(name: "VecgoServer", targets: ["VecgoServer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        // `swift package generate-documentation` (the DocC catalogs; scripts/test.sh builds them).
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.5.0"),
    ],
    targets: [
        // MARK: C (hidden)
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4",
                       providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl",
                       providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "libcrypto",
                       providers: [.apt(["libssl-dev"])]),
        // Distance kernels and CRC32C: AVX-512 / AVX2+FMA / SSE4.2 chosen at run time, portable fallback.
        .target(name: "CVecgoNative"),

        // MARK: Libraries (exported)
        .target(name: "SegmentFormat", dependencies: ["CLZ4", "CVecgoNative"], swiftSettings: swiftSettings),
        .target(name: "IndexCore", dependencies: ["CVecgoNative"], swiftSettings: swiftSettings),
        .target(name: "Stores", dependencies: ["CCurl", "COpenSSL", "CVecgoNative", "SegmentFormat"], swiftSettings: swiftSettings),
        .target(name: "Tiering",
                dependencies: ["Stores", "CVecgoNative", .product(name: "Logging", package: "swift-log"),
                               .product(name: "Metrics", package: "swift-metrics")],
                swiftSettings: swiftSettings),
        .target(name: "Vecgo",
                dependencies: ["SegmentFormat", "IndexCore", "Stores", "Tiering",
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "Metrics", package: "swift-metrics")],
                swiftSettings: swiftSettings),

        // MARK: Server (its own module: the Vecgo library does not depend on the HTTP stack)
        .target(name: "VecgoServer",
                dependencies: ["Vecgo", "Stores", "Tiering",
                               .product(name: "Hummingbird", package: "hummingbird"),
                               .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                               .product(name: "Prometheus", package: "swift-prometheus"),
                               .product(name: "Metrics", package: "swift-metrics"),
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),

        // MARK: Executables
        // `vecgo`, including `vecgo serve` (the only executable that pulls in the server stack).
        .executableTarget(name: "VecgoCLI", dependencies: ["Vecgo", "Stores", "SegmentFormat", "VecgoServer",
                                                   .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "VecgoBench", dependencies: ["Vecgo", "Stores", "Tiering", "IndexCore", "SegmentFormat",
                                                     .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: swiftSettings),
        .executableTarget(name: "CloudTiered",
                          dependencies: ["Vecgo", "Stores", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: swiftSettings),

        // The in-process side of benchmarks/serve_load.sh (not a product).
        .executableTarget(name: "ServeInProcessQPS", dependencies: ["Vecgo", "Stores"],
                          path: "benchmarks/serve-inprocess", swiftSettings: swiftSettings),

        // MARK: Test support and tests
        .target(name: "_VecgoTestSupport", dependencies: ["Stores", .product(name: "Logging", package: "swift-log")],
                swiftSettings: swiftSettings),
        // The agent process the crash tests and the torture suite (torture/) start and kill: writer,
        // reader, maintainer or checker (not a product).
        .executableTarget(name: "VecgoStressWriter", dependencies: ["Vecgo", "Stores", "_VecgoTestSupport"], swiftSettings: swiftSettings),
        .testTarget(name: "SegmentFormatTests", dependencies: ["SegmentFormat", "_VecgoTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "IndexCoreTests", dependencies: ["IndexCore", "_VecgoTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "StoresTests", dependencies: ["Stores", "SegmentFormat", "_VecgoTestSupport"],
                    swiftSettings: swiftSettings),
        .testTarget(name: "TieringTests", dependencies: ["Tiering", "Stores", "_VecgoTestSupport",
                                                   .product(name: "Logging", package: "swift-log")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "VecgoTests", dependencies: ["Vecgo", "Stores", "SegmentFormat", "Tiering", "_VecgoTestSupport",
                                                 .product(name: "Logging", package: "swift-log")],
                    swiftSettings: swiftSettings),
        .testTarget(name: "VecgoServerTests",
                    dependencies: ["VecgoServer", "Vecgo", "Stores", "_VecgoTestSupport",
                                   .product(name: "HummingbirdTesting", package: "hummingbird"),
                                   .product(name: "Metrics", package: "swift-metrics"),
                                   .product(name: "Prometheus", package: "swift-prometheus")],
                    swiftSettings: swiftSettings),
        // Depends on Vecgo only: `import Vecgo` alone must give an application everything it needs.
        .testTarget(name: "PublicAPITests", dependencies: ["Vecgo"], swiftSettings: swiftSettings),
        .testTarget(name: "IntegrationTests",
                    dependencies: ["Vecgo", "Stores", "SegmentFormat", "Tiering", "_VecgoTestSupport"],
                    swiftSettings: swiftSettings),
    ]
)
