import Foundation
import EngineAPI
public import StrictYAML

/// What `orchestrate run` will do, computed before it does anything: the body of `--dry-run`.
public struct RunPlan: Sendable, Codable {
    public struct PlannedStage: Sendable, Codable {
        public var name: String
        public var uses: String?
        public var argv: [String]?
        public var parameters: [String: ParameterValue]?
        public var env: [String: String]
        public var inputs: [String]
        public var outputs: [String]
        public var timeout: PipelineDuration?
        public var retries: Int
        public var gate: [MetricThreshold]
        /// The image of a stage that runs in a one-off container.
        public var image: String?
        /// run, cached or skipped.
        public var action: String
        public var reason: String?
    }

    public struct PlannedStep: Sendable, Codable {
        public var step: Int
        /// Percent of users on the new colour, and on the live one.
        public var newWeight: Int
        public var liveWeight: Int
        /// Every PromQL query as it will be sent at this step.
        public var queries: [String: String]

        enum CodingKeys: String, CodingKey {
            case step, queries
            case newWeight = "new_weight"
            case liveWeight = "live_weight"
        }
    }

    public struct Deployment: Sendable, Codable {
        public var runtime: String
        public var service: String
        public var model: String?
        /// The colour serving now, nil when nothing was released yet.
        public var live: String?
        /// The colour that receives the release.
        public var target: String
        public var health: HealthCheckSpec
    }

    /// A container the Docker runtime will create (or recreate), as the engine will be asked.
    public struct PlannedContainer: Sendable, Codable {
        public var name: String
        public var image: String
        public var command: [String]
        public var binds: [String]
        public var network: String
        public var labels: [String: String]
    }

    public var releaseID: String
    public var pipeline: ReleaseRecord.PipelineReference
    public var history: String
    public var overrides: [String]
    public var stages: [PlannedStage]
    public var deployment: Deployment?
    public var containers: [PlannedContainer] = []
    public var traffic: TrafficSpec?
    public var steps: [PlannedStep]
    public var analysis: AnalysisSpec?
    public var rollback: RollbackSpec
    public var hooks: HooksSpec

    enum CodingKeys: String, CodingKey {
        case pipeline, history, overrides, stages, deployment, containers, traffic, steps, analysis, rollback, hooks
        case releaseID = "release_id"
    }
}

extension RunPlan {
    /// The plan for people: every stage, step, query and policy, in the order they happen.
    public func rendered() -> String {
        var lines: [String] = []
        lines.append("plan for release \(releaseID) of pipeline \(pipeline.name) (\(pipeline.path), sha256 \(pipeline.sha256.prefix(12)))")
        if !overrides.isEmpty { lines.append("overrides: \(overrides.joined(separator: " "))") }
        lines.append("history: \(history)")
        lines.append("")
        lines.append("stages:")
        for (index, stage) in stages.enumerated() {
            let what = stage.uses.map { "uses \($0)" } ?? "run \(shellQuoted(stage.argv ?? []))\(stage.image.map { " in a one-off container of \($0)" } ?? "")"
            let decision = stage.action == "run" ? "will run" : stage.action == "cached" ? "will be skipped (cached)" : "will be skipped"
            lines.append("  \(index + 1). \(stage.name): \(what) — \(decision)\(stage.reason.map { ": \($0)" } ?? "")")
            if let parameters = stage.parameters, !parameters.isEmpty {
                lines.append("     with: " + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            }
            if !stage.env.isEmpty {
                lines.append("     env: " + stage.env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            }
            if !stage.inputs.isEmpty { lines.append("     inputs: \(stage.inputs.joined(separator: ", "))") }
            if !stage.outputs.isEmpty { lines.append("     outputs: \(stage.outputs.joined(separator: ", "))") }
            var limits: [String] = []
            if let timeout = stage.timeout { limits.append("timeout \(timeout)") }
            if stage.retries > 0 { limits.append("\(stage.retries) retries") }
            if !limits.isEmpty { lines.append("     " + limits.joined(separator: ", ")) }
            for threshold in stage.gate {
                lines.append("     gate: \(threshold.metric) \(threshold.condition)")
            }
        }
        if let deployment {
            lines.append("")
            lines.append("deploy: \(deployment.service) on the \(deployment.runtime) runtime")
            lines.append("  live colour: \(deployment.live ?? "none (first release)"); the release goes to: \(deployment.target)")
            if let model = deployment.model { lines.append("  model: \(model)") }
            lines.append("  health: GET \(deployment.health.path) must answer 200 within \(deployment.health.timeout)")
            for container in containers {
                lines.append("  container \(container.name): image \(container.image), network \(container.network)")
                lines.append("    command: \(shellQuoted(container.command))")
                for bind in container.binds { lines.append("    bind: \(bind)") }
                let labels = container.labels.filter { !$0.key.hasSuffix("config-hash") }.sorted { $0.key < $1.key }
                lines.append("    labels: " + labels.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            }
        }
        if let traffic {
            lines.append("")
            lines.append("traffic: nginx config \(traffic.nginxConfig), listening on \(traffic.listen), \(traffic.mode.rawValue) split")
            if deployment?.live == nil {
                lines.append("  nothing is live yet: the release takes all traffic in one step once healthy (steps \(traffic.steps) apply from the next release)")
            }
            for step in steps {
                let live = deployment?.live ?? "live"
                let target = deployment?.target ?? "new"
                lines.append("  step \(step.step): \(target) \(step.newWeight)% / \(live) \(step.liveWeight)%, hold \(traffic.wait)")
                for (gate, query) in step.queries.sorted(by: { $0.key < $1.key }) {
                    lines.append("    query \(gate): \(query)")
                }
            }
            lines.append("  after the last step: " + (traffic.stopOld ? "stop the old colour after \(traffic.drain)" : "keep the old colour running"))
        }
        if let analysis {
            lines.append("")
            lines.append("analysis: Prometheus at \(analysis.prometheus)")
            for gate in analysis.gates {
                let bounds = [gate.min.map { ">= \(formatNumber($0))" }, gate.max.map { "<= \(formatNumber($0))" }].compactMap { $0 }
                lines.append(
                    "  gate \(gate.name): \(bounds.joined(separator: " and ")), \(gate.count) measurement(s) every \(gate.interval) after \(gate.initialDelay), "
                        + "failureLimit \(gate.failureLimit), consecutiveErrorLimit \(gate.consecutiveErrorLimit), no data: \(gate.onNoData.rawValue)")
            }
        }
        if deployment != nil {
            lines.append("")
            lines.append(
                "rollback: " + (rollback.automatic ? "automatic on any failed gate or health check" : "manual (orchestrate rollback)")
                    + (rollback.stopNew ? "; traffic back to the live colour first, then the new colour is stopped" : "; the new colour keeps running"))
        }
        let hookLines = [("pre-rollout", hooks.preRollout), ("during each step", hooks.duringStep), ("post-rollout", hooks.postRollout), ("on rollback", hooks.onRollback)]
            .flatMap { label, commands in commands.map { "  \(label): \(shellQuoted($0))" } }
        if !hookLines.isEmpty {
            lines.append("")
            lines.append("hooks:")
            lines.append(contentsOf: hookLines)
        }
        return lines.joined(separator: "\n")
    }
}

/// An argument vector written the way a person would type it, for display only: it is never run
/// through a shell.
func shellQuoted(_ argv: [String]) -> String {
    argv.map { word in
        word.isEmpty || word.contains(where: { " \t\n'\"$`\\|&;<>()*?[]{}#~".contains($0) })
            ? "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" : word
    }.joined(separator: " ")
}
