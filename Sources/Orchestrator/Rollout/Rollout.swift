import Foundation
import RecEngine
import Traffic

/// The rollout state machine: deploy the idle colour, check its health, move traffic step by step
/// while the PromQL gates hold, promote; on any failure put all traffic back on the live colour
/// first, then stop the new one. Its state is saved before every action (see `DeploymentState`).
struct Rollout: Sendable {
    var pipeline: Pipeline
    var deploy: DeploySpec
    var runtime: any DeploymentRuntime
    var nginx: NginxController?
    var state: DeploymentState
    var prometheus: PrometheusClient?
    var logsFolder: String
    var workingDirectory: String
    var noStagedShift: Bool
    var progress: @Sendable (String) -> Void

    init(
        pipeline: Pipeline, deploy: DeploySpec, runtime: any DeploymentRuntime, nginxHost: any NginxHost = LocalNginx(), noStagedShift: Bool,
        progress: @escaping @Sendable (String) -> Void
    ) {
        self.pipeline = pipeline
        self.deploy = deploy
        self.runtime = runtime
        self.noStagedShift = noStagedShift
        self.progress = progress
        state = DeploymentState(pipeline: pipeline)
        nginx = pipeline.traffic.map { traffic in
            NginxController(
                config: NginxConfig(listenPort: traffic.listen, runtimeFolder: DeploymentState(pipeline: pipeline).nginxFolder, modules: nginxHost.modules),
                configPath: traffic.nginxConfig, host: nginxHost)
        }
        prometheus = pipeline.analysis.map { PrometheusClient(baseURL: $0.prometheus) }
        let historyFolder = URL(fileURLWithPath: pipeline.history).deletingLastPathComponent()
        logsFolder = historyFolder.appendingPathComponent("logs").path
        workingDirectory = URL(fileURLWithPath: pipeline.file).deletingLastPathComponent().path
    }

    // MARK: Before any change

    /// Checks what the rollout needs before it changes anything.
    ///
    /// - Throws: `OrchestratorError` `.unreachable` (exit 4) naming what is missing.
    func preflight() async throws {
        if let local = nginx?.host as? LocalNginx, !local.isInstalled {
            throw OrchestratorError(.unreachable, "nginx is not installed (looked for \(local.nginx)); nothing was changed", hint: "apt-get install nginx")
        }
        if let nginx, nginx.config.modules == nil {
            let missing = NginxModules.missing
            throw OrchestratorError(.unreachable, missing.message + "; nothing was changed", hint: missing.hint)
        }
        if let docker = runtime as? DockerRuntime {
            try await docker.preflight(colors: deploy.colors, loadBalancer: nginx != nil)
        }
        if let prometheus, let analysis = pipeline.analysis, !analysis.gates.isEmpty, !(await prometheus.isReady()) {
            throw OrchestratorError(
                .unreachable, "Prometheus at \(prometheus.baseURL) is unreachable; nothing was changed",
                hint: "start it, or point analysis.prometheus (PROMETHEUS_URL) at a running one")
        }
    }

    // MARK: Releasing

    /// Releases the model on the idle colour. Returns the outcome: succeeded, rolled_back or failed.
    func release(modelDirectory: String, record: inout ReleaseRecord) async throws -> String {
        let current = state.current()
        var live: String? = nil
        if let current, let instance = await runtime.instance(of: current.color),
            await runtime.probe(instance, path: deploy.health.path).healthy
        {
            live = current.color
        } else if let current {
            progress("the recorded live colour \(current.color) is not running or not healthy; releasing as if nothing were live")
        }
        let target = deploy.colors.first { $0 != live } ?? deploy.colors[0]
        var rollout = ReleaseRecord.RolloutRecord(
            live: live, target: target, mode: pipeline.traffic?.mode.rawValue ?? "none", steps: [], events: [])
        var progressState = DeploymentState.InProgress(pid: getpid(), phase: "deploying", live: live, target: target, weight: 0, record: record)
        func event(_ kind: String, _ detail: String) throws {
            rollout.events.append(.init(at: Date(), kind: kind, detail: detail))
            progressState.record.rollout = rollout
            try state.save(progressState)
        }
        func finish(_ outcome: String) -> String {
            record.rollout = rollout
            if outcome != "succeeded" { record.deployment = nil }
            state.finishRollout()
            return outcome
        }
        try event("plan", "live \(live ?? "none"), releasing to \(target)")
        progress("rollout: live colour \(live ?? "none"), releasing to \(target)")

        for hook in pipeline.hooks.preRollout {
            let ok = await runHook(hook, label: "pre-rollout", record: record)
            try event("hook", "pre-rollout \(shellQuoted(hook)): \(ok ? "ok" : "failed")")
            if !ok {
                record.failure = "pre-rollout hook \(shellQuoted(hook)) failed; nothing was changed"
                return finish("failed")
            }
        }

        // Deploy and check health: no traffic moves before the new colour answers 200.
        let instance: ColorInstance
        do {
            progress("deploy: starting \(target) with \(modelDirectory)")
            try event("deploy", "starting \(target)")
            instance = try await runtime.deploy(color: target, modelDirectory: modelDirectory, timeout: deploy.health.timeout.duration)
            try event("deploy", "\(target) listens on \(instance.address) (model \(instance.modelVersion))")
            let health = await runtime.waitHealthy(instance, path: deploy.health.path, timeout: deploy.health.timeout.duration)
            guard health.healthy else {
                throw OrchestratorError(
                    .stageFailed, "\(target) did not answer GET \(deploy.health.path) with 200 within \(deploy.health.timeout) (\(health.detail))"
                        + ProcessRuntime.indented(await runtime.logTail(of: target)))
            }
            try event("healthy", "\(target) answers \(deploy.health.path): \(health.detail)")
            progress("deploy: \(target) is healthy at \(instance.address)")
        } catch {
            record.failure = "deploy of \(target) failed before any traffic moved: \(error)"
            progress("deploy: FAILED: \(error)")
            try? await runtime.stop(color: target)
            try event("stop", "\(target) stopped; traffic untouched")
            return finish("failed")
        }
        record.deployment = .init(runtime: deploy.runtime, color: target, modelSHA256: instance.modelSHA256)
        try await writeTargets()

        // Traffic steps, each measured by the gates.
        let weights = live == nil || noStagedShift ? [100] : (pipeline.traffic?.steps ?? [100])
        for (index, weight) in weights.enumerated() {
            progressState.phase = "shifting"
            progressState.weight = weight
            var step = ReleaseRecord.RolloutRecord.Step(weight: weight, startedOn: Date(), finishedOn: nil, passed: nil, measurements: [])
            do {
                try event("shift", "\(target) \(weight)% / \(live ?? "none") \(100 - weight)%")
                try await shift(live: live, target: instance, weight: weight)
                step.startedOn = Date()
                progress("step \(index + 1)/\(weights.count): \(target) \(weight)%\(live.map { ", \($0) \(100 - weight)%" } ?? "")")
            } catch {
                record.failure = "traffic step \(weight)% failed: \(error)"
                rollout.steps.append(step)
                return finish(try await rollBack(live: live, target: target, reason: record.failure ?? "", event: event))
            }
            let verdict = await analyse(step: weight, target: target, live: live, release: record.releaseID)
            for request in verdict.requests {
                try event(request == "abort" ? "abort" : "promote", "orchestrate \(request) at \(weight)%")
            }
            step.measurements = verdict.measurements
            step.passed = verdict.passed
            step.finishedOn = Date()
            rollout.steps.append(step)
            if verdict.passed == false {
                record.failure = verdict.failure
                progress("step \(index + 1): FAILED: \(verdict.failure ?? "")")
                return finish(try await rollBack(live: live, target: target, reason: verdict.failure ?? "", event: event))
            }
            if verdict.promoteFull && weight < 100 {
                try event("promote", "promote --full requested: \(target) to 100% now")
                try await shift(live: live, target: instance, weight: 100)
                break
            }
        }

        // Promote.
        progressState.phase = "promoting"
        try state.setCurrent(.init(color: target, releaseID: record.releaseID, modelSHA256: instance.modelSHA256, modelVersion: instance.modelVersion))
        try event("promote", "\(target) is live with model \(instance.modelVersion)")
        progress("promoted: \(target) is live (model \(instance.modelVersion))")
        for hook in pipeline.hooks.postRollout {
            let ok = await runHook(hook, label: "post-rollout", record: record)
            try event("hook", "post-rollout \(shellQuoted(hook)): \(ok ? "ok" : "failed (the release stays promoted)")")
        }
        if let live, pipeline.traffic?.stopOld == true {
            let drain = pipeline.traffic?.drain ?? .seconds(30)
            progress("draining \(live) for \(drain), then stopping it")
            try await Task.sleep(for: drain.duration)
            try await runtime.stop(color: live)
            try event("stop", "\(live) stopped after a drain of \(drain)")
            try await writeTargets()
        }
        return finish("succeeded")
    }

    /// Traffic back to the live colour first, then the new colour stopped.
    func rollBack(live: String?, target: String, reason: String, event: (String, String) throws -> Void) async throws -> String {
        progress("rollback: \(reason)")
        try event("rollback", reason)
        if let live, let liveInstance = await runtime.instance(of: live), let nginx {
            do {
                try await nginx.apply(split(liveColor: live, liveAddress: liveInstance.address, target: nil, weight: 0))
                try event("shift", "\(live) 100% (traffic restored)")
                progress("rollback: traffic back on \(live) (100%)")
            } catch {
                try event("shift", "could not restore traffic to \(live): \(error)")
                progress("rollback: could not restore traffic to \(live): \(error)")
            }
        } else if live == nil, let nginx {
            // Nothing was live before: no colour may keep traffic, so the load balancer stops.
            await nginx.stop()
            try event("shift", "nothing was live before this release: nginx stopped")
        }
        if pipeline.rollback.stopNew || live == nil {
            // Requests already on their way to the new colour finish before it stops.
            let drain = min(pipeline.traffic?.drain.duration ?? .zero, .seconds(5))
            if live != nil { try await Task.sleep(for: drain) }
            try await runtime.stop(color: target)
            try event("stop", "\(target) stopped")
            progress("rollback: \(target) stopped")
        }
        try? await writeTargets()
        for hook in pipeline.hooks.onRollback {
            let ok = await runHook(hook, label: "on-rollback", record: nil)
            try event("hook", "on-rollback \(shellQuoted(hook)): \(ok ? "ok" : "failed")")
        }
        return "rolled_back"
    }

    func split(liveColor: String?, liveAddress: String?, target: ColorInstance?, weight: Int) -> TrafficSplit {
        var backends: [TrafficSplit.Backend] = []
        if let liveColor, let liveAddress, weight < 100 {
            backends.append(.init(color: liveColor, address: liveAddress, weight: 100 - weight))
        }
        if let target, weight > 0 {
            backends.append(.init(color: target.color, address: target.address, weight: weight))
        }
        return TrafficSplit(mode: pipeline.traffic?.mode == .weighted ? .weighted : .sticky, backends: backends)
    }

    func shift(live: String?, target: ColorInstance, weight: Int) async throws {
        guard let nginx else { return }
        let liveAddress = if let live { await runtime.instance(of: live)?.address } else { String?.none }
        try await nginx.apply(split(liveColor: live, liveAddress: liveAddress, target: target, weight: weight))
    }

    struct Verdict {
        var passed: Bool
        var measurements: [GateMeasurement]
        var failure: String?
        var promoteFull: Bool
        /// Manual requests honoured during the step (abort, promote), for the record.
        var requests: [String] = []
    }

    /// Holds a step for its wait while the gates measure, the during-step hooks run, and manual
    /// abort/promote requests are honoured.
    func analyse(step weight: Int, target: String, live: String?, release: String) async -> Verdict {
        let wait = pipeline.traffic?.wait.duration ?? .zero
        let clock = ContinuousClock()
        let started = clock.now
        let hooks = pipeline.hooks.duringStep.map { hook in
            Task { await runHook(hook, label: "during-step", record: nil) }
        }
        defer { hooks.forEach { $0.cancel() } }
        var verdict = Verdict(passed: true, measurements: [], failure: nil, promoteFull: false)
        // A gate that compares with the live colour has nothing to compare with on a first release.
        let gates = (pipeline.analysis?.gates ?? []).filter { live != nil || !$0.query.contains("{{live}}") }
        let analysis: Task<StepVerdict, Never>? =
            gates.isEmpty || prometheus == nil
            ? nil
            : Task { [progress] in
                await StepAnalysis(
                    prometheus: prometheus ?? PrometheusClient(baseURL: ""), gates: gates, color: target, live: live ?? "none", release: release,
                    deadline: started + Self.inconclusiveDeadline(wait: wait, gates: gates),
                    report: { measurement in
                        let value = measurement.value.map(formatMetric) ?? (measurement.error ?? "-")
                        progress("    gate \(measurement.gate) \(measurement.condition): \(value) \(measurement.outcome)")
                    }
                ).run()
            }
        var skipWait = false
        // Poll for manual requests while the step is held.
        while true {
            if let control = state.takeControl() {
                switch control {
                case .abort:
                    analysis?.cancel()
                    verdict.passed = false
                    verdict.failure = "aborted by orchestrate abort"
                    verdict.requests.append("abort")
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
            let waited = clock.now - started >= wait || skipWait
            if let analysis, waited {
                let result = await analysis.value
                verdict.measurements = result.measurements
                if !result.passed {
                    verdict.passed = false
                    verdict.failure = result.failure
                }
                return verdict
            }
            if analysis == nil && waited { return verdict }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// How long a step may stay inconclusive (no data under `onNoData: inconclusive`) before its
    /// gate fails: twice the longer of the step's wait and the time its measurements need, so a
    /// slow first scrape is waited for but an unattended step never hangs.
    static func inconclusiveDeadline(wait: Duration, gates: [PromQLGate]) -> Duration {
        let measuring = gates.map { $0.initialDelay.duration + $0.interval.duration * $0.count }.max() ?? .zero
        return max(wait, measuring) * 2
    }

    /// Runs a hook's argument vector; returns whether it succeeded (cancellation stops it).
    func runHook(_ argv: [String], label: String, record: ReleaseRecord?) async -> Bool {
        let name = argv.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? "hook"
        let logPath = "\(logsFolder)/hooks/\(label)-\(name).log"
        do {
            let outcome = try await CommandRunner.run(argv, environment: [:], workingDirectory: workingDirectory, logPath: logPath, timeout: nil)
            return outcome.exitStatus == 0
        } catch {
            return Task.isCancelled
        }
    }

    func writeTargets() async throws {
        var instances: [ColorInstance] = []
        for color in deploy.colors {
            if let instance = await runtime.instance(of: color) { instances.append(instance) }
        }
        try state.writeTargets(instances, service: deploy.service)
    }

    // MARK: Crash recovery

    /// Converges a rollout that a killed controller left behind, and records what happened: the
    /// promoted colour if the promotion was saved, else the live colour (or nothing) with the new
    /// colour stopped. Returns the record appended to the history, nil when nothing was pending.
    func recover(history: ReleaseHistory) async throws -> ReleaseRecord? {
        guard let interrupted = state.inProgress() else { return nil }
        var record = interrupted.record
        var rollout = record.rollout ?? .init(live: interrupted.live, target: interrupted.target, mode: "unknown", steps: [], events: [])
        func event(_ kind: String, _ detail: String) {
            rollout.events.append(.init(at: Date(), kind: kind, detail: detail))
        }
        progress("recovery: release \(record.releaseID) was interrupted while \(interrupted.phase) (controller pid \(interrupted.pid) is gone)")
        event("recover", "controller pid \(interrupted.pid) interrupted while \(interrupted.phase) at \(interrupted.weight)%")
        let outcome: String
        if state.current()?.releaseID == record.releaseID, let instance = await runtime.instance(of: interrupted.target),
            await runtime.probe(instance, path: deploy.health.path).healthy
        {
            try await nginx?.apply(split(liveColor: nil, liveAddress: nil, target: instance, weight: 100))
            event("shift", "\(interrupted.target) 100%: its promotion had been saved")
            outcome = "succeeded"
            record.deployment = .init(runtime: deploy.runtime, color: interrupted.target, modelSHA256: instance.modelSHA256)
        } else {
            if let live = interrupted.live, let instance = await runtime.instance(of: live),
                await runtime.probe(instance, path: deploy.health.path).healthy, let nginx
            {
                try await nginx.apply(split(liveColor: live, liveAddress: instance.address, target: nil, weight: 0))
                event("shift", "\(live) 100% (traffic restored to the live colour)")
            } else if let nginx {
                await nginx.stop()
                event("shift", "no healthy live colour: nginx stopped")
            }
            try await runtime.stop(color: interrupted.target)
            event("stop", "\(interrupted.target) stopped")
            outcome = "rolled_back"
            record.deployment = nil
        }
        try? await writeTargets()
        record.rollout = rollout
        record.outcome = outcome
        record.failure = "the controller was interrupted while \(interrupted.phase); the next run converged to " + (outcome == "succeeded" ? "the promoted colour" : "the live colour")
        record.finishedOn = Date()
        let written = try history.append(record)
        state.finishRollout()
        progress("recovery: release \(record.releaseID) recorded as \(outcome)")
        return written
    }
}
