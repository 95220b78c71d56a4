import Foundation
import StrictYAML
import Traffic

extension RolloutExecutor {
    /// The machine's view of the plan.
    var machinePlan: RolloutMachine.Plan {
        let analysis = pipeline.analysis
        let measuring = prometheus != nil
        return RolloutMachine.Plan(
            releaseID: releaseID, target: target, live: live, modelDirectory: plan.model,
            steps: plan.steps.map { step in
                let gates = measuring ? (analysis?.gates ?? []).filter { step.queries[$0.name] != nil } : []
                return RolloutMachine.Plan.Step(
                    newWeight: step.newWeight, liveWeight: step.liveWeight,
                    gates: gates.map { GateTally(gate: $0, query: $0.resolvedQuery(color: target, live: live?.color ?? "none", release: releaseID)) })
            }, hold: plan.hold, drain: plan.drain, healthPath: plan.health.path, stopOld: plan.stopOld, stopNew: plan.stopNew,
            automaticRollback: plan.automaticRollback, hooks: plan.hooks, judge: live != nil && measuring ? analysis?.judge : nil, trafficSwitch: nginx != nil,
            mode: plan.mode?.rawValue ?? "none", minimumHealthyInstances: runtime.minimumHealthyInstances, instancesMove: runtime.instancesMove)
    }

    /// The ports of the rollout's effects: nginx, the runtime, Prometheus, the journal, hooks.
    func ports(report: @escaping @Sendable (RolloutProgress) -> Void) -> RolloutPorts {
        let serving = ServingAdapter(
            runtime: runtime, nginx: nginx, target: target, live: live, healthPath: plan.health.path, healthTimeout: plan.health.timeout,
            mode: plan.mode == .weighted ? .weighted : .sticky, colors: pipeline.deploy?.colors ?? [], service: plan.service, store: store)
        let judge = pipeline.analysis?.judge.flatMap { spec in
            prometheus.flatMap { prometheus in
                live.map { StepJudge(spec: spec, prometheus: prometheus, target: target, live: $0.color, report: { _ in }) }
            }
        }
        let metrics = PrometheusMetrics(prometheus: prometheus ?? PrometheusClient(baseURL: "http://127.0.0.1:9090"), judge: judge)
        return RolloutPorts(
            traffic: serving, runtime: serving, metrics: metrics, clock: SystemClock(),
            journal: RunJournalPort(journal: journal, store: store, live: live, target: target, stopOld: plan.stopOld, runtime: runtime.name),
            notifier: RunNotifierPort(journal: journal, report: report), hooks: HookPort(journal: journal, workingDirectory: workingDirectory, logsFolder: logsFolder),
            control: RunControlPort(store: store, interruption: interruption))
    }

    /// Carries out the rollout with the machine: `RolloutRunner` feeds it one stream of events and
    /// carries its effects out against nginx, the runtime, Prometheus and the journal.
    func runMachine(report: @escaping @Sendable (RolloutProgress) -> Void) async throws -> Result {
        let outcome = await RolloutRunner(plan: machinePlan, ports: ports(report: report)).run()
        switch outcome.ending {
        case .finished(let outcome, let failure):
            return Result(outcome: outcome, failure: failure)
        case .failed(let message):
            throw outcome.error ?? OrchestratorError(.stageFailed, message)
        }
    }
}
