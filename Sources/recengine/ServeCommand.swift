import ArgumentParser
import CommandLineSupport
import DurableFiles
import Foundation
import Logging
import RecEngine
import RecEngineContract
import RecEngineServer

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Serve a model over HTTP: /recommend/{userId}, /health, /metrics.")

    @Option(help: "Model directory.") var model: String
    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port to bind; 0 picks a free one.") var port = 8080
    @Option(help: "Deployment colour reported in headers and metrics.") var color = "blue"
    @Option(help: "Once listening, write {pid, port, color, model_sha256} as JSON to this file (atomically).")
    var stateFile: String?
    @Option(help: "Share of /recommend answers to fail with 500 on purpose (0 to 1), for rollback drills.")
    var faultRate = 0.0
    @Option(help: "Fault for drills: share of the movies in each answer replaced by random ones (a known-worse model).")
    var faultRandomShare = 0.0
    @Option(help: "Fault for drills: milliseconds added to a share (--fault-latency-share) of /recommend answers.")
    var faultLatencyMs = 0
    @Option(help: "Fault for drills: the share of /recommend answers delayed by --fault-latency-ms.")
    var faultLatencyShare = 0.0
    @Option(
        help:
            "Fault for drills: the share of /recommend answers replaced by the most rated movies (a popularity collapse)."
    )
    var faultPopularShare = 0.0
    @Option(help: "Seconds a recommendation can convert (be watched or rated 4+) for the engagement KPI.")
    var engagementWindow = 600
    @Option(
        help:
            "Seconds a client has, from a request's first byte, to send its whole head; then 408 and the connection closes (slowloris)."
    )
    var headerTimeout = 10
    @Option(
        help:
            "Seconds a connection may send nothing (idle keep-alive, or a pause inside a request) before it is closed.")
    var idleTimeout = 60
    @Option(
        help: ArgumentHelp(
            "Open connections at most (default: the descriptor limit less \(InferenceServerConfiguration.ConnectionLimits.reservedDescriptors)).",
            discussion:
                "At the cap a new connection closes the one that has waited longest for a request, so /health and /metrics still get in."
        ))
    var maxConnections: Int?

    func validate() throws {
        guard InferenceServer.isValidUserID(color) else {
            throw ValidationError("--color must be letters, digits and ._+-")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard (0...1).contains(faultRate) else { throw ValidationError("--fault-rate must be from 0 to 1") }
        guard (0...1).contains(faultRandomShare), (0...1).contains(faultLatencyShare),
            (0...1).contains(faultPopularShare)
        else {
            throw ValidationError(
                "--fault-random-share, --fault-latency-share and --fault-popular-share must be from 0 to 1")
        }
        guard (0...60_000).contains(faultLatencyMs) else {
            throw ValidationError("--fault-latency-ms must be from 0 to 60000")
        }
        guard (1...86_400 * 365).contains(engagementWindow) else {
            throw ValidationError("--engagement-window must be from 1 second to a year")
        }
        guard (1...3600).contains(headerTimeout) else {
            throw ValidationError("--header-timeout must be from 1 to 3600 seconds")
        }
        guard (1...86_400).contains(idleTimeout) else {
            throw ValidationError("--idle-timeout must be from 1 to 86400 seconds")
        }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
    }

    func run() async throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let logger = Logger(label: "recengine")
        // Connections use descriptors: take every one the hard limit allows before sizing the cap.
        let descriptors = raiseDescriptorLimit()
        let maximumConnections =
            maxConnections
            ?? InferenceServerConfiguration.ConnectionLimits.defaultMaximumConnections(
                descriptorLimit: descriptors?.soft ?? 1024)
        var limits: Logger.Metadata = [
            "server.max_connections": "\(maximumConnections)", "server.header_timeout": "\(headerTimeout)s",
            "server.idle_timeout": "\(idleTimeout)s",
        ]
        if let descriptors {
            limits["descriptors.soft_before"] = "\(descriptors.previous)"
            limits["descriptors.soft"] = "\(descriptors.soft)"
            limits["descriptors.hard"] = "\(descriptors.hard)"
        }
        logger.info("connection limits", metadata: limits)
        try await reportingErrors {
            let loaded = try ModelDirectory.load(from: model)
            logger.info(
                "model loaded",
                metadata: [
                    "model.version": "\(loaded.manifest.displayVersion)",
                    "model.sha256": "\(loaded.manifest.modelSHA256)",
                    "model.users": "\(loaded.userIDs.count)", "model.items": "\(loaded.itemIDs.count)",
                ])
            let configuration = InferenceServerConfiguration(
                host: host, port: port, color: color, faultRate: faultRate,
                faults: .init(
                    randomShare: faultRandomShare, latency: .milliseconds(faultLatencyMs),
                    latencyShare: faultLatencyShare, popularShare: faultPopularShare),
                engagement: .init(window: .seconds(engagementWindow)),
                connections: .init(
                    headerTimeout: .seconds(headerTimeout), idleTimeout: .seconds(idleTimeout),
                    maximumConnections: maximumConnections))
            let stateFile = self.stateFile
            try await InferenceServer.run(model: loaded, configuration: configuration, logger: logger) { port in
                logger.info(
                    "serving",
                    metadata: [
                        "server.address": "\(configuration.host):\(port)", "server.color": "\(configuration.color)",
                    ])
                if let stateFile {
                    let state = ServerState(
                        pid: getpid(), port: port, color: configuration.color, modelSHA256: loaded.manifest.modelSHA256,
                        modelVersion: loaded.manifest.displayVersion)
                    do {
                        try AtomicFile.write(try JSONEncoder().encode(state), to: stateFile)
                    } catch {
                        logger.error(
                            "cannot write the state file", metadata: ["file": "\(stateFile)", "error": "\(error)"])
                    }
                }
            }
            if let stateFile { try? FileManager.default.removeItem(atPath: stateFile) }
        }
    }
}
