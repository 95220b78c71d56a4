// swift-tools-version:6.1
// 6.1: the upcoming feature MemberImportVisibility (below) is new in Swift 6.1.
import PackageDescription

// Linux only (kernel 5.6 or later): renameat2 (CDurableFiles), pidfd_getfd (CProcessDescriptors),
// /proc, and libcurl, librdkafka and zlib through pkg-config. No Apple platform is supported, so
// `platforms` names none. The AVX2/FMA kernels are chosen at run time on x86-64 (CRecKernels).

let package = Package(
    name: "orchestrate",
    products: [
        .executable(name: "orchestrate", targets: ["orchestrate"]),
        .executable(name: "recengine", targets: ["recengine"]),
        .library(name: "Orchestrator", targets: ["Orchestrator"]),
        // For Fuzz/, which reads histories.
        .library(name: "Provenance", targets: ["Provenance"]),
        // For Fuzz/, which loads pipeline files.
        .library(name: "PipelineSchema", targets: ["PipelineSchema"]),
        .library(name: "Traffic", targets: ["Traffic"]),
        .library(name: "RecEngine", targets: ["RecEngine"]),
        .library(name: "RecEngineServer", targets: ["RecEngineServer"]),
        // For Fuzz/, which reads compose files.
        .library(name: "EngineAPI", targets: ["EngineAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.0.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.0.0"),
        .package(url: "https://github.com/swiftlang/swift-subprocess.git", from: "1.0.0"),
        // FilePath for Subprocess's executables and working folders.
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
        // No default traits: swift-configuration (ConfigurationSupport) is not built, and our
        // code uses nothing that needs full Foundation (FullFoundation).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.5.0", traits: []),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.81.0"),
    ],
    targets: [
        .systemLibrary(
            name: "CCurl",
            pkgConfig: "libcurl",
            providers: [.apt(["libcurl4-openssl-dev"])]
        ),
        .systemLibrary(
            name: "CRdKafka",
            pkgConfig: "rdkafka",
            providers: [.apt(["librdkafka-dev"])]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // SGD and scoring kernels in C so that wider vector instructions (AVX2/FMA) can be chosen
        // at run time with function multi-versioning while the binary still runs on any x86-64.
        .target(
            name: "CRecKernels",
            cSettings: [.unsafeFlags(["-O3"])]
        ),
        // Files replaced atomically and durably (checked writes, fsync of the file and its folder).
        .target(name: "DurableFiles", dependencies: ["CDurableFiles"]),
        // renameat2(RENAME_EXCHANGE), which Swift cannot call (a variadic syscall): folders swapped in one step.
        .target(name: "CDurableFiles"),
        // pidfd_getfd (a variadic syscall too): the listening sockets of a killed nginx master's
        // workers handed to a fresh nginx, so the port never closes.
        .target(name: "CProcessDescriptors"),
        // What `recengine --output json` reports and the server exposes, which the controller reads:
        // the stage outputs' types and metric names, the model files' names and identity, the
        // server's state file, RecEngine's errors. RecEngine produces them; the controller links
        // only this, not the training and ingest code (nor librdkafka and zlib).
        .target(
            name: "RecEngineContract",
            dependencies: ["DurableFiles"]
        ),
        // The model side: data, training, evaluation, ingest. No HTTP server.
        .target(
            name: "RecEngine",
            dependencies: [
                "RecEngineContract",
                "DurableFiles",
                "CRecKernels",
                "CRdKafka",
                "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The inference server (`recengine serve`) over a RecEngine model.
        .target(
            name: "RecEngineServer",
            dependencies: [
                "RecEngine",
                "RecEngineContract",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Every HTTP call the controller makes, through libcurl, cancellable, off the cooperative pool.
        .target(
            name: "HTTPTransport",
            dependencies: ["CCurl"]
        ),
        // Text from outside (answers, children's output, files) made safe to print and record:
        // control characters written out, cut to a bound with a marker.
        .target(name: "TextSafety"),
        // YAML read strictly: every problem with its file, line and column.
        .target(
            name: "StrictYAML",
            dependencies: ["TextSafety", .product(name: "Yams", package: "Yams")]
        ),
        // The Docker Engine API client and the compose file subset it realises.
        .target(
            name: "EngineAPI",
            dependencies: [
                "HTTPTransport",
                "StrictYAML",
                "TextSafety",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        // nginx as the traffic splitter: configuration, validation, weights in force.
        .target(
            name: "Traffic",
            dependencies: [
                "DurableFiles",
                "HTTPTransport",
                "TextSafety",
                "CProcessDescriptors",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            // nginx's configuration template, the Lua balancer and the interleaving, loaded through Bundle.module.
            resources: [
                .copy("Resources/recommender.conf.template"), .copy("Resources/traffic.lua"),
                .copy("Resources/interleave.lua"), .copy("Resources/shadow.lua"),
            ]
        ),
        // The controller's shared vocabulary: its error and exit codes, what a path names, file
        // digests, the redaction of secrets, JSON's non-finite numbers.
        .target(
            name: "OrchestratorSupport",
            dependencies: [
                "DurableFiles",
                "RecEngineContract",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The pipeline file: its model, decoder and validation (every problem with its line).
        .target(
            name: "PipelineSchema",
            dependencies: [
                "OrchestratorSupport",
                "RecEngineContract",
                "DurableFiles",
                "EngineAPI",
                "StrictYAML",
                "Traffic",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Yams", package: "Yams"),
            ]
        ),
        // Provenance: the record of a release and what it embeds (the plan as recorded, the run's
        // state file, the gates' and the judge's measurements), the hash-chained history, its
        // signing, the serving timeline and the report. The release core writes it; nothing here
        // runs a release.
        .target(
            name: "Provenance",
            dependencies: [
                "OrchestratorSupport",
                "PipelineSchema",
                "RecEngineContract",
                "DurableFiles",
                "StrictYAML",
                "TextSafety",
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            // The report's style sheet, loaded through Bundle.module.
            resources: [.copy("Report/report.css")]
        ),
        // Where colours run, behind `DeploymentRuntime`: a process, a Docker container, a Swarm
        // service; the model store and the kernel's process table they use.
        .target(
            name: "DeploymentRuntimes",
            dependencies: [
                "Provenance",
                "OrchestratorSupport",
                "PipelineSchema",
                "RecEngineContract",
                "DurableFiles",
                "EngineAPI",
                "HTTPTransport",
                "StrictYAML",
                "TextSafety",
                "Traffic",
            ]
        ),
        .target(
            name: "Orchestrator",
            dependencies: [
                "Provenance",
                "DeploymentRuntimes",
                "OrchestratorSupport",
                "PipelineSchema",
                "RecEngineContract",
                "Traffic",
                "DurableFiles",
                "HTTPTransport",
                "EngineAPI",
                "StrictYAML",
                "TextSafety",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // What the two command lines share: output formats, exit codes.
        .target(
            name: "CommandLineSupport",
            dependencies: ["TextSafety", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "orchestrate",
            dependencies: [
                "Orchestrator",
                "Provenance",
                "DeploymentRuntimes",
                "OrchestratorSupport",
                "PipelineSchema",
                "CommandLineSupport",
                "EngineAPI",
                "StrictYAML",
                "TextSafety",
                "Traffic",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "recengine",
            dependencies: [
                "RecEngine",
                "RecEngineContract",
                "RecEngineServer",
                "CommandLineSupport",
                "DurableFiles",
                "HTTPTransport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // Helpers shared by the test targets: temporary folders, child processes.
        .target(
            name: "TestSupport",
            dependencies: [
                "CProcessDescriptors", "CRdKafka", "RecEngine", "RecEngineContract", "Provenance",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Tests/TestSupport",
            // The fault injectors (C, compiled when first used); Benchmarks/faults uses the same files.
            resources: [.copy("Faults")]
        ),
        .testTarget(
            name: "OrchestratorTests",
            dependencies: [
                "Orchestrator", "Provenance", "DeploymentRuntimes", "OrchestratorSupport", "PipelineSchema",
                "RecEngine", "RecEngineContract", "EngineAPI", "StrictYAML", "TestSupport",
                "DurableFiles", "HTTPTransport", "TextSafety", "Traffic",
            ]
        ),
        .testTarget(
            name: "ProvenanceTests",
            dependencies: [
                "Provenance", "OrchestratorSupport", "PipelineSchema", "EngineAPI", "StrictYAML", "TestSupport",
            ],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "DeploymentRuntimesTests",
            dependencies: ["DeploymentRuntimes", "Provenance", "TestSupport"]
        ),
        .testTarget(
            name: "PipelineSchemaTests",
            dependencies: ["PipelineSchema", "EngineAPI", "RecEngineContract", "StrictYAML", "TestSupport"]
        ),
        .testTarget(
            name: "TrafficTests",
            dependencies: ["Traffic", "CProcessDescriptors"]
        ),
        // Start real nginx, Prometheus and recengine processes on loopback.
        .testTarget(
            name: "IntegrationTests",
            dependencies: [
                "Orchestrator", "Provenance", "DeploymentRuntimes", "OrchestratorSupport", "PipelineSchema",
                "RecEngine", "RecEngineContract", "Traffic", "HTTPTransport", "EngineAPI", "StrictYAML", "TestSupport",
                "CommandLineSupport", .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The inference server is tested served on loopback and asked through HTTPTransport, not
        // through HummingbirdTesting, whose AsyncHTTPClient brings a second TLS stack and HTTP/2
        // into every build.
        .testTarget(
            name: "RecEngineTests",
            dependencies: [
                "RecEngine",
                "RecEngineContract",
                "RecEngineServer",
                "HTTPTransport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                "TestSupport",
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ]
)

// One settings loop turns on the same upcoming features for every Swift target (as swift-log does).
for target in package.targets where [.executable, .test, .regular].contains(target.type) {
    var settings = target.swiftSettings ?? []
    // https://github.com/apple/swift-evolution/blob/main/proposals/0335-existential-any.md
    settings.append(.enableUpcomingFeature("ExistentialAny"))
    // https://github.com/swiftlang/swift-evolution/blob/main/proposals/0444-member-import-visibility.md
    settings.append(.enableUpcomingFeature("MemberImportVisibility"))
    // https://github.com/swiftlang/swift-evolution/blob/main/proposals/0409-access-level-on-imports.md
    settings.append(.enableUpcomingFeature("InternalImportsByDefault"))
    target.swiftSettings = settings
}
