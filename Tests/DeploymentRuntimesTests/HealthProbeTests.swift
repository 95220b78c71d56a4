import Foundation
import TestSupport
import Testing

@testable import DeploymentRuntimes

/// A colour's health as the runtimes probe it, against a hostile HTTP server on loopback.
@Suite struct HealthProbeTests {
    @Test func aHealthEndpointThatAnswersWithoutEndIsUnhealthy() async throws {
        try await HostileHTTPServer.with({ _ in .endless() }) { server in
            let instance = ColorInstance(
                color: "green", pid: nil, address: "127.0.0.1:\(server.port)", modelSHA256: "0", modelVersion: "v",
                modelPath: "/nonexistent")
            let probe = await ProcessRuntime(stateFolder: "/nonexistent", recengine: "/bin/false").probe(
                instance, path: "/health")
            #expect(!probe.healthy)
            #expect(
                probe.detail.contains("larger than 64 KiB, the limit for a health probe's answer"), "\(probe.detail)")
        }
    }
}
