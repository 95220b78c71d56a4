import Foundation
public import OrchestratorSupport
public import PipelineSchema
public import StrictYAML

/// What `orchestrate run` will do, computed once before it does anything: `--dry-run` prints
/// it, the executor carries it out, and the release record stores it. Nothing the run does is
/// decided anywhere else.
public struct RunPlan: Sendable, Codable, Equatable {
    public enum StageAction: String, Sendable, Codable, Equatable {
        case run
        /// Reused from an earlier run: inputs and parameters unchanged, outputs intact.
        case cached
        /// Left out (`--skip`).
        case skipped
        /// An earlier stage of this run writes one of its inputs: it runs, unless that input turns
        /// out unchanged, in which case it is reused (decided once the earlier stage has run).
        case runOrReuse = "run_or_reuse"
    }

    public struct PlannedStage: Sendable, Codable, Equatable {
        public var name: String
        public var uses: String?
        /// A built-in's typed parameters (nil for a command): all its executor reads of them.
        public var parameters: BuiltinParameters?
        /// What runs: the command's argument vector, or for a built-in the `recengine` command
        /// line that does its work in a child process.
        public var command: [String]
        /// The image of a stage that runs in a one-off container.
        public var image: String?
        public var env: [String: String]
        public var inputs: [String]
        public var outputs: [String]
        public var timeout: PipelineDuration?
        public var retries: Int
        public var gate: [MetricThreshold]
        public var action: StageAction
        public var reason: String
        /// The release whose outputs a cached stage reuses.
        public var cachedFrom: String?
        /// The digests of the inputs as planned (inputs no earlier stage writes), so the run does
        /// not read them again.
        public var inputDigests: [ArtifactDigest]
        /// The JSON file of metrics a command writes (command stages only).
        public var metricsFile: String? = nil

        /// The built-in it runs (nil for a command).
        package var builtin: BuiltinStage? { uses.flatMap(BuiltinStage.init(rawValue:)) }
        /// A command's argument vector (nil for a built-in).
        package var argv: [String]? { uses == nil ? command : nil }

        enum CodingKeys: String, CodingKey {
            case name, uses, parameters, command, image, env, inputs, outputs, timeout, retries, gate, action, reason
            case cachedFrom = "cached_from"
            case inputDigests = "input_digests"
            case metricsFile = "metrics_file"
        }

        package init(
            name: String, uses: String? = nil, parameters: BuiltinParameters? = nil, command: [String],
            image: String? = nil, env: [String: String], inputs: [String], outputs: [String],
            timeout: PipelineDuration? = nil, retries: Int, gate: [MetricThreshold], action: StageAction,
            reason: String, cachedFrom: String? = nil, inputDigests: [ArtifactDigest], metricsFile: String? = nil
        ) {
            self.name = name
            self.uses = uses
            self.parameters = parameters
            self.command = command
            self.image = image
            self.env = env
            self.inputs = inputs
            self.outputs = outputs
            self.timeout = timeout
            self.retries = retries
            self.gate = gate
            self.action = action
            self.reason = reason
            self.cachedFrom = cachedFrom
            self.inputDigests = inputDigests
            self.metricsFile = metricsFile
        }

        /// A plan a record stored: the parameters are read as its built-in's (a whole number
        /// stored for a number is that number; one the stored plan lacks takes its default).
        /// Parameters that cannot be read so (a plan of another version) are left out, so that the
        /// record stays readable; a stored plan is shown and never carried out again.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            name = try container.decode(String.self, forKey: .name)
            uses = try container.decodeIfPresent(String.self, forKey: .uses)
            parameters = nil
            if let values = try container.decodeIfPresent([String: ParameterValue].self, forKey: .parameters),
                let kind = uses.flatMap(BuiltinStage.init(rawValue:))
            {
                parameters = try? BuiltinParameters(kind, values: values)
            }
            command = try container.decode([String].self, forKey: .command)
            image = try container.decodeIfPresent(String.self, forKey: .image)
            env = try container.decode([String: String].self, forKey: .env)
            inputs = try container.decode([String].self, forKey: .inputs)
            outputs = try container.decode([String].self, forKey: .outputs)
            timeout = try container.decodeIfPresent(PipelineDuration.self, forKey: .timeout)
            retries = try container.decode(Int.self, forKey: .retries)
            gate = try container.decode([MetricThreshold].self, forKey: .gate)
            action = try container.decode(StageAction.self, forKey: .action)
            reason = try container.decode(String.self, forKey: .reason)
            cachedFrom = try container.decodeIfPresent(String.self, forKey: .cachedFrom)
            inputDigests = try container.decode([ArtifactDigest].self, forKey: .inputDigests)
            metricsFile = try container.decodeIfPresent(String.self, forKey: .metricsFile)
        }
    }

    public struct PlannedStep: Sendable, Codable, Equatable {
        public var step: Int
        /// Percent of users on the new colour, and on the live one.
        public var newWeight: Int
        public var liveWeight: Int
        /// Every PromQL query as it will be sent at this step.
        public var queries: [String: String]
        /// What the judge can detect at this step, at the end of the hold and at `maxWait`.
        public var power: [Power] = []
        public var powerAtMaxWait: [Power] = []

        enum CodingKeys: String, CodingKey {
            case step, queries, power
            case newWeight = "new_weight"
            case liveWeight = "live_weight"
            case powerAtMaxWait = "power_at_max_wait"
        }

        public init(step: Int, newWeight: Int, liveWeight: Int, queries: [String: String]) {
            self.step = step
            self.newWeight = newWeight
            self.liveWeight = liveWeight
            self.queries = queries
        }

        /// Records written before the judge have no power figures: they stay readable.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            step = try container.decode(Int.self, forKey: .step)
            newWeight = try container.decode(Int.self, forKey: .newWeight)
            liveWeight = try container.decode(Int.self, forKey: .liveWeight)
            queries = try container.decode([String: String].self, forKey: .queries)
            power = try container.decodeIfPresent([Power].self, forKey: .power) ?? []
            powerAtMaxWait = try container.decodeIfPresent([Power].self, forKey: .powerAtMaxWait) ?? []
        }
    }

    /// The smallest regression of a metric the judge can detect with the traffic a step gets.
    public struct Power: Sendable, Codable, Equatable {
        public var metric: String
        /// Trials the new colour gathers.
        public var newTrials: Double
        /// Relative to live (or absolute, as the metric's `effect`).
        public var detectable: Double
        public var declared: Double
        public var absolute: Bool
        /// What `newTrials` counts: `trials` (requests, or recommendations) or `users` (a metric
        /// measured between groups of users); nil in plans written before.
        public var unit: String? = nil
        /// What the new colour needs for the declared effect, and how long it takes to gather at
        /// the expected rate (nil when no amount would do).
        public var neededNew: Double? = nil
        public var neededSeconds: Double? = nil

        public var sufficient: Bool { detectable <= declared }

        enum CodingKeys: String, CodingKey {
            case metric, detectable, declared, absolute, unit
            case newTrials = "new_trials"
            case neededNew = "needed_new"
            case neededSeconds = "needed_seconds"
        }

        package init(
            metric: String, newTrials: Double, detectable: Double, declared: Double, absolute: Bool,
            unit: String? = nil,
            neededNew: Double? = nil, neededSeconds: Double? = nil
        ) {
            self.metric = metric
            self.newTrials = newTrials
            self.detectable = detectable
            self.declared = declared
            self.absolute = absolute
            self.unit = unit
            self.neededNew = neededNew
            self.neededSeconds = neededSeconds
        }
    }

    /// A container the Docker runtime will create (or recreate), as the engine will be asked.
    public struct PlannedContainer: Sendable, Codable, Equatable {
        public var name: String
        public var image: String
        public var command: [String]
        public var binds: [String]
        public var network: String
        public var labels: [String: String]

        public init(
            name: String, image: String, command: [String], binds: [String], network: String, labels: [String: String]
        ) {
            self.name = name
            self.image = image
            self.command = command
            self.binds = binds
            self.network = network
            self.labels = labels
        }
    }

    /// An interrupted run the controller converges before anything else.
    public struct PlannedRecovery: Sendable, Codable, Equatable {
        public var releaseID: String?
        public var phase: RunPhase?
        /// What convergence will do, for people.
        public var actions: [String]

        enum CodingKeys: String, CodingKey {
            case phase, actions
            case releaseID = "release_id"
        }

        package init(releaseID: String? = nil, phase: RunPhase? = nil, actions: [String]) {
            self.releaseID = releaseID
            self.phase = phase
            self.actions = actions
        }
    }

    /// The blue/green rollout.
    public struct Rollout: Sendable, Codable, Equatable {
        public var runtime: String
        public var service: String
        /// The model directory deployed (the train stage's output, copied into the model store).
        public var model: String
        /// The release serving now (checked against nginx and the runtime), nil on a first release.
        public var live: LiveRelease?
        /// The colour that receives the release.
        public var target: String
        public var health: HealthCheckSpec
        /// The traffic steps; a first release (nothing live) or `--no-staged-shift` has one step at 100%.
        public var steps: [PlannedStep]
        /// How each step's weights reach nginx; nil when the pipeline has no traffic section.
        public var mode: TrafficSpec.Mode?
        public var hold: PipelineDuration
        public var stopOld: Bool
        public var drain: PipelineDuration
        public var automaticRollback: Bool
        public var stopNew: Bool
        public var hooks: HooksSpec
        public var containers: [PlannedContainer]
        /// The pipeline's colours (`deploy.colors`), whose running instances Prometheus scrapes.
        public var colors: [String] = []
        /// Where Prometheus answers the gates and the judge; nil without `analysis:` (nothing is
        /// measured then).
        public var prometheus: String?
        /// Every PromQL gate's policy; the query each step sends is in its `queries`.
        public var gates: [PromQLGate] = []
        /// The judge, when there is a live colour to compare the new one with.
        public var judge: JudgeSpec?
        /// `traffic.interleave`: the sampled share of users who get both colours' lists
        /// interleaved at every step below 100 % (nil: none does).
        public var interleave: InterleaveSpec? = nil
        /// `traffic.shadow`: the shadow stage before the first step, when there is a live colour
        /// to compare the new one with (nil: none).
        public var shadow: ShadowSpec? = nil
        /// Where hooks run (the pipeline's folder) and write their logs.
        public var files: Files = Files(workingDirectory: "", logs: "")

        public struct Files: Sendable, Codable, Equatable {
            public var workingDirectory: String
            public var logs: String

            enum CodingKeys: String, CodingKey {
                case logs
                case workingDirectory = "working_directory"
            }

            package init(workingDirectory: String, logs: String) {
                self.workingDirectory = workingDirectory
                self.logs = logs
            }
        }

        enum CodingKeys: String, CodingKey {
            case runtime, service, model, live, target, health, steps, mode, hold, drain, hooks, containers, colors,
                prometheus, gates, judge, interleave, shadow, files
            case stopOld = "stop_old"
            case automaticRollback = "automatic_rollback"
            case stopNew = "stop_new"
        }

        package init(
            runtime: String, service: String, model: String, live: LiveRelease? = nil, target: String,
            health: HealthCheckSpec, steps: [PlannedStep], mode: TrafficSpec.Mode? = nil, hold: PipelineDuration,
            stopOld: Bool, drain: PipelineDuration, automaticRollback: Bool, stopNew: Bool, hooks: HooksSpec,
            containers: [PlannedContainer], colors: [String] = [], prometheus: String? = nil, gates: [PromQLGate] = [],
            judge: JudgeSpec? = nil, interleave: InterleaveSpec? = nil, shadow: ShadowSpec? = nil,
            files: Files = Files(workingDirectory: "", logs: "")
        ) {
            self.runtime = runtime
            self.service = service
            self.model = model
            self.live = live
            self.target = target
            self.health = health
            self.steps = steps
            self.mode = mode
            self.hold = hold
            self.stopOld = stopOld
            self.drain = drain
            self.automaticRollback = automaticRollback
            self.stopNew = stopNew
            self.hooks = hooks
            self.containers = containers
            self.colors = colors
            self.prometheus = prometheus
            self.gates = gates
            self.judge = judge
            self.interleave = interleave
            self.shadow = shadow
            self.files = files
        }
    }

    public var releaseID: String
    public var pipeline: ReleaseRecord.PipelineReference
    public var history: String
    public var overrides: [String]
    public var recovery: PlannedRecovery?
    public var stages: [PlannedStage]
    public var rollout: Rollout?
    /// nginx: where it listens and how it splits.
    public var traffic: TrafficSpec?
    public var analysis: AnalysisSpec?
    /// Who is told (`notify:`) and where the controller's metrics go (`metrics:`); no URL of a webhook.
    public var observers: PlannedObservers?
    /// The Docker Engine that runs the stages with an `image:` (`deploy.docker`).
    public var docker: DockerSpec? = nil
    /// The release policy when planned (windows, a pin, models marked bad); nil when there is none.
    public var policy: PlannedPolicy? = nil
    /// The webhook gates (`webhooks:`), their URLs with user info and query values redacted; nil
    /// without any (and in plans written before).
    public var webhooks: [PlannedWebhook]? = nil

    /// A webhook gate as the plan shows it (never its secret nor its URL's user info or query).
    public struct PlannedWebhook: Sendable, Codable, Equatable {
        public var name: String
        public var kind: WebhookGate.Kind
        public var url: String
        public var timeout: PipelineDuration
        public var retries: Int
        public var interval: PipelineDuration
        public var onUnreachable: WebhookGate.OnUnreachable
        /// Whether its body is signed (`secret`).
        public var signed: Bool

        enum CodingKeys: String, CodingKey {
            case name, kind, url, timeout, retries, interval, signed
            case onUnreachable = "on_unreachable"
        }

        package init(_ gate: WebhookGate) {
            name = gate.name
            kind = gate.kind
            url = gate.displayURL
            timeout = gate.timeout
            retries = gate.retries
            interval = gate.interval
            onUnreachable = gate.onUnreachable
            signed = gate.secret != nil
        }

        /// "webhook confirm-promotion approve: POST http://gate/approve, timeout 10s, 0 retries, ...".
        public var line: String {
            let what: String =
                switch kind {
                case .confirmRollout, .confirmTrafficIncrease, .confirmPromotion:
                    "waits until it answers 2xx (asked every \(interval)) or orchestrate approve answers it"
                case .preRollout: "a non-2xx answer fails the release"
                case .rollback: "asked every \(interval) while the step holds; a 2xx answer rolls back"
                case .postRollout: "told once, best effort"
                }
            return "webhook \(kind.rawValue) \(name): POST \(url)\(signed ? " (signed, HMAC-SHA256)" : ""); \(what); "
                + "timeout \(timeout), \(retries) retries, unreachable: \(onUnreachable.rawValue)"
        }
    }

    /// The release policy as it stands when the run is planned.
    public struct PlannedPolicy: Sendable, Codable, Equatable {
        /// `policy.windows` as people write them; nil without windows.
        public var windows: String?
        public var open: Bool
        /// When the next window opens, as people read it; nil while one is open.
        public var nextWindow: String?
        public var state: ReleasePolicyState
        /// Why a run started now would be refused; nil when it would start.
        public var refusal: String?

        package init(windows: String?, open: Bool, nextWindow: String?, state: ReleasePolicyState, refusal: String?) {
            self.windows = windows
            self.open = open
            self.nextWindow = nextWindow
            self.state = state
            self.refusal = refusal
        }

        enum CodingKeys: String, CodingKey {
            case windows, open, state, refusal
            case nextWindow = "next_window"
        }

        /// The policy for people, one fact per line, indented under a `policy:` heading.
        public var lines: [String] {
            var lines: [String] = []
            if let windows {
                lines.append(
                    "  release windows \(windows): \(open ? "open now" : "closed now; \(nextWindow ?? "no window ever opens")")"
                )
            }
            if let pin = state.pin {
                lines.append(
                    "  pinned: release \(pin.release)\(pin.reason.map { " (\($0))" } ?? "") by \(pin.by) since \(pin.on.ISO8601Format())"
                )
            }
            for bad in state.badModels {
                lines.append(
                    "  marked bad: model \(bad.modelSHA256.prefix(12))\(bad.release.map { " (release \($0))" } ?? "") by \(bad.by) on \(bad.on.ISO8601Format()): \(bad.reason)"
                )
            }
            if let refusal { lines.append("  a run now is refused: \(refusal)") }
            return lines
        }
    }

    enum CodingKeys: String, CodingKey {
        case pipeline, history, overrides, recovery, stages, rollout, traffic, analysis, observers, docker, policy,
            webhooks
        case releaseID = "release_id"
    }

    package init(
        releaseID: String, pipeline: ReleaseRecord.PipelineReference, history: String, overrides: [String],
        recovery: PlannedRecovery? = nil, stages: [PlannedStage], rollout: Rollout? = nil, traffic: TrafficSpec? = nil,
        analysis: AnalysisSpec? = nil, observers: PlannedObservers? = nil, docker: DockerSpec? = nil
    ) {
        self.releaseID = releaseID
        self.pipeline = pipeline
        self.history = history
        self.overrides = overrides
        self.recovery = recovery
        self.stages = stages
        self.rollout = rollout
        self.traffic = traffic
        self.analysis = analysis
        self.observers = observers
        self.docker = docker
    }
}

extension RunPlan {
    /// The plan for people: every stage, step, query and policy, in the order they happen.
    public func rendered() -> String {
        var lines: [String] = []
        lines.append(
            "plan for release \(releaseID) of pipeline \(pipeline.name) (\(pipeline.path), sha256 \(pipeline.sha256.prefix(12)))"
        )
        if !overrides.isEmpty { lines.append("overrides: \(overrides.joined(separator: " "))") }
        lines.append("history: \(history)")
        if let policy {
            lines.append("policy:")
            lines += policy.lines
        }
        if let recovery {
            lines.append("")
            lines.append(
                "first, recover the interrupted run \(recovery.releaseID ?? "(unknown: its state is unreadable)")\(recovery.phase.map { " (it stopped while \($0.rawValue))" } ?? ""):"
            )
            for action in recovery.actions { lines.append("  - \(action)") }
        }
        lines.append("")
        lines.append("stages:")
        for (index, stage) in stages.enumerated() {
            let what =
                stage.uses.map { "uses \($0)" }
                ?? "run \(shellQuoted(stage.command))\(stage.image.map { " in a one-off container of \($0)" } ?? "")"
            let decision =
                switch stage.action {
                case .run: "will run"
                case .runOrReuse: "will run, or be reused if its inputs come out unchanged"
                case .cached: "will be skipped (cached)"
                case .skipped: "will be skipped"
                }
            lines.append("  \(index + 1). \(stage.name): \(what) — \(decision): \(stage.reason)")
            if stage.uses != nil && (stage.action == .run || stage.action == .runOrReuse) {
                lines.append("     command: \(shellQuoted(stage.command))")
            }
            if let parameters = stage.parameters?.values, !parameters.isEmpty {
                lines.append(
                    "     with: "
                        + parameters.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            }
            if !stage.env.isEmpty {
                lines.append(
                    "     env: "
                        + stage.env.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
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
        if let rollout {
            lines.append("")
            lines.append("deploy: \(rollout.service) on the \(rollout.runtime) runtime")
            lines += webhookLines(.confirmRollout, at: "before the deploy")
            lines.append(
                "  live: "
                    + (rollout.live.map {
                        "\($0.color) (release \($0.releaseID), model \($0.modelSHA256.prefix(12))), checked against nginx and the runtime"
                    }
                        ?? "nothing (first release)") + "; the release goes to: \(rollout.target)")
            lines.append("  model: \(rollout.model)")
            lines.append("  health: GET \(rollout.health.path) must answer 200 within \(rollout.health.timeout)")
            for container in rollout.containers {
                lines.append("  container \(container.name): image \(container.image), network \(container.network)")
                lines.append("    command: \(shellQuoted(container.command))")
                for bind in container.binds { lines.append("    bind: \(bind)") }
                let labels = container.labels.filter { !$0.key.hasSuffix("config-hash") }.sorted { $0.key < $1.key }
                lines.append("    labels: " + labels.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
            }
            if let traffic {
                lines.append("")
                lines.append(
                    "traffic: nginx on \(traffic.listen) (\(traffic.nginxConfig)), \(traffic.mode.rawValue) split")
                if rollout.live == nil {
                    lines.append(
                        "  nothing is live yet: the release takes all traffic in one step once healthy (steps \(traffic.steps) apply from the next release)"
                    )
                } else if rollout.steps.count == 1 && traffic.steps.count > 1 {
                    lines.append("  --no-staged-shift: all traffic moves in one step once healthy")
                }
                if let interleave = traffic.interleave, rollout.live != nil,
                    rollout.steps.contains(where: { $0.newWeight < 100 })
                {
                    lines.append(
                        "  interleaving: \(interleave.share) % of users (sampled by the release id) get both colours' lists merged by team draft at every step "
                            + "below 100 %; their conversions within \(interleave.window) credit the colour that placed the movie; they stay out of the A/B metrics"
                            + (rollout.steps.first?.newWeight == 0
                                ? "; step 1 at 0 % is interleaving alone (judged on the interleaving metrics)" : ""))
                }
            }
            let live = rollout.live?.color ?? "none"
            lines += webhookLines(.preRollout, at: "before any traffic")
            if let shadow = rollout.shadow {
                lines += Self.describe(
                    shadow, target: rollout.target, live: live, automaticRollback: rollout.automaticRollback)
            }
            for (index, step) in rollout.steps.enumerated() {
                if index > 0 { lines += webhookLines(.confirmTrafficIncrease, at: "before step \(step.step)") }
                lines.append(
                    "  step \(step.step): \(rollout.target) \(step.newWeight)% / \(live) \(step.liveWeight)%, hold \(rollout.hold)"
                )
                lines += webhookLines(.rollback, at: "during the hold", indent: "    ")
                for (gate, query) in step.queries.sorted(by: { $0.key < $1.key }) {
                    lines.append("    query \(gate): \(query)")
                }
                for (power, extended) in zip(step.power, step.powerAtMaxWait) {
                    func text(_ value: Double) -> String {
                        power.absolute
                            ? formatNumber((value * 10000).rounded() / 10000)
                            : "\(formatNumber((value * 1000).rounded() / 10)) %"
                    }
                    let verdict =
                        power.sufficient
                        ? "can decide within the hold"
                        : extended.sufficient
                            ? "cannot within the hold; the step extends up to maxWait, where it can (\(text(extended.detectable)))"
                            : "CANNOT even at maxWait (\(text(extended.detectable))): the step will end inconclusive unless the effect is larger"
                    let needs =
                        extended.sufficient
                        ? ""
                        : extended.neededNew.map {
                            "; needs ~\(formatNumber($0)) \(power.unit ?? "trials")"
                                + (extended.neededSeconds.map { " (\(formatNumber(($0 / 6).rounded(.up) / 10)) min)" }
                                    ?? "")
                        } ?? ""
                    lines.append(
                        "    judge \(power.metric): ~\(formatNumber(power.newTrials.rounded())) \(power.unit ?? "trials") on \(rollout.target); detects a regression of \(text(power.detectable)) (declared \(text(power.declared))): \(verdict)\(needs)"
                    )
                }
            }
            lines += webhookLines(.confirmPromotion, at: "before the promotion")
            lines += webhookLines(.postRollout, at: "once promoted or rolled back")
            if let live = rollout.live {
                lines.append(
                    "  after the last step: "
                        + (rollout.stopOld
                            ? "stop \(live.color) after a drain of \(rollout.drain)" : "keep \(live.color) running"))
            }
            lines.append(
                "rollback: "
                    + (rollout.automaticRollback
                        ? "automatic on any failed gate or health check"
                        : "on a failed gate, hold the step and wait for orchestrate abort or promote")
                    + (rollout.stopNew
                        ? "; traffic back to the live colour first, then \(rollout.target) is stopped"
                        : "; \(rollout.target) keeps running"))
            lines.append(
                "on SIGTERM or SIGINT: traffic back to the live colour, \(rollout.target) stopped, the release recorded as interrupted"
            )
        }
        if let analysis {
            lines.append("")
            lines.append("analysis: Prometheus at \(analysis.prometheus)")
            for gate in analysis.gates {
                let bounds = [gate.min.map { ">= \(formatNumber($0))" }, gate.max.map { "<= \(formatNumber($0))" }]
                    .compactMap { $0 }
                lines.append(
                    "  gate \(gate.name): \(bounds.joined(separator: " and ")), \(gate.count) measurement(s) every \(gate.interval) after \(gate.initialDelay), "
                        + "failureLimit \(gate.failureLimit), consecutiveErrorLimit \(gate.consecutiveErrorLimit), no data: \(gate.onNoData.rawValue)"
                )
            }
            if let judge = analysis.judge {
                lines.append(
                    "  judge against the live colour: \(formatNumber(judge.confidence * 100)) % always-valid intervals, a look every \(judge.interval), "
                        + "steps extend up to \(judge.maxWait) while undecided; score pass ≥ \(formatNumber(judge.pass)), marginal ≥ \(formatNumber(judge.marginal)); "
                        + "inconclusive: \(judge.onInconclusive.rawValue)")
                for metric in judge.metrics {
                    let effect =
                        metric.absolute
                        ? "\(formatNumber(metric.effect)) absolute" : "\(formatNumber(metric.effect * 100)) % of live"
                    let kind: String =
                        switch metric.kind {
                        case .proportion(let successes, let trials): "\(successes) / \(trials)"
                        case .histogram(let buckets, let quantiles):
                            "\(buckets) above live's \(quantiles.map { "p\(formatNumber($0 * 100))" }.joined(separator: ", "))"
                        case .interleaving: "interleaved users preferring the new colour, against 1/2 (sign test)"
                        }
                    lines.append(
                        "    \(metric.name)\(metric.critical ? " (critical)" : ""): \(kind); bad: \(metric.bad.rawValue) by more than \(effect); weight \(formatNumber(metric.weight)), no data: \(metric.onNoData.rawValue)"
                    )
                }
                if judge.expectedRate == nil && judge.rateQuery == nil {
                    lines.append(
                        "    (declare judge.rateQuery or judge.expectedRate, requests per second, to see what each step can detect)"
                    )
                }
            }
        }
        if let observers {
            lines.append("")
            for notification in observers.notifications {
                lines.append(
                    "notify \(notification.name) (\(notification.format.rawValue), URL from the pipeline, not shown) on \(notification.events.map(\.rawValue).joined(separator: ", "))"
                        + "; \(observers.timeout.map { "\($0)" } ?? "-") per attempt, \(observers.retries ?? 0) retries; never delays the rollout"
                )
            }
            if let pushgateway = observers.pushgateway {
                lines.append(
                    "metrics: the controller's state pushed to the Pushgateway at \(pushgateway) at every change; a failed push never fails the rollout"
                )
            }
        }
        if let hooks = rollout?.hooks {
            let hookLines = [
                ("pre-rollout", hooks.preRollout), ("during each step", hooks.duringStep),
                ("post-rollout", hooks.postRollout), ("on rollback", hooks.onRollback),
            ]
            .flatMap { label, commands in commands.map { "  \(label): \(shellQuoted($0))" } }
            if !hookLines.isEmpty {
                lines.append("")
                lines.append("hooks:")
                lines.append(contentsOf: hookLines)
            }
        }
        return lines.joined(separator: "\n")
    }
}

extension RunPlan {
    /// The webhook gates of `kind`, each a line at the point where it acts.
    func webhookLines(_ kind: WebhookGate.Kind, at point: String, indent: String = "  ") -> [String] {
        (webhooks ?? []).filter { $0.kind == kind }.map { "\(indent)\(point): \($0.line)" }
    }
}

/// An argument vector written the way a person would type it, for display only: it is never run
/// through a shell.
package func shellQuoted(_ argv: [String]) -> String {
    argv.map { word in
        word.isEmpty || word.contains(where: { " \t\n'\"$`\\|&;<>()*?[]{}#~".contains($0) })
            ? "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" : word
    }.joined(separator: " ")
}

extension RunPlan.Rollout {
    /// Records written before the plan carried the colours, gates, judge, interleaving and files stay
    /// readable.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        runtime = try container.decode(String.self, forKey: .runtime)
        service = try container.decode(String.self, forKey: .service)
        model = try container.decode(String.self, forKey: .model)
        live = try container.decodeIfPresent(LiveRelease.self, forKey: .live)
        target = try container.decode(String.self, forKey: .target)
        health = try container.decode(HealthCheckSpec.self, forKey: .health)
        steps = try container.decode([RunPlan.PlannedStep].self, forKey: .steps)
        mode = try container.decodeIfPresent(TrafficSpec.Mode.self, forKey: .mode)
        hold = try container.decode(PipelineDuration.self, forKey: .hold)
        stopOld = try container.decode(Bool.self, forKey: .stopOld)
        drain = try container.decode(PipelineDuration.self, forKey: .drain)
        automaticRollback = try container.decode(Bool.self, forKey: .automaticRollback)
        stopNew = try container.decode(Bool.self, forKey: .stopNew)
        hooks = try container.decode(HooksSpec.self, forKey: .hooks)
        containers = try container.decode([RunPlan.PlannedContainer].self, forKey: .containers)
        colors = try container.decodeIfPresent([String].self, forKey: .colors) ?? []
        prometheus = try container.decodeIfPresent(String.self, forKey: .prometheus)
        gates = try container.decodeIfPresent([PromQLGate].self, forKey: .gates) ?? []
        judge = try container.decodeIfPresent(JudgeSpec.self, forKey: .judge)
        interleave = try container.decodeIfPresent(InterleaveSpec.self, forKey: .interleave)
        shadow = try container.decodeIfPresent(ShadowSpec.self, forKey: .shadow)
        files = try container.decodeIfPresent(Files.self, forKey: .files) ?? Files(workingDirectory: "", logs: "")
    }
}

extension RunPlan {
    /// The shadow stage as `--dry-run` shows it.
    static func describe(_ shadow: ShadowSpec, target: String, live: String, automaticRollback: Bool) -> [String] {
        let ending =
            shadow.requests.map { "ends after \($0) comparisons (fails with fewer within \(shadow.duration))" }
            ?? "runs \(shadow.duration) (fails without a comparison)"
        var lines = [
            "  shadow stage (before step 1; no user is answered by \(target)): \(shadow.share) % of the live /recommend requests "
                + "are also sent to \(target) after \(live) answered; the two lists are compared in nginx; \(ending)"
        ]
        let gates = shadow.gates
        if let value = gates.rboMin {
            lines.append("    gate rbo: mean rank-biased overlap (p = 0.9) >= \(formatNumber(value))")
        }
        if let value = gates.overlapMin { lines.append("    gate overlap: mean overlap@k >= \(formatNumber(value))") }
        if let value = gates.coverageMin {
            lines.append(
                "    gate coverage: distinct movies \(target) recommends / \(live)'s, over the same requests >= \(formatNumber(value))"
            )
        }
        if let value = gates.popularityMax {
            lines.append(
                "    gate popularity: share of \(target)'s recommendations on its 10 most recommended movies / \(live)'s <= \(formatNumber(value))"
            )
        }
        if let value = gates.p95LatencyRatioMax {
            lines.append("    gate p95_latency_ratio: p95 latency of \(target) / \(live) <= \(formatNumber(value))")
        }
        if let value = gates.errorsMax {
            lines.append("    gate errors: share of shadow requests failed <= \(formatNumber(value))")
        }
        lines.append(
            automaticRollback
                ? "    a failed gate rolls back before step 1: \(target) is stopped, no user ever saw it"
                : "    a failed gate holds before step 1 (rollback.automatic is false; \(target) at 0 %): "
                    + "orchestrate abort rolls back, promote goes on to step 1")
        return lines
    }
}
