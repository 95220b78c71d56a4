import Foundation
import PipelineSchema
import Provenance
import Traffic

/// What the rollout's effects act on, one small protocol per service: the real adapters wrap
/// nginx, the runtime, Prometheus, the journal and the hooks; tests use in-memory fakes.

/// Where traffic is split (nginx).
protocol TrafficSwitch: Sendable {
    /// Puts a step's split in force, `weight` percent on the new colour (its state file written
    /// first: traffic never moves forward to where a restarted nginx would not send it).
    func shift(weight: Int) async throws -> TrafficChange
    /// Puts all traffic on `color` (its instance as last located or deployed), without waiting
    /// for a disk write.
    func sendAllTraffic(to color: String) async throws -> TrafficChange
    /// Puts the step's split in force again with the addresses that answered at the last look.
    func reapply(weight: Int) async throws -> TrafficChange
    /// Stops the load balancer.
    func stop() async
    /// Puts the shadow stage's split in force: all users on the live colour, `percent` % of the
    /// `/recommend` requests also asked of the new colour (at 0 %) and compared, under `experiment`.
    func startShadow(percent: Int, experiment: String) async throws -> TrafficChange
    /// nginx's counts of the shadow comparison in force (nil before its first sampled request).
    func lookShadow() async throws -> ShadowCounts?
}

/// What putting a split in force did besides.
struct TrafficChange: Sendable, Equatable {
    /// A killed nginx master's workers were replaced by a fresh nginx (the record says so).
    var replaced: String?
    /// Why the split's state file could not be written (only when not required).
    var stateFileBehind: String?
    /// The addresses the split sends each colour's share to.
    var upstream: [RolloutMachine.Upstream] = []
}

/// The colours (the deployment runtime, with health checks).
protocol ColourRuntime: Sendable {
    /// Deploys `color` and waits until it answers its health check.
    func deploy(_ color: String, model: RolloutMachine.ModelSource) async throws -> RolloutMachine.Instance
    /// Whether the colour runs (and answers, as asked); remembers its instance for the traffic.
    func locate(_ color: String, _ how: RolloutMachine.Locate) async -> Bool
    func stop(_ color: String) async throws
    func hasStoredModel(sha256: String) -> Bool
    /// A look at nginx and both colours during a step at `weight`.
    func look(weight: Int) async -> StepWatch.Look
    /// Writes Prometheus' file_sd targets of the running colours (best effort).
    func writeTargets() async
}

/// Where gates and the judge read their metrics (Prometheus).
protocol MetricsSource: Sendable {
    func sample(_ query: String) async -> RolloutMachine.GateSample
    /// Reads both colours' counters at the start of step `step`.
    func startJudge(step: Int) async
    /// What each metric shows since the start of step `step`.
    func lookJudge(step: Int) async -> RolloutMachine.JudgeObservation
}

/// Time, for the timers and the events' times.
protocol RolloutClock: Sendable {
    func now() -> Date
    func sleep(for duration: Duration) async throws
}

/// The run's files: its state (`run.json`), its record (`record.json`), and `current.json`.
protocol RolloutJournal: Sendable {
    func save(_ change: RolloutMachine.RunStateChange) async
    func record(_ kind: RolloutEvent.Kind, _ detail: String, at time: Date) async
    func recordRollout(live: String?, target: String, mode: String) async
    func recordStep(_ step: ReleaseRecord.RolloutRecord.Step) async
    func recordGateAnswer(_ answer: ReleaseRecord.RolloutRecord.GateAnswer) async
    func recordDeployment(color: String, modelSHA256: String) async
    func clearDeployment() async
    func saveMeasurement(_ measurement: GateMeasurement) async
    /// The record keeps the shadow stage's comparison.
    func recordShadow(_ comparison: ShadowComparison) async
    /// The first save that failed (its first line), nil while every one succeeded.
    func saveFailure() async -> String?
    /// Writes `current.json`.
    func commit(_ live: LiveRelease) async throws
}

/// Who is told about the run (webhooks, the Pushgateway, people).
protocol RolloutNotifier: Sendable {
    func announce(_ announcement: RolloutMachine.Announcement) async
    func progress(_ progress: RolloutProgress)
}

/// Runs the pipeline's hooks.
protocol HookRunner: Sendable {
    /// Runs the hook until it ends (or the task is cancelled); returns whether it succeeded.
    func run(_ hook: RolloutMachine.Hook, _ argv: [String]) async -> Bool
}

/// Requests from other processes (`orchestrate abort|promote`) and signals.
protocol RolloutControl: Sendable {
    /// The pending request, taken.
    func takeRequest() -> ControlRequest?
    /// The pending request and who made it (nil: not said), taken.
    func takeAttributedRequest() -> (request: ControlRequest, by: String?)?
    /// The first signal raised, nil while none was.
    var signal: Int32? { get }
    /// Returns once a signal is raised, or when the task is cancelled.
    func waitForSignal() async
}

extension RolloutControl {
    func takeAttributedRequest() -> (request: ControlRequest, by: String?)? { takeRequest().map { ($0, nil) } }
}

/// Asks the pipeline's webhook gates (`webhooks:`).
protocol WebhookCaller: Sendable {
    /// Sends `webhook` its body with `phase`, retried as it says; its last answer (a status, or
    /// why none came). Returns at once, unreachable, when the task is cancelled.
    func call(_ webhook: WebhookGate, phase: String) async -> RolloutMachine.WebhookAnswer
}

/// No webhooks to ask (a plan without `webhooks:` never asks).
struct NoWebhooks: WebhookCaller {
    func call(_ webhook: WebhookGate, phase: String) async -> RolloutMachine.WebhookAnswer {
        .unreachable("no webhook caller")
    }
}

/// The services a rollout's effects act on.
struct RolloutPorts: Sendable {
    var traffic: any TrafficSwitch
    var runtime: any ColourRuntime
    var metrics: any MetricsSource
    var clock: any RolloutClock
    var journal: any RolloutJournal
    var notifier: any RolloutNotifier
    var hooks: any HookRunner
    var control: any RolloutControl
    var webhooks: any WebhookCaller = NoWebhooks()
}
