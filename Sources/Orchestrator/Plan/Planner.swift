import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import RecEngineContract
import StrictYAML

/// Computes the plan of a run, once, from the pipeline, the options, the history and the live
/// release. Reads files and the history; writes nothing and starts no process.
struct Planner {
    var pipeline: Pipeline
    var options: RunOptions
    /// The history's valid records, oldest first.
    var records: [ReleaseRecord]
    var runtime: (any DeploymentRuntime)?
    /// The requests per second Prometheus measured (`judge.rateQuery`), for the power figures.
    var measuredRate: Double? = nil

    func plan(releaseID: String, live: LiveRelease?, recovery: RunPlan.PlannedRecovery?) throws -> RunPlan {
        try checkSkips()
        var plan = RunPlan(
            releaseID: releaseID, pipeline: .init(name: pipeline.name, path: pipeline.file, sha256: pipeline.sha256),
            history: pipeline.history,
            overrides: options.overrides, recovery: recovery, stages: try stages(),
            rollout: try rollout(releaseID: releaseID, live: live),
            traffic: pipeline.traffic, analysis: pipeline.analysis, observers: observers,
            docker: pipeline.deploy?.docker)
        if !pipeline.webhooks.isEmpty { plan.webhooks = pipeline.webhooks.map(RunPlan.PlannedWebhook.init) }
        return plan
    }

    /// What the plan shows of `notify:` and `metrics:` (nil without either).
    var observers: PlannedObservers? {
        guard pipeline.notify != nil || pipeline.metrics != nil else { return nil }
        return PlannedObservers(
            notifications: pipeline.notify?.webhooks.map { .init(name: $0.name, format: $0.format, events: $0.events) }
                ?? [],
            timeout: pipeline.notify?.timeout, retries: pipeline.notify?.retries,
            pushgateway: pipeline.metrics?.pushgateway)
    }

    func checkSkips() throws {
        let names = pipeline.stages.map(\.name)
        for skip in options.skip where !names.contains(skip) {
            throw OrchestratorError(
                .invalidInput, "--skip \(skip): the pipeline has no stage named \"\(skip)\"",
                hint: "its stages are \(names.joined(separator: ", "))")
        }
    }

    // MARK: Stages

    func stages() throws -> [RunPlan.PlannedStage] {
        var writtenBy: [String: String] = [:]  // output path -> the stage that runs first and writes it
        var planned: [RunPlan.PlannedStage] = []
        for stage in pipeline.stages {
            var entry = RunPlan.PlannedStage(
                name: stage.name, uses: stage.uses, parameters: stage.parameters, command: command(for: stage),
                image: stage.image, env: stage.env,
                inputs: stage.inputs, outputs: stage.outputs, timeout: stage.timeout, retries: stage.retries,
                gate: resolvedGate(of: stage), action: .run, reason: "",
                cachedFrom: nil, inputDigests: [], metricsFile: stage.metricsFile)
            if options.skip.contains(stage.name) {
                entry.action = .skipped
                entry.reason = "--skip \(stage.name)"
            } else if let upstream = stage.inputs.compactMap({ input in writtenBy[input].map { (input, $0) } }).first {
                entry.inputDigests = try stage.inputs.filter { writtenBy[$0] == nil }.map(ArtifactDigest.of)
                let reusable =
                    (try? cacheDecision(for: entry, inputs: entry.inputDigests, checkInputs: false))?.cachedFrom != nil
                entry.action = reusable ? .runOrReuse : .run
                entry.reason =
                    "its input \(upstream.0) is written by \(upstream.1), which runs first"
                    + (reusable ? "; reused if it comes out unchanged" : "")
            } else {
                let inputs = try stage.inputs.map(ArtifactDigest.of)
                entry.inputDigests = inputs
                let decision = try cacheDecision(for: entry, inputs: inputs)
                entry.action = decision.cachedFrom == nil ? .run : .cached
                entry.reason = decision.reason
                entry.cachedFrom = decision.cachedFrom
            }
            if entry.action == .run || entry.action == .runOrReuse {
                for output in stage.outputs where writtenBy[output] == nil { writtenBy[output] = stage.name }
            }
            planned.append(entry)
        }
        return planned
    }

    /// A release whose values a gate relative to history reads: a release run (not a rollback, a
    /// repair or a policy change) that succeeded, not a dry run.
    static func isPromotedRelease(_ record: ReleaseRecord) -> Bool {
        record.outcome == .succeeded && !record.dryRun && (record.action ?? .release) == .release
    }

    /// The stage's gate with each bound relative to history turned into `min` or `max` from the
    /// last promoted releases' values of the metric (the stricter of it and a declared bound); a
    /// metric no promoted release recorded yet keeps only its declared bounds.
    func resolvedGate(of stage: Stage) -> [MetricThreshold] {
        stage.gate.map { threshold in
            guard let history = threshold.history else { return threshold }
            var found: [(release: String, value: Double)] = []
            for record in records.reversed() where Self.isPromotedRelease(record) && found.count < history.last {
                guard
                    let entry = record.stages.first(where: {
                        $0.name == stage.name && ($0.status == .succeeded || $0.status == .cached)
                    }), let value = entry.metrics[threshold.metric], value.isFinite
                else { continue }
                found.append((record.releaseID, value))
            }
            guard let reference = HistoryBound.quantile(found.map(\.value), history.quantile) else { return threshold }
            var resolved = threshold
            resolved.reference = HistoryReference(
                releases: found.map(\.release), values: found.map(\.value), value: reference)
            let bound = history.bound(from: reference)
            if let low = bound.min { resolved.min = Swift.max(threshold.min ?? low, low) }
            if let high = bound.max { resolved.max = Swift.min(threshold.max ?? high, high) }
            return resolved
        }
    }

    /// A PromQL gate with its bound relative to history turned into `min` or `max`: each of the
    /// last promoted releases that measured the gate counts with the median of its measured values
    /// (every step), and the gate's quantile of those is the reference.
    func resolvedGate(_ gate: PromQLGate) -> PromQLGate {
        guard let history = gate.history else { return gate }
        var found: [(release: String, value: Double)] = []
        for record in records.reversed() where Self.isPromotedRelease(record) && found.count < history.last {
            let values = (record.rollout?.steps ?? []).flatMap(\.measurements).filter { $0.gate == gate.name }
                .compactMap(\.value).filter(\.isFinite)
            guard let median = HistoryBound.quantile(values, 0.5) else { continue }
            found.append((record.releaseID, median))
        }
        guard let reference = HistoryBound.quantile(found.map(\.value), history.quantile) else { return gate }
        var resolved = gate
        resolved.reference = HistoryReference(
            releases: found.map(\.release), values: found.map(\.value), value: reference)
        let bound = history.bound(from: reference)
        if let low = bound.min { resolved.min = Swift.max(gate.min ?? low, low) }
        if let high = bound.max { resolved.max = Swift.min(gate.max ?? high, high) }
        return resolved
    }

    /// What runs for a stage: its argument vector, or the `recengine` command of a built-in.
    func command(for stage: Stage) -> [String] {
        switch stage.action {
        case .command(let argv):
            return argv
        case .builtin(let parameters):
            let baseline = parameters.kind == .ingest ? Self.baselineShares(for: stage, in: records) : nil
            return parameters.command(recengine: options.recengineBinary, baselineShares: baseline)
        }
    }

    /// Whether a stage can be reused: same fingerprint (action, parameters, environment, input
    /// digests) as in the last successful run, and every output it recorded still present with the
    /// recorded digest.
    ///
    /// - Parameter checkInputs: false when some inputs are not known yet (an earlier stage writes
    ///   them): then only whether the stage could be reused at all is decided.
    func cacheDecision(
        for stage: RunPlan.PlannedStage, inputs: [ArtifactDigest], checkInputs: Bool = true
    ) throws -> (cachedFrom: String?, reason: String) {
        try Self.cacheDecision(
            for: stage, inputs: inputs, records: records, force: options.force, checkInputs: checkInputs)
    }

    /// The same decision, for a stage planned `run_or_reuse` once the stage before it has run and
    /// its inputs are known: the planner's rule, applied by the executor to what it now knows.
    static func cacheDecision(
        for stage: RunPlan.PlannedStage, inputs: [ArtifactDigest], records: [ReleaseRecord], force: Bool,
        checkInputs: Bool = true
    ) throws -> (cachedFrom: String?, reason: String) {
        if let missing = inputs.first(where: { $0.sha256 == nil }) {
            return (nil, "its input \(missing.path) does not exist yet")
        }
        if stage.parameters?.alwaysRuns == true {
            return (nil, "a movie log ingest always reads what is new")
        }
        if stage.builtin == nil, stage.outputs.isEmpty {
            return (nil, "a command without declared outputs always runs")
        }
        if force { return (nil, "--force") }
        guard let (record, previous) = lastSuccess(of: stage.name, in: records) else {
            return (nil, "no earlier successful run")
        }
        guard !checkInputs || previous.fingerprint == fingerprint(of: stage, inputs: inputs) else {
            return (nil, "its inputs or parameters changed since \(record.releaseID)")
        }
        for output in previous.outputs {
            let now = try ArtifactDigest.of(output.path)
            if now.sha256 == nil { return (nil, "its output \(output.path) is gone") }
            if now.sha256 != output.sha256 {
                return (nil, "its output \(output.path) changed since \(record.releaseID)")
            }
        }
        return (record.releaseID, "inputs and parameters unchanged since \(record.releaseID), outputs intact")
    }

    /// The newest succeeded run of a stage (run or reused) in a succeeded release.
    static func lastSuccess(
        of stage: String, in records: [ReleaseRecord]
    ) -> (ReleaseRecord, ReleaseRecord.StageRecord)? {
        for record in records.reversed() where record.outcome == .succeeded && !record.dryRun {
            if let entry = record.stages.first(where: {
                $0.name == stage && ($0.status == .succeeded || $0.status == .cached)
            }) {
                return (record, entry)
            }
        }
        return nil
    }

    static func fingerprint(of stage: RunPlan.PlannedStage, inputs: [ArtifactDigest]) -> String {
        struct Fingerprint: Encodable {
            var uses: String?
            var argv: [String]?
            var image: String?
            /// Written as the object of their names and values, as before they were typed.
            var parameters: BuiltinParameters?
            var env: [String: String]
            var inputs: [String: String]
        }
        let value = Fingerprint(
            uses: stage.uses, argv: stage.argv, image: stage.image, parameters: stage.parameters, env: stage.env,
            inputs: Dictionary(inputs.map { ($0.path, $0.sha256 ?? "") }, uniquingKeysWith: { first, _ in first }))
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return sha256Hex((try? encoder.encode(value)) ?? Data())
    }

    /// The rating shares the ingest stage reported in the newest succeeded release, nil when
    /// there is none.
    static func baselineShares(for stage: Stage, in records: [ReleaseRecord]) -> [Double]? {
        for record in records.reversed() where record.outcome == .succeeded && !record.dryRun {
            guard let entry = record.stages.first(where: { $0.name == stage.name }) else { continue }
            let shares = (1...5).compactMap { entry.metrics["rating_share_\($0)"] }
            if shares.count == 5 { return shares }
        }
        return nil
    }

    // MARK: Rollout

    func rollout(releaseID: String, live: LiveRelease?) throws -> RunPlan.Rollout? {
        guard let deploy = pipeline.deploy, let runtime else { return nil }
        let target = deploy.colors.first { $0 != live?.color } ?? deploy.colors[0]
        let traffic = pipeline.traffic
        // Nothing live: the first release takes all traffic in one step once healthy.
        let weights = live == nil || options.noStagedShift || traffic == nil ? [100] : traffic?.steps ?? [100]
        let steps = weights.enumerated().map { index, weight in
            var queries: [String: String] = [:]
            for gate in pipeline.analysis?.gates ?? [] where live != nil || !gate.query.contains("{{live}}") {
                queries[gate.name] = gate.resolvedQuery(color: target, live: live?.color ?? "none", release: releaseID)
            }
            var step = RunPlan.PlannedStep(
                step: index + 1, newWeight: weight, liveWeight: 100 - weight, queries: queries)
            if let judge = pipeline.analysis?.judge, let rate = measuredRate ?? judge.expectedRate, live != nil,
                weight < 100
            {
                let hold = (traffic?.wait.duration ?? .zero).seconds
                step.power = JudgeRules(spec: judge).power(rate: rate, weight: weight, seconds: hold)
                step.powerAtMaxWait = JudgeRules(spec: judge).power(
                    rate: rate, weight: weight, seconds: max(hold, judge.maxWait.duration.seconds))
            }
            return step
        }
        let folder = URL(fileURLWithPath: pipeline.file).deletingLastPathComponent().path
        let logs = URL(fileURLWithPath: pipeline.history).deletingLastPathComponent().appendingPathComponent("logs")
            .path
        return RunPlan.Rollout(
            runtime: runtime.name, service: deploy.service, model: deploy.model ?? "", live: live, target: target,
            health: deploy.health, steps: steps,
            mode: traffic?.mode, hold: traffic?.wait ?? .seconds(0), stopOld: traffic?.stopOld ?? false,
            drain: traffic?.drain ?? .seconds(0),
            automaticRollback: pipeline.rollback.automatic, stopNew: pipeline.rollback.stopNew, hooks: pipeline.hooks,
            containers: try runtime.plannedContainers(target: target, loadBalancer: traffic != nil),
            colors: deploy.colors,
            prometheus: pipeline.analysis?.prometheus, gates: (pipeline.analysis?.gates ?? []).map(resolvedGate),
            // The judge compares the new colour with the live one: without one, there is nothing to judge.
            judge: live == nil ? nil : pipeline.analysis?.judge, interleave: traffic?.interleave,
            // The shadow compares the new colour's answers with the live one's: without one, nothing to compare.
            shadow: live == nil ? nil : traffic?.shadow,
            files: .init(workingDirectory: folder, logs: logs))
    }
}
