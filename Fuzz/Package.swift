// swift-tools-version:6.1
// libFuzzer targets, a package of their own so that the main build never sees the fuzzer flags.
// Build and run them with scripts/fuzz; the flags are given on the command line because SwiftPM
// refuses unsafe flags in a package that is depended upon:
//
//   swift build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
import Foundation
import PackageDescription

// A path dependency is identified by its folder's name, which is wherever the project was cloned.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "Fuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.0.0"),
    ],
    targets: [
        // Writing the fuzzer's bytes to files, for the loaders that read a path.
        .target(name: "FuzzSupport"),
        // Bytes → what `orchestrate validate` does: YAML, interpolation, strict decoding.
        .executableTarget(
            name: "FuzzPipeline",
            dependencies: ["FuzzSupport", .product(name: "PipelineSchema", package: root)]
        ),
        // Bytes → manifest.json and model.safetensors → ModelDirectory.load.
        .executableTarget(
            name: "FuzzModel",
            dependencies: [
                "FuzzSupport", .product(name: "RecEngine", package: root),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Bytes → one movie log line → MovieLogLine.parse.
        .executableTarget(
            name: "FuzzMovieLogLine",
            dependencies: ["FuzzSupport", .product(name: "RecEngine", package: root)]
        ),
        // Bytes → a history head and its history file → ReleaseHistory.verify.
        .executableTarget(
            name: "FuzzHistory",
            dependencies: ["FuzzSupport", .product(name: "Provenance", package: root)]
        ),
        // Bytes → a compose file → ComposeFile.load.
        .executableTarget(
            name: "FuzzCompose",
            dependencies: ["FuzzSupport", .product(name: "EngineAPI", package: root)]
        ),
    ]
)
