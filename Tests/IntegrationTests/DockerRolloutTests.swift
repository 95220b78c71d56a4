import DeploymentRuntimes
import EngineAPI
import Foundation
import HTTPTransport
import Orchestrator
import OrchestratorSupport
import Provenance
import StrictYAML
import TestSupport
import Testing
import Traffic

/// The rollout with `runtime: docker`: the colours and the nginx load balancer as containers of
/// podman's Docker-compatible engine, real Prometheus gates, steady load through the load balancer.
@Suite(
    .serialized,
    .enabled(if: TestEngine.available, "needs ORCHESTRATE_TEST_DOCKER_HOST: scripts/test starts podman's Docker API"))
struct DockerRolloutTests {
    /// The images of compose/recommender.yml, imported from this build once per test process
    /// under test names (scripts/podman-engine stop removes them).
    static let images = Task<Void, any Error> {
        let engine = try await TestEngine.engine()
        try await RootFilesystemImage.recengine(binary: Playground.recengine).importInto(
            engine, repository: "localhost/orchestrate-test-recengine:1")
        try await RootFilesystemImage.nginx(
            binary: LocalNginx.find(),
            modules: [NginxModules.find() ?? .debian].flatMap { [$0.developmentKit, $0.lua] }
        ).importInto(engine, repository: "localhost/orchestrate-test-nginx:1")
    }

    @Test func aHealthyReleaseIsPromotedAndTheContainersCarryComposeLabels() async throws {
        try await Self.images.value
        try await Playground.with(dockerHost: TestEngine.host) { playground in
            try playground.writePipeline()
            let first = try await playground.run()
            let afterFirst = first.outcome == .succeeded ? "" : await Self.loadBalancer(playground)
            #expect(first.outcome == .succeeded, "\(first.failure ?? "")\n\(afterFirst)")
            let firstColor = try #require(first.deployment?.color)

            let second = try await playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])
            let afterSecond = second.outcome == .succeeded ? "" : await Self.loadBalancer(playground)
            #expect(second.outcome == .succeeded, "\(second.failure ?? "")\n\(afterSecond)")
            let rollout = try #require(second.rollout)
            #expect(rollout.target != firstColor)
            #expect(rollout.steps.map(\.weight) == [25, 50, 100])
            #expect(rollout.steps.allSatisfy { $0.passed == true })
            let samples = playground.lastSamples
            #expect(samples.count > 100)
            #expect(
                samples.allSatisfy { $0.status == 200 },
                "no failed request: \(samples.filter { $0.status != 200 }.map { "\($0.status)" })")
            #expect(
                samples.contains { $0.color == firstColor } && samples.contains { $0.color == rollout.target },
                "traffic moved between the containers")

            let engine = try await TestEngine.engine()
            let containers = try await engine.containers(labels: ["com.docker.compose.project": playground.service])
            #expect(
                Set(containers.filter(\.isRunning).map(\.name)) == [
                    "\(playground.service)-\(rollout.target)-1", "\(playground.service)-lb-1",
                ])
            #expect(
                containers.allSatisfy {
                    $0.labels["com.docker.compose.config-hash"]?.count == 64
                        && $0.labels["com.docker.compose.oneoff"] == "False"
                })
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [rollout.target])
            #expect(
                await playground.runtime.instance(of: firstColor) == nil, "stopOld removes the old colour's container")
        }
    }

    @Test func aFailingGateRollsBackAndTheLiveContainerKeepsServing() async throws {
        try await Self.images.value
        try await Playground.with(dockerHost: TestEngine.host) { playground in
            try playground.writePipeline()
            let first = try await playground.run()
            let live = try #require(first.deployment?.color)
            try playground.writePipeline(gates: Playground.impossibleGate)
            let second = try await playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])
            #expect(second.outcome == .rolledBack, "\(second.failure ?? "")")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            let target = try #require(second.rollout?.target)
            #expect(await playground.runtime.instance(of: target) == nil, "the new colour's container is gone")
            #expect(
                try #require(await playground.runtime.instance(of: live)).modelSHA256 == first.deployment?.modelSHA256)
            #expect(playground.lastSamples.allSatisfy { $0.status == 200 })

            // A missing image: a clear error before anything changes (exit 4), the live colour serving.
            try write(
                read(playground.composePath).replacingOccurrences(
                    of: "localhost/orchestrate-test-recengine:1", with: "localhost/no-such-image:1"),
                to: playground.folder + "/compose.yml")
            playground.composePath = playground.folder + "/compose.yml"
            try playground.writePipeline()
            await #expect {
                try await playground.run(RunOptions(force: true))
            } throws: { error in
                (error as? OrchestratorError)?.code == .unreachable && "\(error)".contains("no-such-image")
            }
            #expect(
                try #require(await playground.runtime.instance(of: live)).modelSHA256 == first.deployment?.modelSHA256)
            let answer = try await HTTPClient.get(
                "http://127.0.0.1:\(playground.nginxPort)/recommend/u1", limit: .forTests, timeout: .seconds(2))
            #expect(answer.status == 200)

            // A container that exits at start: the deploy fails with its log, before any traffic moves.
            try write(
                read(playground.composePath).replacingOccurrences(
                    of: "localhost/no-such-image:1", with: "localhost/orchestrate-test-recengine:1"
                )
                .replacingOccurrences(of: "--port, \"0\"", with: "--port, \"not-a-port\""),
                to: playground.folder + "/compose.yml")
            let crashed = try await playground.run(RunOptions(force: true))
            #expect(crashed.outcome == .failed)
            #expect(
                crashed.failure?.contains("exited at start") == true && crashed.failure?.contains("not-a-port") == true,
                "\(crashed.failure ?? "")")
            #expect(crashed.rollout?.steps.isEmpty != false, "no traffic step was taken")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            #expect(
                try await HTTPClient.get(
                    "http://127.0.0.1:\(playground.nginxPort)/recommend/u1", limit: .forTests, timeout: .seconds(2)
                ).status == 200)
        }
    }

    @Test func aTakenLoadBalancerPortFailsTheReleaseWithNginxsWords() async throws {
        try await Self.images.value
        try await Playground.with(dockerHost: TestEngine.host) { playground in
            try playground.writePipeline()
            // Something else listens on the load balancer's port.
            let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(listener) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = in_port_t(UInt16(playground.nginxPort).bigEndian)
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
                }
            }
            try #require(bound && listen(listener, 8) == 0)
            let record = try await playground.run()
            #expect(record.outcome != .succeeded)
            #expect(
                record.failure?.contains("Address already in use") == true, "nginx's own words: \(record.failure ?? "")"
            )
            let target = try #require(record.rollout?.target)
            #expect(await playground.runtime.instance(of: target) == nil, "nothing was live: the new colour is stopped")
        }
    }

    /// What the load balancer container and its nginx look like, for a failure's message: its
    /// state and log, the control socket, and the nginx processes of this machine.
    static func loadBalancer(_ playground: Playground) async -> String {
        guard let docker = playground.runtime as? DockerRuntime else { return "" }
        let container =
            (try? await ComposeProject.container(of: "lb", project: docker.project, engine: docker.engine)) ?? nil
        var log: String?
        if let container { log = try? await docker.engine.logs(container.id, lines: 20) }
        let socket = playground.nginx.config.controlSocket
        let processes = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap(Int32.init)
            .compactMap { pid -> String? in
                let command = read("/proc/\(pid)/cmdline").split(separator: "\0").joined(separator: " ")
                return command.hasPrefix("nginx") && command.contains(playground.folder) ? "\(pid) \(command)" : nil
            }
        return """
            load balancer container: \(container.map { "\($0.name) \($0.state)" } ?? "none")
            its log: \(log ?? "(none)")
            control socket \(socket) exists: \(FileManager.default.fileExists(atPath: socket))
            nginx processes of the playground: \(processes)
            """
    }
}
