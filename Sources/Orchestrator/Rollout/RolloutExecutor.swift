import DeploymentRuntimes
import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML
import Traffic

/// Carries out the rollout of a plan: `RolloutRunner` feeds `RolloutMachine` one stream of
/// events (what the effects came back with, looks at nginx and both colours, gate samples, the
/// judge's looks, `orchestrate abort|promote`, signals, timers) and carries its effects out
/// against nginx, the runtime, Prometheus, the clock, the observers and the run's journal. What
/// the rollout decides is the machine's (deploy, steps, promotion, drain, rollback); this type
/// only builds the machine's plan and the real adapters.
struct RolloutExecutor {
    /// All the rollout reads: what `--dry-run` printed and the record keeps.
    var plan: RunPlan.Rollout
    var releaseID: String
    var runtime: any DeploymentRuntime
    var nginx: NginxController?
    var store: StateStore
    var journal: RunJournal
    var interruption: Interruption
    var progress: @Sendable (RolloutProgress) -> Void
    /// The pipeline's webhook gates (kept out of the plan: their URLs and secrets are secrets).
    var webhooks: [WebhookGate] = []
    /// The pipeline's name (the webhooks' `namespace`).
    var pipelineName = ""

    var target: String { plan.target }
    var live: LiveRelease? { plan.live }

    struct Result: Sendable {
        var outcome: ReleaseOutcome
        var failure: String?
    }

    /// Carries out the rollout. Before the commit point (`current.json`), anything that goes
    /// wrong (a state file that cannot be saved on a full disk included) rolls back: traffic back
    /// on the live colour first, which needs no disk write, then the target stopped, then the
    /// journal as far as the disk allows. After it, the release is live: what remains (hooks, the
    /// drain, stopping the old colour) goes forward, as recovery would.
    ///
    /// - Throws: the error of an action after the commit point that failed (stopping the old
    ///   colour, returning to it after an abort during the drain).
    func run() async throws -> Result {
        let outcome = await RolloutRunner(plan: machinePlan, ports: ports).run()
        switch outcome.ending {
        case .finished(let outcome, let failure):
            return Result(outcome: outcome, failure: failure?.description)
        case .failed(let message):
            throw outcome.error ?? OrchestratorError(.stageFailed, message)
        }
    }

    /// The machine's view of the plan.
    var machinePlan: RolloutMachine.Plan {
        var machine = RolloutMachine.Plan(
            plan, releaseID: releaseID, trafficSwitch: nginx != nil,
            minimumHealthyInstances: runtime.minimumHealthyInstances,
            instancesMove: runtime.instancesMove)
        machine.webhooks = webhooks
        return machine
    }

    /// The real adapters of the rollout's effects: nginx, the runtime, Prometheus, the clock, the
    /// journal, the observers, the hooks, and the run's requests and signals.
    var ports: RolloutPorts {
        let serving = ServingAdapter(
            runtime: runtime, nginx: nginx, target: target, live: live, healthPath: plan.health.path,
            healthTimeout: plan.health.timeout,
            mode: plan.mode == .weighted ? .weighted : .sticky, interleave: plan.interleave, releaseID: releaseID,
            colors: plan.colors, service: plan.service,
            store: store)
        let prometheus = plan.prometheus.map { PrometheusClient(baseURL: $0) }
        return RolloutPorts(
            traffic: serving, runtime: serving,
            metrics: PrometheusMetrics(prometheus: prometheus, judges: stepJudges(prometheus: prometheus)),
            clock: SystemClock(),
            journal: RunJournalPort(
                journal: journal, store: store, live: live, target: target, stopOld: plan.stopOld, runtime: runtime.name
            ),
            notifier: RunNotifierPort(journal: journal, report: progress),
            hooks: HookPort(
                journal: journal, workingDirectory: plan.files.workingDirectory, logsFolder: plan.files.logs),
            control: RunControlPort(store: store, interruption: interruption),
            webhooks: HTTPWebhookCaller(service: plan.service, namespace: pipelineName, releaseID: releaseID))
    }
}

extension RolloutMachine.Plan {
    /// The machine's view of a planned rollout: each step's gates with the query the plan sends,
    /// the judge when there is a live colour and Prometheus to ask. Nothing but the plan is read.
    init(
        _ plan: RunPlan.Rollout, releaseID: String, trafficSwitch: Bool, minimumHealthyInstances: Int = 1,
        instancesMove: Bool = false
    ) {
        let measuring = plan.prometheus != nil
        self.init(
            releaseID: releaseID, target: plan.target, live: plan.live, modelDirectory: plan.model,
            steps: plan.steps.map { step in
                let gates =
                    measuring
                    ? plan.gates.compactMap { gate in step.queries[gate.name].map { GateTally(gate: gate, query: $0) } }
                    : []
                return Step(newWeight: step.newWeight, liveWeight: step.liveWeight, gates: gates)
            }, hold: plan.hold, drain: plan.drain, healthPath: plan.health.path, stopOld: plan.stopOld,
            stopNew: plan.stopNew,
            automaticRollback: plan.automaticRollback, hooks: plan.hooks,
            judge: measuring && plan.live != nil ? plan.judge : nil,
            trafficSwitch: trafficSwitch, mode: plan.mode?.rawValue ?? "none",
            minimumHealthyInstances: minimumHealthyInstances,
            instancesMove: instancesMove, shadow: trafficSwitch && plan.live != nil ? plan.shadow : nil)
    }
}
