import DeploymentRuntimes
import EngineAPI
import Foundation
import HTTPTransport
import Orchestrator
import PipelineSchema
import Provenance
import RecEngine
import StrictYAML
import TestSupport
import Testing
import Traffic

/// A rollout playground on loopback: generated ratings, a pipeline with deploy/traffic/analysis,
/// a real Prometheus scraping the colours, real nginx and real `recengine serve` processes, all
/// on free ports, all stopped afterwards even when the test fails.
final class Playground: @unchecked Sendable {
    // Written once in `start`, read afterwards from the test's task only.
    let folder: String
    let nginxPort: Int
    let prometheusPort: Int
    /// Where a test may start a Pushgateway; Prometheus scrapes it (nothing there otherwise).
    let pushgatewayPort: Int
    var prometheus: ChildProcess?
    /// The service name (the compose project under the Docker runtime).
    let service: String
    /// The engine of a Docker playground; nil: the process runtime.
    let dockerHost: String?
    /// The swarm of a swarm playground, and the published ports of its colours.
    let swarm: SwarmTestCluster?
    var swarmPorts: [String: Int] = [:]
    /// `deploy.swarm.minHealthyReplicas` and `publish` of a swarm playground.
    var minHealthyReplicas = 3
    var swarmPublish = "host"

    static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
    }

    static var recengine: String {
        ProcessInfo.processInfo.environment["RECENGINE_BIN"]
            ?? root.appendingPathComponent(".build/debug/recengine").path
    }

    static var orchestrate: String {
        ProcessInfo.processInfo.environment["ORCHESTRATE_BIN"]
            ?? root.appendingPathComponent(".build/debug/orchestrate").path
    }

    init(dockerHost: String? = nil, swarm: SwarmTestCluster? = nil) throws {
        self.dockerHost = dockerHost
        self.swarm = swarm
        service = dockerHost == nil && swarm == nil ? "svc" : "svc\(UUID().uuidString.prefix(6).lowercased())"
        if swarm != nil {
            let base = 20000 + Int.random(in: 0..<4000) * 2
            swarmPorts = ["blue": base, "green": base + 1]
        }
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("playground-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        nginxPort = try freePort()
        prometheusPort = try freePort()
        pushgatewayPort = try freePort()
    }

    var pipelinePath: String { folder + "/pipeline.yml" }
    var statePath: String { folder + "/releases/state/\(service)" }
    var historyPath: String { folder + "/releases/history.jsonl" }

    /// Runs `body` with a started playground and always cleans up.
    static func with(
        dockerHost: String? = nil, swarm: SwarmTestCluster? = nil, _ body: (Playground) async throws -> Void
    ) async throws {
        let playground = try Playground(dockerHost: dockerHost, swarm: swarm)
        do {
            try await playground.start()
            try await body(playground)
        } catch {
            await playground.stop()
            throw error
        }
        await playground.stop()
    }

    func start() async throws {
        try writeRatings()
        try useTestImages()
        let prometheusConfig = """
            global:
              scrape_interval: 1s
            scrape_configs:
              - job_name: recengine
                file_sd_configs:
                  - files: ["\(statePath)/targets.json"]
                    refresh_interval: 1s
              - job_name: pushgateway
                honor_labels: true
                static_configs:
                  - targets: ["127.0.0.1:\(pushgatewayPort)"]
            """
        try prometheusConfig.write(toFile: folder + "/prometheus.yml", atomically: true, encoding: .utf8)
        prometheus = try ChildProcess.spawn(
            "/usr/bin/prometheus",
            [
                "--config.file=\(folder)/prometheus.yml", "--storage.tsdb.path=\(folder)/tsdb",
                "--web.listen-address=127.0.0.1:\(prometheusPort)", "--log.level=warn",
            ])
        for _ in 0..<100 {
            if (try? await HTTPClient.get(
                "http://127.0.0.1:\(prometheusPort)/-/ready", limit: .forTests, timeout: .seconds(1)))?.status == 200
            {
                return
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw PlaygroundError("Prometheus did not become ready")
    }

    func stop() async {
        for disk in disks { disk.free() }
        for color in ["blue", "green"] { try? await runtime.stop(color: color) }
        await nginx.stop()
        if let docker = runtime as? DockerRuntime { try? await docker.compose().down() }
        if let prometheus {
            prometheus.signal(SIGTERM)
            _ = await prometheus.wait()
        }
        for disk in disks { disk.unmount() }
        try? FileManager.default.removeItem(atPath: folder)
    }

    /// The small file systems mounted in the playground, unmounted by `stop`.
    var disks: [FullDisk] = []

    /// Mounts a small tmpfs over `path` (relative to the playground's folder), to be filled by
    /// the test: `releases/state` puts the state folder on it, `releases` the history too.
    func mountDisk(at path: String, megabytes: Int = 16) throws -> FullDisk {
        let disk = try FullDisk(at: folder + "/" + path, megabytes: megabytes)
        disks.append(disk)
        return disk
    }

    /// Under the Docker runtime: the project's compose file with the images the Docker tests import.
    func useTestImages() throws {
        guard dockerHost != nil, composePath == Playground.root.appendingPathComponent("compose/recommender.yml").path
        else { return }
        let compose = try String(contentsOfFile: composePath, encoding: .utf8)
            .replacingOccurrences(
                of: "${RECENGINE_IMAGE:-localhost/recengine:latest}", with: "localhost/orchestrate-test-recengine:1"
            )
            .replacingOccurrences(
                of: "${NGINX_IMAGE:-localhost/orchestrate-nginx:latest}", with: "localhost/orchestrate-test-nginx:1")
        try compose.write(toFile: folder + "/compose.yml", atomically: true, encoding: .utf8)
        composePath = folder + "/compose.yml"
    }

    func writeRatings() throws {
        var generator = SeededGenerator(seed: 11)
        var text = "user_id,movie_id,rating\n"
        for u in 0..<120 {
            var chosen = Set<Int>()
            while chosen.count < 15 { chosen.insert(generator.nextIndex(below: 80)) }
            for i in chosen.sorted() {
                text += "u\(u),m\(i),\(min(5, max(1, 3 + (u % 3) - (i % 3) + generator.nextIndex(below: 2))))\n"
            }
        }
        try text.write(toFile: folder + "/ratings.csv", atomically: true, encoding: .utf8)
    }

    /// A gate no release can pass: each colour exports one model-info series.
    static let impossibleGate = """
            - name: impossible
              query: sum(recengine_model_info{color="{{color}}"})
              max: 0.5
              initialDelay: 3s
              interval: 1s
              onNoData: inconclusive
        """

    /// A pipeline over the generated ratings; `gate` is the PromQL gate list, `traffic` more
    /// lines of `traffic:` (indented by two spaces), `extra` more top-level lines.
    func writePipeline(
        gates: String? = nil, steps: String = "[25, 50, 100]", wait: String = "4s", args: String = "[]",
        prometheusPort: Int? = nil,
        drain: String = "1s", extra: String = "", traffic: String = ""
    ) throws {
        let errorRate = """
                - name: error-rate
                  query: (sum(rate(recengine_http_requests_total{color="{{color}}",status=~"5.."}[5s])) or vector(0)) / sum(rate(recengine_http_requests_total{color="{{color}}"}[5s]))
                  max: 0.05
                  initialDelay: 2s
                  interval: 1s
                  count: 1
                  onNoData: inconclusive
            """
        let text = """
            version: 1
            name: svc
            history: releases/history.jsonl
            stages:
              - name: train
                uses: train
                with: {ratings: ratings.csv, model: models/m, factors: 8, epochs: "${EPOCHS:-10}"}
            deploy:
              runtime: \(swarm != nil ? "swarm" : dockerHost == nil ? "process" : "docker")
              service: \(service)
              args: \(args)
            \(dockerHost.map { "  docker: {host: \"\($0)\", compose: \(composePath)}" } ?? "")
            \(swarmBlock)
              health: {path: /health, timeout: \(swarm == nil ? "20s" : "90s")}
            traffic:
              nginx: {config: releases/state/\(service)/nginx.conf, listen: \(nginxPort)}
              mode: sticky
              steps: \(steps)
              wait: \(wait)
              stopOld: true
              drain: \(drain)
            \(traffic)
            analysis:
              prometheus: http://127.0.0.1:\(prometheusPort ?? self.prometheusPort)
              gates:
            \(gates ?? errorRate)
            \(extra)
            """
        try text.write(toFile: pipelinePath, atomically: true, encoding: .utf8)
    }

    /// The `deploy.swarm` block of a swarm playground: 3 replicas spread over the zones.
    var swarmBlock: String {
        guard let swarm else { return "" }
        return """
              swarm:
                host: "\(swarm.manager)"
                engines: [\(swarm.engines.map { "\"\($0)\"" }.joined(separator: ", "))]
                image: \(swarm.image)
                replicas: 3
                minHealthyReplicas: \(minHealthyReplicas)
                ports: {blue: \(swarmPorts["blue"]!), green: \(swarmPorts["green"]!)}
                spread: [node.labels.zone]
                publish: \(swarmPublish)
            """
    }

    /// Runs the pipeline in process under a steady load through nginx (so the gates have data);
    /// the load's samples are in `lastSamples` afterwards.
    func run(_ options: RunOptions = RunOptions(), environment: [String: String] = [:]) async throws -> ReleaseRecord {
        var options = options
        options.recengine = Self.recengine
        let pipeline = try PipelineLoader(environment: environment).load(pipelinePath, overrides: options.overrides)
        let load = LoadGenerator()
        load.start(port: nginxPort, users: loadUsers)
        let result: ReleaseController.RunResult
        do {
            result = try await ReleaseController(pipeline: pipeline, options: options).run()
        } catch {
            await load.stop()
            lastSamples = load.samples
            throw error
        }
        try await Task.sleep(for: .milliseconds(300))
        await load.stop()
        lastSamples = load.samples
        return try #require(result.record, "\(result)")
    }

    var lastSamples: [LoadGenerator.Sample] = []
    /// The load's users are u0 to u(loadUsers - 1); the ratings know u0 to u119, the rest are
    /// unknown (answered with the most rated movies).
    var loadUsers = 5000

    /// Starts `orchestrate run --force` in another process and returns once its rollout is
    /// holding a traffic step.
    func startControllerUntilTrafficStep() async throws -> ChildProcess {
        try await startController(until: .shifting)
    }

    /// The controller's output, when started by `startController`.
    var controllerLog: String { folder + "/controller.log" }

    /// Starts `orchestrate run --force` in another process and returns once its run reached
    /// `phase` (and `condition` holds, when given).
    func startController(
        _ arguments: [String] = [], until phase: RunPhase, environment: [String: String] = [:],
        where condition: (RunState) -> Bool = { _ in true }
    ) async throws -> ChildProcess {
        let controller = try ChildProcess.spawn(
            Self.orchestrate, ["run", pipelinePath, "--force"] + arguments,
            environment: ["RECENGINE_BIN": Self.recengine].merging(environment) { $1 },
            log: controllerLog)
        let state = StateStore(folder: statePath)
        for _ in 0..<600 {
            if let run = (try? state.run()) ?? nil, run.phase == phase, condition(run) { return controller }
            try await Task.sleep(for: .milliseconds(50))
        }
        controller.signal(SIGKILL)
        _ = await controller.wait()
        throw PlaygroundError(
            "the controller did not reach \(phase) within 30 s: \((try? String(contentsOfFile: controllerLog, encoding: .utf8)) ?? "")"
        )
    }

    /// The compose file the Docker playground deploys with (the project's own unless replaced).
    var composePath: String = Playground.root.appendingPathComponent("compose/recommender.yml").path

    var nginx: NginxController {
        let config = NginxConfig(listenPort: nginxPort, runtimeFolder: statePath + "/nginx")
        if let docker = runtime as? DockerRuntime {
            return NginxController(
                config: config, configPath: statePath + "/nginx.conf", host: ContainerNginx(runtime: docker))
        }
        return NginxController(config: config, configPath: statePath + "/nginx.conf")
    }

    var runtime: any DeploymentRuntime {
        if swarm != nil, let pipeline = try? PipelineLoader().load(pipelinePath), let spec = pipeline.deploy?.swarm,
            let manager = try? DockerEngine(host: spec.host ?? ""),
            let engines = try? (spec.engines ?? []).map({ try DockerEngine(host: $0) })
        {
            return SwarmRuntime(
                manager: manager, engines: engines, spec: spec, project: service, stateFolder: statePath,
                serveArguments: [])
        }
        if let dockerHost, let engine = try? DockerEngine(host: dockerHost) {
            return DockerRuntime(
                engine: engine, composePath: composePath, project: service, stateFolder: statePath,
                nginxFolder: statePath + "/nginx",
                nginxConfig: statePath + "/nginx.conf")
        }
        return ProcessRuntime(stateFolder: statePath, recengine: Self.recengine)
    }
}

struct PlaygroundError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// A steady load through nginx: random users, recording each answer's status and colour.
final class LoadGenerator: @unchecked Sendable {
    struct Sample {
        var at: Date
        var status: Int
        var color: String?
    }

    // Guarded by `lock`.
    private let lock = NSLock()
    private var storage: [Sample] = []
    private var task: Task<Void, Never>?

    func start(port: Int, users: Int = 5000) {
        task = Task.detached { [self] in
            var user = 0
            while !Task.isCancelled {
                user = (user &* 1_103_515_245 &+ 12345) & 0x7fff_ffff
                let sample: Sample
                do {
                    let response = try await HTTPClient.get(
                        "http://127.0.0.1:\(port)/recommend/u\(user % users)?k=5", limit: .forTests,
                        timeout: .seconds(5), headers: ["Accept: application/json"])
                    let body = try? JSONSerialization.jsonObject(with: response.body) as? [String: Any]
                    sample = Sample(at: Date(), status: response.status, color: body?["color"] as? String)
                } catch is CancellationError {
                    break  // the load was stopped while this request was in flight
                } catch {
                    sample = Sample(at: Date(), status: 0, color: nil)
                }
                record(sample)
                try? await Task.sleep(for: .milliseconds(4))
            }
        }
    }

    private func record(_ sample: Sample) {
        lock.lock()
        storage.append(sample)
        lock.unlock()
    }

    func stop() async {
        task?.cancel()
        await task?.value
    }

    var samples: [Sample] {
        lock.lock()
        defer { lock.unlock() }
        return storage
    }
}

extension HTTPClient.BodyLimit {
    /// What the tests read of an answer: far more than any answer of ours.
    static let forTests = HTTPClient.BodyLimit(
        16 << 20, for: "an answer read by a test", hint: "a test reads small answers")
}
