public import Foundation
import EngineAPI
import StrictYAML
import RecEngine

/// Runs a validated pipeline: plans, takes the lock, runs each stage (or reuses it when nothing it
/// depends on changed), checks gates, and appends the release record.
public struct PipelineRunner: Sendable {
    public static let version = "0.1.0"

    public var pipeline: Pipeline
    public var options: RunOptions
    /// Progress for people (stderr in the CLI).
    public var progress: @Sendable (String) -> Void

    public init(pipeline: Pipeline, options: RunOptions, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.pipeline = pipeline
        self.options = options
        self.progress = progress
    }

    var history: ReleaseHistory { ReleaseHistory(path: pipeline.history) }
    var logsFolder: String { URL(fileURLWithPath: pipeline.history).deletingLastPathComponent().appendingPathComponent("logs").path }
    var pipelineFolder: String { URL(fileURLWithPath: pipeline.file).deletingLastPathComponent().path }

    public static func newReleaseID(at date: Date = Date()) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        let suffix = (0..<3).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
        return "rel-\(formatter.string(from: date))-\(suffix)"
    }

    // MARK: Planning

    /// The plan: which stages run and why, what is deployed where, every traffic step and query.
    /// Reads files and the history; writes nothing and starts no process.
    public func plan(releaseID: String) throws -> RunPlan {
        try checkSkips()
        let records = try history.records()
        var willRun: [String: String] = [:]  // output path -> stage that runs first
        var planned: [RunPlan.PlannedStage] = []
        for stage in pipeline.stages {
            var entry = RunPlan.PlannedStage(
                name: stage.name, uses: stage.uses, argv: stage.argv, parameters: stage.parameters, env: stage.env, inputs: stage.inputs,
                outputs: stage.outputs, timeout: stage.timeout, retries: stage.retries, gate: stage.gate, image: stage.image, action: "run",
                reason: nil)
            if options.skip.contains(stage.name) {
                entry.action = "skipped"
                entry.reason = "--skip \(stage.name)"
            } else if let upstream = stage.inputs.compactMap({ input in willRun[input].map { (input, $0) } }).first {
                entry.reason = "its input \(upstream.0) is written by \(upstream.1), which runs first"
            } else {
                let decision = try cacheDecision(for: stage, in: records)
                entry.action = decision.cached ? "cached" : "run"
                entry.reason = decision.reason
            }
            if entry.action == "run" {
                for output in stage.outputs { willRun[output] = stage.name }
            }
            planned.append(entry)
        }
        let live = pipeline.deploy == nil ? nil : DeploymentState(pipeline: pipeline).current()?.color
        let deployment = pipeline.deploy.map { deploy in
            RunPlan.Deployment(
                runtime: deploy.runtime, service: deploy.service, model: deploy.model, live: live,
                target: deploy.colors.first { $0 != live } ?? deploy.colors[0], health: deploy.health)
        }
        var steps: [RunPlan.PlannedStep] = []
        if let traffic = pipeline.traffic {
            let target = deployment?.target ?? "new"
            let liveName = live ?? "none"
            // With nothing live, the first release takes all traffic at once once it is healthy.
            let weights = live == nil ? [100] : traffic.steps
            for (index, weight) in weights.enumerated() {
                var queries: [String: String] = [:]
                for gate in pipeline.analysis?.gates ?? [] {
                    queries[gate.name] = gate.resolvedQuery(color: target, live: liveName, release: releaseID)
                }
                steps.append(RunPlan.PlannedStep(step: index + 1, newWeight: weight, liveWeight: 100 - weight, queries: queries))
            }
        }
        var plan = RunPlan(
            releaseID: releaseID, pipeline: reference, history: pipeline.history, overrides: options.overrides, stages: planned,
            deployment: deployment, traffic: pipeline.traffic, steps: steps, analysis: pipeline.analysis, rollback: pipeline.rollback,
            hooks: pipeline.hooks)
        if let deployment, deployment.runtime == "docker", let rollout = try makeRollout(), let docker = rollout.runtime as? DockerRuntime {
            plan.containers = try plannedContainers(docker, target: deployment.target, loadBalancer: pipeline.traffic != nil)
        }
        return plan
    }

    /// The containers a Docker release creates: the target colour (its model as the store's copy,
    /// named by the digest it will have once trained) and the load balancer.
    func plannedContainers(_ runtime: DockerRuntime, target: String, loadBalancer: Bool) throws -> [RunPlan.PlannedContainer] {
        let project = try runtime.compose(color: target, modelDirectory: runtime.stateFolder + "/models/<sha256 of the trained model>")
        return ([target] + (loadBalancer ? ["lb"] : [])).compactMap { name in
            guard let service = project.file.services[name] else { return nil }
            let body = project.createBody(service, hash: project.configHash(service), oneOff: false)
            let host = body["HostConfig"] as? [String: Any] ?? [:]
            return RunPlan.PlannedContainer(
                name: project.containerName(name), image: service.image, command: service.command ?? [], binds: host["Binds"] as? [String] ?? [],
                network: host["NetworkMode"] as? String ?? "default", labels: body["Labels"] as? [String: String] ?? [:])
        }
    }

    var reference: ReleaseRecord.PipelineReference {
        ReleaseRecord.PipelineReference(name: pipeline.name, path: pipeline.file, sha256: pipeline.sha256)
    }

    func checkSkips() throws {
        let names = pipeline.stages.map(\.name)
        for skip in options.skip where !names.contains(skip) {
            throw OrchestratorError(
                .invalidInput, "--skip \(skip): the pipeline has no stage named \"\(skip)\"",
                hint: "its stages are \(names.joined(separator: ", "))")
        }
    }

    struct CacheDecision {
        var cached: Bool
        var reason: String
        var previous: ReleaseRecord.StageRecord?
        var fingerprint: String?
    }

    /// Whether a stage can be skipped: same fingerprint (action, parameters, environment, input
    /// digests) as in the last successful run, and every output it recorded still present with the
    /// recorded digest.
    func cacheDecision(for stage: Stage, in records: [ReleaseRecord]) throws -> CacheDecision {
        let inputs = try stage.inputs.map(ArtifactDigest.of)
        if let missing = inputs.first(where: { $0.sha256 == nil }) {
            return CacheDecision(cached: false, reason: "its input \(missing.path) does not exist yet")
        }
        let fingerprint = try Self.fingerprint(of: stage, inputs: inputs)
        if case .builtin(.ingest, let parameters) = stage.action, parameters["format"] == .string("movielog") {
            return CacheDecision(cached: false, reason: "a movie log ingest always reads what is new", fingerprint: fingerprint)
        }
        if case .command = stage.action, stage.outputs.isEmpty {
            return CacheDecision(cached: false, reason: "a command without declared outputs always runs", fingerprint: fingerprint)
        }
        if options.force {
            return CacheDecision(cached: false, reason: "--force", fingerprint: fingerprint)
        }
        guard
            let (record, previous) = records.reversed().lazy.compactMap({ record -> (ReleaseRecord, ReleaseRecord.StageRecord)? in
                guard record.outcome == "succeeded", !record.dryRun else { return nil }
                guard let entry = record.stages.first(where: { $0.name == stage.name && ($0.status == "succeeded" || $0.status == "cached") })
                else { return nil }
                return (record, entry)
            }).first
        else {
            return CacheDecision(cached: false, reason: "no earlier successful run", fingerprint: fingerprint)
        }
        guard previous.fingerprint == fingerprint else {
            return CacheDecision(
                cached: false, reason: "its inputs or parameters changed since \(record.releaseID)", fingerprint: fingerprint)
        }
        for output in previous.outputs {
            let now = try ArtifactDigest.of(output.path)
            if now.sha256 == nil {
                return CacheDecision(cached: false, reason: "its output \(output.path) is gone", fingerprint: fingerprint)
            }
            if now.sha256 != output.sha256 {
                return CacheDecision(cached: false, reason: "its output \(output.path) changed since \(record.releaseID)", fingerprint: fingerprint)
            }
        }
        return CacheDecision(
            cached: true, reason: "inputs and parameters unchanged since \(record.releaseID), outputs intact", previous: previous,
            fingerprint: fingerprint)
    }

    static func fingerprint(of stage: Stage, inputs: [ArtifactDigest]) throws -> String {
        struct Fingerprint: Encodable {
            var uses: String?
            var argv: [String]?
            var image: String?
            var parameters: [String: ParameterValue]?
            var env: [String: String]
            var inputs: [String: String]
        }
        let value = Fingerprint(
            uses: stage.uses, argv: stage.argv, image: stage.image, parameters: stage.parameters, env: stage.env,
            inputs: Dictionary(uniqueKeysWithValues: inputs.map { ($0.path, $0.sha256 ?? "") }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return sha256Hex(try encoder.encode(value))
    }
}
