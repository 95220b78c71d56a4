// swift-tools-version:6.1
// Benchmarks are a package of their own so that they stay out of the main build.
import Foundation
import PackageDescription

// A path dependency is identified by its folder's name, which is wherever the project was cloned.
let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "Benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(path: "..")
    ],
    targets: [
        .executableTarget(
            name: "RecommendBenchmark",
            dependencies: [.product(name: "RecEngine", package: root)]
        )
    ]
)
