import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import PipelineSchema
public import Provenance
import RecEngineContract
import StrictYAML
import Traffic

extension ReleaseController {
    /// The result of `run`: the plan, and the record when one was written.
    public struct RunResult: Sendable {
        public var plan: RunPlan
        public var record: ReleaseRecord?
        /// The signal that interrupted the run, if one did.
        public var interruptedBy: Int32?

        /// The documented exit code for this result.
        public var exitCode: Int32 { Self.exitCode(record: record, interruptedBy: interruptedBy) }

        /// The documented exit code of a run that ended with `record`: a release rolled back as
        /// an invalid experiment (its last step's judge found a sample ratio mismatch) exits 6.
        static func exitCode(record: ReleaseRecord?, interruptedBy: Int32?) -> Int32 {
            if let interruptedBy { return ExitStatus.interrupted(by: interruptedBy) }
            if record?.refusedByPolicy != nil { return ExitStatus.policyRefused }
            switch record?.outcome {
            case .rolledBack? where record?.rollout?.steps.last?.judgeDecision == .invalid:
                return ExitStatus.invalidExperiment
            case .failed?, .rolledBack?, .interrupted?: return ExitStatus.failed
            default: return ExitStatus.success
            }
        }
    }

    /// The plan `run` would carry out now (the body of `--dry-run`): reads the state, the history,
    /// nginx and the runtime; changes nothing.
    ///
    /// - Throws: what `run` would stop on before any change: an unreadable state file, a live
    ///   release that is not what nginx and the runtime serve, an unknown `--skip`.
    public func plan(releaseID: String = RunIdentity.releaseID()) async throws -> RunPlan {
        try history.checkIsHistory()
        let deployment = try deployment()
        let recovery = try await recovery(deployment).plan().map(RunPlan.PlannedRecovery.init)
        let live = deployment == nil ? nil : try store.live()
        if recovery == nil, let deployment {
            try await checkServing(live: live, deployment)
        }
        var plan = try Planner(
            pipeline: pipeline, options: options,
            records: try PlanningRecords.read(
                for: pipeline.stages, gates: pipeline.analysis?.gates ?? [], from: history),
            runtime: deployment?.runtime,
            measuredRate: await measuredRate()
        ).plan(releaseID: releaseID, live: live, recovery: recovery)
        plan.policy = try plannedPolicy(now: Date())
        return plan
    }

    /// The request rate Prometheus measures now (`judge.rateQuery`), nil when it cannot say.
    func measuredRate() async -> Double? {
        guard let analysis = pipeline.analysis, let query = analysis.judge?.rateQuery,
            case .value(let rate)? = try? await PrometheusClient(baseURL: analysis.prometheus).query(query), rate > 0
        else { return nil }
        return rate
    }

    /// Stops with the first disagreement between the recorded live release and what serves.
    func checkServing(
        live: LiveRelease?, _ deployment: (deploy: DeploySpec, runtime: any DeploymentRuntime, nginx: NginxController?)
    ) async throws {
        let serving = await ServingState.observe(
            colors: deployment.deploy.colors, runtime: deployment.runtime, nginx: deployment.nginx,
            healthPath: deployment.deploy.health.path)
        if let problem = serving.problems(live: live, trafficConfigured: deployment.nginx != nil).first {
            throw problem.error
        }
    }

    /// Runs the pipeline (with `dryRun`, only plans it): converges an interrupted run first,
    /// checks what the run needs, plans once, runs the stages, then the rollout, and appends the
    /// record. `interruption` (SIGTERM/SIGINT) makes the run roll back and record the release as
    /// interrupted.
    ///
    /// - Throws: `OrchestratorError`: `.locked` (another run), `.invalidInput` (an unknown
    ///   `--skip`), `.unreachable` or `.inconsistentState`/`.unreadableState` before any change (a
    ///   record of the refused run is appended first). A failing stage or gate is not thrown but
    ///   recorded.
    public func run(interruption: Interruption = Interruption()) async throws -> RunResult {
        let releaseID = RunIdentity.releaseID()
        if options.dryRun && !options.recordDryRun {
            return RunResult(plan: try await plan(releaseID: releaseID), record: nil)
        }
        let lock = try lock(releaseID: releaseID)
        defer { lock.release() }
        if options.dryRun {
            let plan = try await plan(releaseID: releaseID)
            var record = await newRecord(releaseID: releaseID, action: .release)
            record.stages = plan.stages.map { planned in
                .init(
                    status: .planned, name: planned.name, uses: planned.uses, argv: planned.command,
                    parameters: planned.parameters?.values, attempts: 0,
                    durationSeconds: 0, inputs: [], outputs: [], metrics: [:], gates: [], reason: planned.reason)
            }
            record.plan = plan
            record.outcome = .planned
            record.finishedOn = Date()
            return RunResult(plan: plan, record: try history.append(pipeline.redaction.redacted(record)))
        }

        let deployment = try deployment()
        return try await observing { observers in
            try await release(
                releaseID: releaseID, deployment: deployment, interruption: interruption, observers: observers)
        }
    }

    /// The run proper, under the lock, told to `observers` as it goes.
    private func release(
        releaseID: String, deployment: (deploy: DeploySpec, runtime: any DeploymentRuntime, nginx: NginxController?)?,
        interruption: Interruption,
        observers: RunObservers
    ) async throws -> RunResult {
        if let recovered = try await recovery(deployment).converge() {
            observers.observe(RunEvent(releaseID: recovered.releaseID, at: Date(), kind: .recovered(recovered)))
        }
        progress("release \(releaseID) of \(pipeline.name) (\(pipeline.file))")
        var record = await newRecord(releaseID: releaseID, action: .release)
        // The pin and the bad marks, read once: under the lock no policy change is appended.
        var policyState = ReleasePolicyState()

        // Before any change: what the run needs is there, and the recorded state is what serves.
        do {
            try Planner(pipeline: pipeline, options: options, records: [], runtime: nil).checkSkips()
            policyState = try history.policyState()
            // A pin in force, or outside the release windows: refused before the stages, recorded.
            if deployment != nil, let refusal = Self.refusal(policy: pipeline.policy, state: policyState, now: Date()) {
                throw refusal
            }
            if let deployment {
                try await deployment.runtime.preflight(
                    colors: deployment.deploy.colors, loadBalancer: deployment.nginx != nil)
                if let nginx = deployment.nginx, nginx.config.modules == nil {
                    let missing = NginxModules.missing
                    throw OrchestratorError(.unreachable, missing.message + "; nothing was changed", hint: missing.hint)
                }
                if let analysis = pipeline.analysis, !analysis.gates.isEmpty,
                    !(await PrometheusClient(baseURL: analysis.prometheus).isReady())
                {
                    throw OrchestratorError(
                        .unreachable, "Prometheus at \(analysis.prometheus) is unreachable; nothing was changed",
                        hint: "start it, or point analysis.prometheus (PROMETHEUS_URL) at a running one")
                }
            }
            if let error = await checkLogSources() { throw error }
            if let deployment { try await checkServing(live: try store.live(), deployment) }
        } catch let error as OrchestratorError where error.code != .invalidInput && error.code != .locked {
            record.stages = pipeline.stages.map {
                StageExecutor.emptyRecord($0, status: .notRun, reason: "the run was refused before any change")
            }
            record.outcome = .failed
            record.failure = error.message
            if error.code == .policyRefused { record.refusedByPolicy = error.message }
            record.finishedOn = Date()
            try history.append(pipeline.redaction.redacted(record))
            throw error
        }

        let records = try PlanningRecords.read(
            for: pipeline.stages, gates: pipeline.analysis?.gates ?? [], from: history)
        let live = deployment == nil ? nil : try store.live()
        var plan = try Planner(
            pipeline: pipeline, options: options, records: records, runtime: deployment?.runtime,
            measuredRate: await measuredRate()
        )
        .plan(releaseID: releaseID, live: live, recovery: nil)
        plan.policy = try plannedPolicy(now: Date(), state: policyState)
        record.plan = plan
        let journal = RunJournal(
            store: store,
            state: RunState(
                releaseID: releaseID, pid: getpid(), startedOn: record.startedOn, phase: .stages, live: live),
            record: record,
            redaction: pipeline.redaction, observers: observers)
        try await journal.begin()
        await journal.announce(.started(live: live?.color))

        let (stages, stageFailure) = await StageExecutor(
            plan: plan, records: records, journal: journal, interruption: interruption, progress: progress
        ).run()
        try await journal.updateRecord { $0.stages = stages }
        var outcome: ReleaseOutcome = stageFailure == nil ? .succeeded : .failed
        var failure = stageFailure
        if let signal = interruption.signal,
            stages.contains(where: { $0.status == .interrupted || $0.status == .notRun })
        {
            outcome = .interrupted
            failure =
                "interrupted by \(signal == SIGINT ? "SIGINT" : "SIGTERM") during the stages; nothing was deployed"
        }
        if outcome == .succeeded, let modelPath = pipeline.deploy?.model {
            let digest = try? ArtifactDigest.of(modelPath + "/" + ModelFiles.tensors)
            let manifest = try? ModelIdentity.read(modelDirectory: modelPath)
            try await journal.updateRecord {
                $0.model = .init(path: modelPath, sha256: digest?.sha256, version: manifest?.displayVersion)
            }
        }
        // A model marked bad is never deployed again, however it was trained.
        if outcome == .succeeded, deployment != nil, let digest = await journal.record.model?.sha256,
            let refusal = Self.badModelRefusal(
                digest, state: policyState, action: "it was not deployed; nothing was changed")
        {
            outcome = .failed
            failure = refusal.message
            try await journal.updateRecord { $0.refusedByPolicy = refusal.message }
        }
        if outcome == .succeeded, let deployment, let rollout = plan.rollout {
            let result = try await RolloutExecutor(
                plan: rollout, releaseID: releaseID, runtime: deployment.runtime, nginx: deployment.nginx, store: store,
                journal: journal,
                interruption: interruption, progress: { [events] in events(.rollout($0)) },
                webhooks: pipeline.webhooks, pipelineName: pipeline.name
            ).run()
            outcome = result.outcome
            failure = result.failure
        }
        var finished = await journal.record
        finished.outcome = outcome
        finished.failure = failure
        finished.finishedOn = Date()
        if outcome != .succeeded { finished.deployment = nil }
        let written: ReleaseRecord
        do {
            written = try history.append(pipeline.redaction.redacted(finished))
        } catch let error as OrchestratorError where error.code == .fileSystem || error.code == .diskFull {
            // Traffic and colours are where the outcome says; only the record is missing. The
            // state stays for `recover`, with the finished record when the disk takes it.
            try? store.savePendingRecord(pipeline.redaction.redacted(finished))
            throw Recovery.unrecorded(
                finished, done: Recovery.lastActions(of: finished), because: error, pipeline: pipeline, store: store)
        }
        try store.finishRun()
        writeReport(written)
        await journal.announce(.finished(written))
        return RunResult(plan: plan, record: written, interruptedBy: interruption.signal)
    }

    /// The Kafka brokers of the ingest stages that will run, checked before anything changes
    /// (through `recengine check-source`: the controller does not link the ingest code).
    func checkLogSources() async -> OrchestratorError? {
        for stage in pipeline.stages where !options.skip.contains(stage.name) {
            guard case .builtin(.ingest(let ingest)) = stage.action, ingest.format == .movielog,
                case .kafka? = try? MovieLogSource(parsing: ingest.source)
            else { continue }
            // A check that cannot be made (no recengine, an answer that is not one) is left to the
            // stage itself, which reports what it finds.
            guard let check = await LogSourceCheck.run(source: ingest.source, recengine: options.recengineBinary),
                !check.reachable
            else { continue }
            return OrchestratorError(
                .unreachable, "stage \(stage.name): \(check.error ?? "the source is unreachable"); nothing was changed",
                hint: check.hint)
        }
        return nil
    }
}
