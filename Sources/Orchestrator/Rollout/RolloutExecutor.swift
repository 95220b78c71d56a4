import Foundation
import StrictYAML
import Synchronization
import Traffic
import OrchestratorSupport
import PipelineSchema

/// Carries out the rollout of a plan: deploy the target colour, check its health, move traffic
/// step by step while the gates hold, promote (the commit point: `current.json`), drain and stop
/// the old colour. On a failed gate, an `orchestrate abort` or an interruption (SIGTERM/SIGINT),
/// traffic goes back to the live colour first, then the target is stopped. Every change is
/// journalled before it is made, so that a controller killed at any point can be converged.
struct RolloutExecutor {
    var pipeline: Pipeline
    var plan: RunPlan.Rollout
    var releaseID: String
    var runtime: any DeploymentRuntime
    var nginx: NginxController?
    var prometheus: PrometheusClient?
    var store: StateStore
    var journal: RunJournal
    var interruption: Interruption
    var progress: @Sendable (String) -> Void

    var logsFolder: String { URL(fileURLWithPath: pipeline.history).deletingLastPathComponent().appendingPathComponent("logs").path }
    var workingDirectory: String { URL(fileURLWithPath: pipeline.file).deletingLastPathComponent().path }
    var target: String { plan.target }
    var live: LiveRelease? { plan.live }

    struct Result: Sendable {
        var outcome: ReleaseOutcome
        var failure: String?
    }

    /// Why a wait ended before its time.
    enum Stop: Error, Sendable, Equatable {
        case interrupted(Int32)
        case aborted
    }

    /// What the rollout reached before its commit point.
    enum Advance: Sendable {
        /// It ended without promoting: rolled back, failed, stopped.
        case ended(Result)
        /// `current.json` names the release.
        case promoted(ColorInstance)
    }

    /// Carries out the rollout. Before the commit point, anything that goes wrong (a state file
    /// that cannot be saved on a full disk included) rolls back: traffic back on the live colour
    /// first, which needs no disk write, then the target stopped, then the journal as far as the
    /// disk allows. After it, the release is live: what remains (hooks, the drain, stopping the
    /// old colour) goes forward, as recovery would.
    func run(modelDirectory: String) async throws -> Result {
        let deployed: ColorInstance
        do {
            switch try await advance(modelDirectory: modelDirectory) {
            case .ended(let result): return result
            case .promoted(let instance): deployed = instance
            }
        } catch {
            let saveFailure = await journal.saveFailure
            let reason = saveFailure.map(Self.unsaved) ?? "the rollout failed: \(error)"
            if let signal = interruption.signal {
                return await rollBack(reason: "interrupted by \(signalName(.interrupted(signal))); \(reason)", outcome: .interrupted)
            }
            return await rollBack(reason: reason, outcome: .rolledBack)
        }
        return try await finish(deployed: deployed)
    }

    /// Deploys the target, moves traffic step by step while the gates hold, and promotes.
    func advance(modelDirectory: String) async throws -> Advance {
        if let failure = await journal.saveFailure {
            return .ended(Result(outcome: .failed, failure: "\(Self.unsaved(failure)) during the stages; nothing was deployed"))
        }
        try await journal.update {
            $0.phase = .deploying
            $0.live = live
            $0.target = target
            $0.weight = 0
            $0.stopOld = plan.stopOld
        }
        try await journal.updateRecord {
            $0.rollout = .init(live: live?.color, target: target, mode: plan.mode?.rawValue ?? "none", steps: [], events: [])
        }
        try await journal.event(.plan, "live \(live?.color ?? "none"), releasing to \(target)")
        progress("rollout: live colour \(live.map { "\($0.color) (release \($0.releaseID))" } ?? "none"), releasing to \(target)")

        for hook in plan.hooks.preRollout {
            switch try await guarded({ [self] in await runHook(hook, label: "pre-rollout") }) {
            case .success(let ok):
                try await journal.event(.hook, "pre-rollout \(shellQuoted(hook)): \(ok ? "ok" : "failed")")
                if !ok { return .ended(Result(outcome: .failed, failure: "pre-rollout hook \(shellQuoted(hook)) failed; nothing was changed")) }
            case .failure(let stop):
                try? await journal.event(stop == .aborted ? .abort : .interrupt, "\(describe(stop)) during the pre-rollout hook \(shellQuoted(hook)); nothing was changed")
                return .ended(
                    stop == .aborted
                        ? Result(outcome: .rolledBack, failure: "aborted by orchestrate abort before the deploy; nothing was changed")
                        : Result(outcome: .interrupted, failure: "interrupted by \(signalName(stop)) before the deploy; nothing was changed"))
            }
        }

        // Deploy and check health: no traffic moves before the target answers 200.
        progress("deploy: starting \(target) with \(modelDirectory)")
        try await journal.event(.deploy, "starting \(target)")
        let deployed: ColorInstance
        do {
            let outcome = try await guarded { [runtime, plan, target] () async throws -> ColorInstance in
                let instance = try await runtime.deploy(color: target, modelDirectory: modelDirectory, timeout: plan.health.timeout.duration)
                let health = try await runtime.waitHealthy(instance, path: plan.health.path, timeout: plan.health.timeout.duration)
                guard health.healthy else {
                    throw OrchestratorError(
                        .stageFailed,
                        "\(target) did not answer GET \(plan.health.path) with 200 within \(plan.health.timeout) (\(health.detail))"
                            + indented(await runtime.logTail(of: target)))
                }
                return instance
            }
            switch outcome {
            case .success(let instance):
                deployed = instance
            case .failure(let stop):
                return .ended(await stoppedBeforeTraffic(stop, while: "while deploying"))
            }
        } catch {
            progress("deploy: FAILED: \(error)")
            try? await runtime.stop(color: target)
            try? await journal.event(.stop, "\(target) stopped; traffic untouched")
            return .ended(Result(outcome: .failed, failure: "deploy of \(target) failed before any traffic moved: \(error)"))
        }
        try await journal.event(.healthy, "\(target) answers \(plan.health.path) at \(deployed.addresses.joined(separator: ", ")) (model \(deployed.modelVersion))")
        progress("deploy: \(target) is healthy at \(deployed.addresses.joined(separator: ", "))")
        try await journal.updateRecord { $0.deployment = .init(runtime: runtime.name, color: target, modelSHA256: deployed.modelSHA256) }
        try? await writeTargets()

        // Traffic steps, each held and measured.
        var index = 0
        while index < plan.steps.count {
            let step = plan.steps[index]
            try await journal.update {
                $0.phase = .shifting
                $0.weight = step.newWeight
                $0.gates = nil
            }
            // The last moment to honour a stop requested meanwhile: none may be overtaken by a step.
            try await journal.requireSaved()
            if let stop = pendingStop() {
                if index == 0 { return .ended(await stoppedBeforeTraffic(stop, while: "before the first traffic step")) }
                return .ended(await rollBack(stop, at: plan.steps[index - 1].newWeight))
            }
            var record = ReleaseRecord.RolloutRecord.Step(weight: step.newWeight, startedOn: Date(), finishedOn: nil, passed: nil, measurements: [])
            do {
                try await shift(to: deployed, weight: step.newWeight)
            } catch {
                try? await journal.updateRecord { $0.rollout?.steps.append(record) }
                return .ended(await rollBack(reason: "traffic step \(step.newWeight)% failed: \(error)", outcome: .rolledBack))
            }
            try await journal.event(.shift, "\(target) \(step.newWeight)% / \(live?.color ?? "none") \(step.liveWeight)%", at: record.startedOn)
            record.startedOn = Date()
            progress("step \(index + 1)/\(plan.steps.count): \(target) \(step.newWeight)%\(live.map { ", \($0.color) \(step.liveWeight)%" } ?? "")")
            var verdict = await hold(step: step, deployed: deployed)
            record.measurements = verdict.measurements
            record.judge = verdict.judge?.looks
            record.judgeDecision = verdict.judge?.decision
            record.judgeRule = verdict.judge?.rule
            record.passed = verdict.passed
            record.finishedOn = Date()
            try await journal.updateRecord { $0.rollout?.steps.append(record) }
            // A measurement or a hook's entry that could not be saved during the hold.
            try await journal.requireSaved()
            if verdict.passed {
                await journal.announce(.stepPassed(step: index + 1, steps: plan.steps.count, weight: step.newWeight, measurements: verdict.measurements))
            } else if verdict.stop == nil {
                await journal.announce(.gateFailed(weight: step.newWeight, failure: verdict.failure ?? "a gate failed", measurements: verdict.measurements))
            }
            for request in verdict.requests {
                try await journal.event(request == "abort" ? .abort : .promote, "orchestrate \(request) at \(step.newWeight)%")
            }
            // A colour lost is an outage, not a verdict on the model: no operator is waited for.
            if verdict.stop == nil && !verdict.passed && !verdict.colourLost && (!plan.automaticRollback || verdict.holdWhenInconclusive) {
                verdict = try await holdForDecision(step: step, failure: verdict.failure ?? "a gate failed", verdict: verdict)
            }
            if let stop = verdict.stop {
                return .ended(await rollBack(stop, at: step.newWeight))
            }
            if !verdict.passed {
                progress("step \(index + 1): FAILED: \(verdict.failure ?? "")")
                return .ended(await rollBack(reason: verdict.failure ?? "a gate failed", outcome: .rolledBack))
            }
            if verdict.promoteFull && step.newWeight < 100 {
                try await journal.event(.promote, "promote --full: \(target) to 100% now")
                try await journal.update { $0.weight = 100 }
                try await journal.requireSaved()
                if let stop = pendingStop() { return .ended(await rollBack(stop, at: step.newWeight)) }
                do {
                    try await shift(to: deployed, weight: 100)
                } catch {
                    return .ended(await rollBack(reason: "traffic step 100% failed: \(error)", outcome: .rolledBack))
                }
                break
            }
            index += 1
        }

        // Promote: current.json names the release. From here on, recovery converges forward.
        try await journal.requireSaved()
        try store.setLive(LiveRelease(color: target, releaseID: releaseID, modelSHA256: deployed.modelSHA256, modelVersion: deployed.modelVersion))
        return .promoted(deployed)
    }

    /// After the commit point: post-rollout hooks, the drain, the old colour stopped. The release
    /// is live whatever happens to the journal now, so its writes are best effort (the record the
    /// controller appends holds them all).
    func finish(deployed: ColorInstance) async throws -> Result {
        try? await journal.update { $0.phase = .draining }
        try? await journal.event(.promote, "\(target) is live with model \(deployed.modelVersion)")
        progress("promoted: \(target) is live (model \(deployed.modelVersion))")
        await journal.announce(.promoted(color: target, modelVersion: deployed.modelVersion))
        for hook in plan.hooks.postRollout {
            let ok = await runHook(hook, label: "post-rollout")
            try? await journal.event(.hook, "post-rollout \(shellQuoted(hook)): \(ok ? "ok" : "failed (the release stays promoted)")")
        }
        guard let live, plan.stopOld else { return Result(outcome: .succeeded) }
        progress("draining \(live.color) for \(plan.drain), then stopping it (orchestrate abort now returns to it)")
        try? await journal.event(.drain, "\(live.color) drains for \(plan.drain)")
        let drained = try await guarded { [plan] in try await Task.sleep(for: plan.drain.duration) }
        if case .failure(.aborted) = drained {
            return try await abortAfterPromotion(deployed: deployed, previous: live)
        }
        if case .failure(let stop) = drained {
            try? await journal.event(.interrupt, "\(describe(stop)) during the drain: \(live.color) is stopped now")
        }
        try await runtime.stop(color: live.color)
        try? await journal.event(.stop, "\(live.color) stopped after the drain")
        try? await writeTargets()
        return Result(outcome: .succeeded)
    }

    /// Why a rollout stopped when its state could not be saved (the error's first line, without
    /// its hint: the record keeps one line).
    static func unsaved(_ failure: OrchestratorError) -> String {
        "the controller's state could not be saved (\(failure.message.prefix { $0 != "\n" }))"
    }

    /// What a split put in force without its state file means (the error's first line).
    static func stateFileBehind(_ error: TrafficError) -> String {
        "the split's state file could not be written (\(error.message.prefix { $0 != "\n" })): an nginx started now would load the previous split"
    }

    /// A stop (a signal, an abort) that is already requested; an abort is taken. Checked right
    /// before traffic moves forward, so that a stop seen by then is never overtaken by a step.
    func pendingStop() -> Stop? {
        if let signal = interruption.signal { return .interrupted(signal) }
        if store.peekControl() == .abort, store.takeControl() == .abort { return .aborted }
        return nil
    }

    /// A stop before any traffic moved: the target is stopped (also what its deploy was still
    /// starting), traffic is left as it is.
    func stoppedBeforeTraffic(_ stop: Stop, while doing: String) async -> Result {
        try? await runtime.stop(color: target)
        progress("deploy: \(describe(stop)) \(doing); \(target) stopped, traffic untouched")
        try? await journal.update { $0.weight = 0 }
        try? await journal.event(stop == .aborted ? .abort : .interrupt, "\(describe(stop)) \(doing): \(target) stopped; traffic untouched")
        return stop == .aborted
            ? Result(outcome: .rolledBack, failure: "aborted by orchestrate abort \(doing); traffic was not moved")
            : Result(outcome: .interrupted, failure: "interrupted by \(signalName(stop)) \(doing); traffic was not moved")
    }

    // MARK: Holding a step

    struct Verdict: Sendable {
        var passed = true
        var measurements: [GateMeasurement] = []
        var failure: String?
        var promoteFull = false
        /// Manual requests honoured during the step, for the record.
        var requests: [String] = []
        var stop: Stop?
        var judge: StepJudge.Result?
        /// The judge ended inconclusive under `onInconclusive: hold`: wait for the operator.
        var holdWhenInconclusive = false
        /// A colour with traffic stopped serving during the step (see `watch`).
        var colourLost = false
    }

    /// Holds a step for its wait while the gates measure, the during-step hooks run and nginx and
    /// both colours are watched; ends early on a failed gate, a colour lost, an `abort`, a
    /// `promote` or an interruption. The hooks are child tasks: when the step ends they are
    /// stopped with their process groups.
    func hold(step: RunPlan.PlannedStep, deployed: ColorInstance) async -> Verdict {
        let clock = ContinuousClock()
        let started = clock.now
        let wait = plan.hold.duration
        let gates = (pipeline.analysis?.gates ?? []).filter { step.queries[$0.name] != nil }
        let analysisResult = SharedValue<StepVerdict?>(nil)
        return await withTaskGroup(of: Void.self) { group in
            for (number, hook) in plan.hooks.duringStep.enumerated() {
                group.addTask { _ = await runHook(hook, label: "during-step", number: number) }
            }
            let measuring = !gates.isEmpty && prometheus != nil
            if let prometheus, measuring {
                let analysis = StepAnalysis(
                    prometheus: prometheus, gates: gates, color: target, live: live?.color ?? "none", release: releaseID,
                    deadline: started + Self.inconclusiveDeadline(wait: wait, gates: gates),
                    report: { [progress, journal] measurement in
                        let value = measurement.value.map(formatMetric) ?? (measurement.error ?? "-")
                        progress("    gate \(measurement.gate) \(measurement.condition): \(value) \(measurement.outcome)")
                        try? await journal.measured(measurement)
                    })
                group.addTask {
                    let result = await analysis.run()
                    analysisResult.set(result)
                }
            }
            let colourLost = SharedValue<String?>(nil)
            if nginx != nil {
                group.addTask { colourLost.set(await watch(weight: step.newWeight, deployed: deployed)) }
            }
            let judgeResult = SharedValue<StepJudge.Result?>(nil)
            // At 100 % the live colour gets no traffic left to compare with.
            let judging = pipeline.analysis?.judge != nil && live != nil && prometheus != nil && step.newWeight < 100
            if judging, let spec = pipeline.analysis?.judge, let live, let prometheus {
                let judge = StepJudge(spec: spec, prometheus: prometheus, target: target, live: live.color, report: { [progress] look in
                    let metrics = look.metrics.map { "\($0.metric) \($0.classification.rawValue)" }.joined(separator: ", ")
                    progress("    judge \(String(format: "%.1f", look.elapsed)) s: \(metrics) -> \(look.decision.rawValue) (\(look.rule))")
                })
                let deadline = max(spec.maxWait.duration, wait)
                group.addTask { judgeResult.set(await judge.run(deadline: deadline)) }
            }
            defer { group.cancelAll() }
            var verdict = Verdict()
            var skipWait = false
            while true {
                if let signal = interruption.signal {
                    verdict.stop = .interrupted(signal)
                    return verdict
                }
                if let failure = await journal.saveFailure {
                    // The run can no longer be converged from its files: the step ends now.
                    verdict.passed = false
                    verdict.failure = Self.unsaved(failure)
                    return verdict
                }
                if let control = store.takeControl() {
                    switch control {
                    case .abort:
                        verdict.requests.append("abort")
                        verdict.stop = .aborted
                        return verdict
                    case .promote:
                        progress("promote requested: ending this step's wait")
                        skipWait = true
                        verdict.requests.append("promote")
                    case .promoteFull:
                        progress("promote --full requested")
                        skipWait = true
                        verdict.promoteFull = true
                        verdict.requests.append("promote --full")
                    }
                }
                if let failure = colourLost.get() {
                    verdict.passed = false
                    verdict.failure = failure
                    verdict.colourLost = true
                    return verdict
                }
                let result = analysisResult.get()
                if let result {
                    verdict.measurements = result.measurements
                    if !result.passed {
                        verdict.passed = false
                        verdict.failure = result.failure
                        verdict.judge = judgeResult.get()
                        return verdict
                    }
                }
                let judged = judgeResult.get()
                if let judged {
                    verdict.judge = judged
                    switch judged.decision {
                    case .fail:
                        verdict.passed = false
                        verdict.failure = "judge: \(judged.rule)"
                        return verdict
                    case .inconclusive:
                        verdict.passed = false
                        verdict.failure = "judge: inconclusive: \(judged.rule)"
                        verdict.holdWhenInconclusive = pipeline.analysis?.judge?.onInconclusive == .hold
                        return verdict
                    case .pass, .undecided:
                        break
                    }
                }
                // A step ends once its wait passed, or early once the judge decided; never before
                // the PromQL gates and the judge are done.
                let waited = clock.now - started >= wait || skipWait || judged?.decision == .pass
                if waited && (!measuring || result != nil) && (!judging || judged != nil || skipWait) { return verdict }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// Under `rollback.automatic: false` (a failed gate) or `judge.onInconclusive: hold`, the
    /// traffic is held where it is until an operator decides: `orchestrate abort` rolls back,
    /// `orchestrate promote` goes on.
    func holdForDecision(step: RunPlan.PlannedStep, failure: String, verdict: Verdict) async throws -> Verdict {
        var verdict = verdict
        try await journal.update { $0.phase = .holding }
        let why = verdict.holdWhenInconclusive ? "judge.onInconclusive is hold" : "rollback.automatic is false"
        try await journal.event(.hold, "\(failure); \(why): holding at \(step.newWeight)%")
        progress("hold: \(failure)")
        progress("hold: \(why): traffic stays at \(target) \(step.newWeight)%; `orchestrate abort` rolls back, `orchestrate promote` goes on")
        while true {
            if let signal = interruption.signal {
                verdict.stop = .interrupted(signal)
                return verdict
            }
            try await journal.requireSaved()
            switch store.takeControl() {
            case .abort?:
                verdict.requests.append("abort")
                verdict.stop = .aborted
                return verdict
            case .promote?, .promoteFull?:
                try await journal.event(.promote, "orchestrate promote at \(step.newWeight)% despite: \(failure)")
                progress("hold: promoted by the operator despite: \(failure)")
                verdict.passed = true
                verdict.failure = nil
                try await journal.update { $0.phase = .shifting }
                return verdict
            case nil:
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// How long a step may stay inconclusive (no data under `onNoData: inconclusive`) before its
    /// gate fails: twice the longer of the step's wait and the time its measurements need, so a
    /// slow first scrape is waited for but an unattended step never hangs.
    static func inconclusiveDeadline(wait: Duration, gates: [PromQLGate]) -> Duration {
        let measuring = gates.map { $0.initialDelay.duration + $0.interval.duration * $0.count }.max() ?? .zero
        return max(wait, measuring) * 2
    }

    // MARK: Rolling back

    /// Rolls back for a signal or an abort, with traffic at `weight`.
    func rollBack(_ stop: Stop, at weight: Int) async -> Result {
        stop == .aborted
            ? await rollBack(reason: "aborted by orchestrate abort", outcome: .rolledBack)
            : await rollBack(reason: "interrupted by \(signalName(stop)) at \(weight)%", outcome: .interrupted)
    }

    /// What a rollback did, in order, journalled once traffic is back (best effort).
    typealias Done = [(at: Date, kind: RolloutEvent.Kind, detail: String)]

    /// Traffic back to the live colour first (restored first when it is lost), then the target
    /// stopped, then the journal. Putting traffic back waits for no disk write (on a full disk the
    /// split's state file may stay behind, and the journal's writes fail): what could not be saved
    /// is still in the record the controller appends, and `run.json` as last saved lets recovery
    /// converge to the same place. A rollback that could not put traffic back on the live release
    /// is recorded as failed, never as rolled back.
    func rollBack(reason: String, outcome: ReleaseOutcome) async -> Result {
        progress("rollback: \(reason)")
        let began = Date()
        var failure = reason
        var done: Done = []
        var restored = live == nil
        if let live, let nginx {
            let applied = runtime.instancesMove ? await nginx.currentSplit() : nil
            var instance = await servingInstance(of: live.color, lastKnown: Self.instance(of: live.color, in: applied))
            if instance == nil { instance = await restoreLive(live, failure: &failure, done: &done) }
            if let instance {
                do {
                    let applied = try await put(split(live: instance, target: nil, weight: 0), on: nginx, stateFile: .bestEffort)
                    restored = true
                    done.append((Date(), .shift, "\(live.color) 100% (traffic restored)"))
                    progress("rollback: traffic back on \(live.color) (100%)")
                    if let unsaved = applied.unsaved {
                        done.append((Date(), .shift, Self.stateFileBehind(unsaved)))
                        progress("rollback: \(Self.stateFileBehind(unsaved))")
                    }
                } catch {
                    failure += "; traffic could not be restored to \(live.color): \(error)"
                    done.append((Date(), .shift, "could not restore traffic to \(live.color): \(error)"))
                    progress("rollback: could not restore traffic to \(live.color): \(error)")
                }
            }
        } else if live == nil, let nginx {
            // Nothing was live before: no colour may keep traffic, so the load balancer stops.
            await nginx.stop()
            done.append((Date(), .shift, "nothing was live before this release: nginx stopped"))
        }
        try? await journal.update {
            $0.phase = .rollingBack
            if restored { $0.weight = 0 }
        }
        try? await journal.event(outcome == .interrupted ? .interrupt : .rollback, reason, at: began)
        for entry in done { try? await journal.event(entry.kind, entry.detail, at: entry.at) }
        await journal.announce(.rolledBack(reason: reason, interrupted: outcome == .interrupted))
        if restored && (plan.stopNew || live == nil) {
            // Requests already on their way to the target finish before it stops.
            if live != nil { try? await Task.sleep(for: min(plan.drain.duration, .seconds(1))) }
            do {
                try await runtime.stop(color: target)
                try? await journal.event(.stop, "\(target) stopped")
                progress("rollback: \(target) stopped")
            } catch {
                failure += "; \(target) could not be stopped: \(error)"
                try? await journal.event(.stop, "\(target) could not be stopped: \(error)")
                progress("rollback: \(target) could not be stopped: \(error)")
            }
        }
        try? await writeTargets()
        for hook in plan.hooks.onRollback {
            let ok = await runHook(hook, label: "on-rollback")
            try? await journal.event(.hook, "on-rollback \(shellQuoted(hook)): \(ok ? "ok" : "failed")")
        }
        try? await journal.updateRecord { $0.deployment = nil }
        // Without a load balancer there is no traffic to put back.
        let tookEffect = restored || nginx == nil || outcome == .interrupted
        return Result(outcome: tookEffect ? outcome : .failed, failure: failure)
    }

    /// The live colour is lost (it stopped, or answers no health check), so traffic cannot simply
    /// go back to it. All traffic goes at once to the new colour, the only one that serves (rather
    /// than nginx retrying there each request of the lost share), then the live release's model,
    /// the recorded digest from the model store, is deployed again on the live colour. Returns its
    /// healthy instance, or nil with `failure` saying why it could not be restored (traffic then
    /// stays on the new colour, whose model was not approved, and the operator decides).
    func restoreLive(_ live: LiveRelease, failure: inout String, done: inout Done) async -> ColorInstance? {
        if let nginx, let serving = await servingInstance(of: target) {
            do {
                try await put(split(live: nil, target: serving, weight: 100), on: nginx, stateFile: .bestEffort)
                try? await journal.update { $0.weight = 100 }
                let detail = "\(target) 100% (\(live.color), the live colour, is lost: all traffic on the only colour that serves, whose model was not approved, until \(live.color) is restored)"
                done.append((Date(), .shift, detail))
                progress("rollback: \(detail)")
            } catch {
                progress("rollback: could not put all traffic on \(target): \(error)")
            }
        }
        let hint = "traffic stays on \(target), whose model was not approved: `orchestrate rollback --to \(live.releaseID)` redeploys the live release on the idle colour"
        guard let stored = try? runtime.models.storedModel(sha256: live.modelSHA256) else {
            failure += "; the live colour \(live.color) is lost and its model \(live.modelSHA256.prefix(12)) is not in the model store; \(hint)"
            done.append((Date(), .deploy, "\(live.color) is lost and cannot be redeployed: model \(live.modelSHA256.prefix(12)) is not in the model store"))
            return nil
        }
        progress("rollback: \(live.color) is lost: redeploying the live release \(live.releaseID) (model \(live.modelSHA256.prefix(12))) on it")
        done.append((Date(), .deploy, "\(live.color) is lost: redeploying the live release \(live.releaseID) (model \(live.modelSHA256.prefix(12))) on it"))
        do {
            let deployed = try await runtime.deploy(color: live.color, modelDirectory: stored, timeout: plan.health.timeout.duration)
            let health = try await runtime.waitHealthy(deployed, path: plan.health.path, timeout: plan.health.timeout.duration)
            guard health.healthy else {
                throw OrchestratorError(.stageFailed, "it did not answer GET \(plan.health.path) with 200 within \(plan.health.timeout) (\(health.detail))")
            }
            done.append((Date(), .healthy, "\(live.color) serves the live release \(live.releaseID) again at \(deployed.addresses.joined(separator: ", "))"))
            return deployed
        } catch {
            try? await runtime.stop(color: live.color)
            failure += "; the live colour \(live.color) is lost and could not be redeployed (\(error)); \(hint)"
            done.append((Date(), .deploy, "\(live.color) could not be redeployed: \(error)"))
            progress("rollback: \(live.color) could not be redeployed: \(error)")
            return nil
        }
    }

    /// `orchestrate abort` while the old colour drains: it still runs, so the release is undone at
    /// once: `current.json` back to the previous release (the abort's commit point: a controller
    /// killed after it is converged back there), traffic back on it, the target stopped. The
    /// release is live until then, so the journal's writes are best effort.
    func abortAfterPromotion(deployed: ColorInstance, previous: LiveRelease) async throws -> Result {
        try? await journal.event(.abort, "orchestrate abort during the drain: returning to \(previous.color) (release \(previous.releaseID))")
        guard let instance = await healthyInstance(of: previous.color), let nginx else {
            try? await journal.event(.abort, "\(previous.color) is no longer running: the abort cannot return to it; \(target) stays live")
            progress("abort: \(previous.color) is no longer running; \(target) stays live")
            return Result(outcome: .succeeded)
        }
        do {
            try store.setLive(previous)
        } catch {
            try? await journal.event(.abort, "current.json cannot be written back to \(previous.releaseID) (\(error)): \(target) stays live")
            progress("abort: current.json cannot be written back to \(previous.releaseID): \(error); \(target) stays live")
            return Result(outcome: .succeeded)
        }
        try? await journal.update { $0.phase = .rollingBack }
        let restoredAt = Date()
        try await put(split(live: instance, target: nil, weight: 0), on: nginx, stateFile: .bestEffort)
        try? await journal.event(.shift, "\(previous.color) 100% (traffic restored)", at: restoredAt)
        progress("rollback: traffic back on \(previous.color); \(previous.releaseID) is live again")
        await journal.announce(.rolledBack(reason: "aborted by orchestrate abort during the drain", interrupted: false))
        if plan.stopNew {
            try await runtime.stop(color: target)
            try? await journal.event(.stop, "\(target) stopped")
        }
        try? await writeTargets()
        try? await journal.updateRecord { $0.deployment = nil }
        return Result(outcome: .rolledBack, failure: "aborted by orchestrate abort during the drain")
    }

    // MARK: Helpers

    func split(live: ColorInstance?, target instance: ColorInstance?, weight: Int) -> TrafficSplit {
        var backends: [TrafficSplit.Backend] = []
        if let live, weight < 100 { backends.append(live.backend(weight: 100 - weight)) }
        if let instance, weight > 0 { backends.append(instance.backend(weight: weight)) }
        return TrafficSplit(mode: plan.mode == .weighted ? .weighted : .sticky, backends: backends)
    }

    func shift(to instance: ColorInstance, weight: Int) async throws {
        guard let nginx else { return }
        let applied = runtime.instancesMove ? await nginx.currentSplit() : nil
        var liveInstance: ColorInstance?
        if let live, weight < 100 {
            guard let running = await healthyInstance(of: live.color, lastKnown: Self.instance(of: live.color, in: applied)) else {
                throw OrchestratorError(.stageFailed, "the live colour \(live.color) is not running: no traffic can stay on it")
            }
            liveInstance = running
        }
        let target = runtime.instancesMove ? await healthyInstance(of: instance.color, lastKnown: instance) ?? instance : instance
        try await put(split(live: liveInstance, target: target, weight: weight), on: nginx)
    }

    /// `nginx.apply`, noting in the record when it replaced the workers of a killed master.
    @discardableResult
    func put(_ split: TrafficSplit, on nginx: NginxController, stateFile: NginxController.StateFilePolicy = .required) async throws
        -> NginxController.Applied
    {
        let applied = try await nginx.apply(split, stateFile: stateFile)
        if let detail = applied.replacementNote {
            try? await journal.event(.recover, detail)
            progress("    \(detail)")
        }
        return applied
    }

    /// The colour's instance when it serves: `healthyInstance`, which probes only instances that
    /// move, and otherwise answering the health check within 3 s.
    func servingInstance(of color: String, lastKnown: ColorInstance? = nil) async -> ColorInstance? {
        guard let instance = await healthyInstance(of: color, lastKnown: lastKnown) else { return nil }
        if runtime.instancesMove { return instance }
        let health = try? await runtime.waitHealthy(instance, path: plan.health.path, timeout: .seconds(3))
        return health?.healthy == true ? instance : nil
    }

    /// The colour's instance with only the addresses that answer the health check (all of them
    /// where instances do not move); nil when none runs or none answers. When the runtime cannot
    /// say what runs (a swarm manager that does not answer), the addresses of `lastKnown` are
    /// probed instead: tasks serve on without their manager. A runtime that answers "none" is
    /// believed.
    func healthyInstance(of color: String, lastKnown: ColorInstance? = nil) async -> ColorInstance? {
        var instance = await runtime.instance(of: color)
        if instance == nil, lastKnown != nil, !(await runtime.canTellWhatRuns()) { instance = lastKnown }
        guard var instance else { return nil }
        guard runtime.instancesMove else { return instance }
        let healthy = await runtime.probeEach(instance, path: plan.health.path).filter(\.probe.healthy).map(\.address)
        guard let first = healthy.first else { return nil }
        instance.addresses = healthy
        instance.address = first
        return instance
    }

    /// While a step holds: once a second, a look at nginx and at both colours, which `StepWatch`
    /// judges. nginx's master lost (killed, its workers serving alone): the step's split is put in
    /// force again, which replaces them with a fresh nginx; instances moved (Swarm tasks): the
    /// upstream is rendered again with the ones that answer. Returns why the step ends when a
    /// colour that carries traffic is lost, or nginx cannot be brought back (nil when cancelled).
    func watch(weight: Int, deployed: ColorInstance) async -> String? {
        guard let nginx else { return nil }
        var watch = StepWatch(
            target: target, live: weight < 100 ? live?.color : nil, weight: weight, minimumHealthy: runtime.minimumHealthyInstances,
            instancesMove: runtime.instancesMove)
        var applied = await nginx.currentSplit()
        func lastApplied(_ color: String) -> ColorInstance? { Self.instance(of: color, in: applied) }
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            if Task.isCancelled { return nil }
            let (targetLook, targetInstance) = await look(at: target, lastKnown: lastApplied(target))
            var liveLook: StepWatch.Colour?
            var liveInstance: ColorInstance?
            if let live = watch.live { (liveLook, liveInstance) = await look(at: live, lastKnown: lastApplied(live)) }
            let nginxRunning = await nginx.isRunning()
            let look = StepWatch.Look(
                nginxRunning: nginxRunning, orphanedWorkers: nginxRunning ? [] : await nginx.orphanedWorkers(), target: targetLook,
                live: liveLook, upstream: Dictionary((applied?.backends ?? []).map { ($0.color, $0.addresses) }, uniquingKeysWith: { first, _ in first }))
            switch watch.decide(look) {
            case .hold:
                continue
            case .targetLost(let why), .liveLost(let why):
                try? await journal.event(.shift, why)
                progress("    \(why)")
                return why
            case .reapply(let why):
                // A colour that did not answer this time keeps the addresses nginx has for it.
                let liveShare = watch.live.flatMap { liveInstance ?? lastApplied($0) }
                let wanted = split(live: liveShare, target: targetInstance ?? lastApplied(target) ?? deployed, weight: weight)
                do {
                    try await put(wanted, on: nginx)
                    applied = wanted
                    let weights = "\(target) \(weight)% / \(live?.color ?? "none") \(100 - weight)%"
                    let detail =
                        nginxRunning
                        ? "\(weights) again: \(why): upstream now \(wanted.backends.map { "\($0.color) \($0.addresses.joined(separator: ", "))" }.joined(separator: "; "))"
                        : "\(weights) again: \(why); a fresh nginx serves the step's split"
                    try? await journal.event(.shift, detail)
                    progress("    \(detail)")
                } catch {
                    progress("    \(why), and the split could not be put in force again: \(error)")
                    if !nginxRunning { return "\(why), and nginx could not be brought back: \(error)" }
                }
            }
        }
        return nil
    }

    /// A colour as the step's watch sees it, and its instance with the addresses that answered.
    /// When the runtime cannot say what runs (a swarm manager that does not answer), the
    /// addresses of `lastKnown` are probed: tasks serve on without their manager.
    func look(at color: String, lastKnown: ColorInstance?) async -> (StepWatch.Colour, ColorInstance?) {
        var instance = await runtime.instance(of: color)
        if instance == nil, lastKnown != nil, !(await runtime.canTellWhatRuns()) { instance = lastKnown }
        guard var instance else { return (.gone, nil) }
        let probes = await runtime.probeEach(instance, path: plan.health.path)
        let healthy = probes.filter(\.probe.healthy).map(\.address)
        guard let first = healthy.first else {
            return (.silent(detail: probes.map { "\($0.address): \($0.probe.detail)" }.joined(separator: "; ")), nil)
        }
        if runtime.instancesMove {
            instance.addresses = healthy
            instance.address = first
        }
        return (.serving(instance.addresses), instance)
    }

    /// A colour's addresses as a split lists them (what nginx sends its share to), for probing
    /// when the runtime cannot say what runs.
    static func instance(of color: String, in split: TrafficSplit?) -> ColorInstance? {
        guard let backend = split?.backends.first(where: { $0.color == color }), let first = backend.addresses.first else { return nil }
        return ColorInstance(color: color, pid: nil, address: first, addresses: backend.addresses, modelSHA256: "", modelVersion: "", modelPath: "")
    }

    /// Runs `work` until it ends, or until an interruption or an `orchestrate abort` comes first,
    /// in which case `work` is cancelled.
    func guarded<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> Swift.Result<T, Stop> {
        try await withThrowingTaskGroup(of: Swift.Result<T, Stop>?.self) { group in
            group.addTask { .success(try await work()) }
            group.addTask { [interruption] in
                await interruption.wait()
                return interruption.signal.map { .failure(.interrupted($0)) }
            }
            group.addTask { [store] in
                while !Task.isCancelled {
                    if store.peekControl() == .abort {
                        _ = store.takeControl()
                        return .failure(.aborted)
                    }
                    try? await Task.sleep(for: .milliseconds(100))
                }
                return nil
            }
            defer { group.cancelAll() }
            while let next = try await group.next() {
                if let next { return next }
            }
            throw CancellationError()
        }
    }

    func describe(_ stop: Stop) -> String {
        switch stop {
        case .aborted: "aborted by orchestrate abort"
        case .interrupted: "interrupted by \(signalName(stop))"
        }
    }

    func signalName(_ stop: Stop) -> String {
        guard case .interrupted(let signal) = stop else { return "abort" }
        return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : "signal \(signal)"
    }

    /// Runs a hook's argument vector as a tracked child (stopped with its process group when the
    /// run ends or is recovered); returns whether it succeeded.
    func runHook(_ argv: [String], label: String, number: Int = 0) async -> Bool {
        let name = argv.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "hook"
        let role = "\(label) hook \(number) \(name)"
        let journal = self.journal
        do {
            let outcome = try await CommandRunner.run(
                argv, environment: journal.childEnvironment(role: role), workingDirectory: workingDirectory, logPath: "\(logsFolder)/hooks/\(label)-\(name).log", timeout: nil,
                grace: .seconds(2), onStart: { pid in try? await journal.track(ProcessTable.track(pid, role: role)) })
            try? await journal.untrack(role: role)
            return outcome.exitStatus == 0
        } catch {
            try? await journal.untrack(role: role)
            return Task.isCancelled
        }
    }

    func writeTargets() async throws {
        try await Self.writeTargets(runtime: runtime, colors: pipeline.deploy?.colors ?? [], store: store, service: plan.service)
    }

    static func writeTargets(runtime: any DeploymentRuntime, colors: [String], store: StateStore, service: String) async throws {
        var instances: [ColorInstance] = []
        for color in colors {
            if let instance = await runtime.instance(of: color) { instances.append(instance) }
        }
        try store.writeTargets(instances, service: service)
    }
}

/// A value one task writes and another reads.
final class SharedValue<Value: Sendable>: Sendable {
    private let value: Mutex<Value>

    init(_ value: Value) {
        self.value = Mutex(value)
    }

    func get() -> Value { value.withLock { $0 } }
    func set(_ newValue: Value) { value.withLock { $0 = newValue } }
}
