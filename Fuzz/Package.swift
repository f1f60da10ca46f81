// swift-tools-version:6.0
// libFuzzer harnesses for every decoder. Built only with sanitizers:
//   swift build -c debug -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// (scripts/fuzz.sh does this and runs each harness for a bounded time.)
import PackageDescription

let package = Package(
    name: "vecgo-fuzz",
    dependencies: [.package(name: "vecgo", path: "..")],
    targets: ["FuzzSegment", "FuzzManifest", "FuzzPKIndex"].map {
        .executableTarget(name: $0, dependencies: [.product(name: "SegmentFormat", package: "vecgo")])
    }
)
