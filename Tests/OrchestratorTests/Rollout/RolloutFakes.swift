import Foundation
import StrictYAML
import Synchronization
import Traffic

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// In-memory stand-ins for what a rollout acts on, each keeping what was done to it.

/// A value shared with the code under test.
final class Locked<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func get() -> Value { value.withLock { $0 } }
    func update<T>(_ change: (inout Value) throws -> T) rethrows -> T { try value.withLock { try change(&$0) } }
}

struct FakeError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// nginx: the split in force, by colour.
final class FakeTrafficSwitch: TrafficSwitch {
    struct State {
        var split: [String: Int]
        var running = true
        var applied: [[String: Int]] = []
        /// The next shift (or send) fails with this.
        var failNextShift: String?
        var failNextSend: String?
        var failNextReapply: String?
        /// The next split put in force replaces a killed master's workers.
        var replaceWorkers: String?
        /// Splits put back (best effort) miss their state file.
        var stateFileBehind: String?
        /// The shadow in force (percent and experiment), with its colour at 0 % in `split`.
        var shadow: (percent: Int, experiment: String)?
        /// What nginx answers at the next looks at the shadow (an empty queue: nil, no counts).
        var shadowCounts: [Result<ShadowCounts?, FakeError>] = []
        var failNextShadow: String?
    }

    let state: Locked<State>
    let target: String
    let live: String?
    /// What runs: a step keeps the live colour's share only while it runs.
    let runtime: FakeRuntime

    init(target: String, live: String?, runtime: FakeRuntime) {
        self.target = target
        self.live = live
        self.runtime = runtime
        state = Locked(State(split: live.map { [$0: 100] } ?? [:]))
    }

    var split: [String: Int] { state.get().split }

    private func put(_ split: [String: Int], failing: WritableKeyPath<State, String?>) throws -> TrafficChange {
        try state.update { state in
            if let error = state[keyPath: failing] {
                state[keyPath: failing] = nil
                throw FakeError(error)
            }
            state.split = split
            state.shadow = nil
            state.applied.append(split)
            state.running = true
            defer { state.replaceWorkers = nil }
            return TrafficChange(
                replaced: state.replaceWorkers,
                stateFileBehind: failing == \.failNextSend ? state.stateFileBehind : nil,
                upstream: split.keys.sorted().map {
                    RolloutMachine.Upstream(color: $0, addresses: ["127.0.0.1:\($0 == target ? 2 : 1)"])
                })
        }
    }

    private func stepSplit(_ weight: Int) -> [String: Int] {
        var split: [String: Int] = [:]
        if let live, weight < 100 { split[live] = 100 - weight }
        if weight > 0 { split[target] = weight }
        return split
    }

    func shift(weight: Int) async throws -> TrafficChange {
        if let live, weight < 100, !runtime.state.get().running.contains(live) {
            throw FakeError("the live colour \(live) is not running: no traffic can stay on it")
        }
        return try put(stepSplit(weight), failing: \.failNextShift)
    }
    func sendAllTraffic(to color: String) async throws -> TrafficChange {
        try put([color: 100], failing: \.failNextSend)
    }
    func reapply(weight: Int) async throws -> TrafficChange { try put(stepSplit(weight), failing: \.failNextReapply) }
    func startShadow(percent: Int, experiment: String) async throws -> TrafficChange {
        var split = stepSplit(0)
        split[target] = 0
        let change = try put(split, failing: \.failNextShadow)
        state.update { $0.shadow = (percent, experiment) }
        return change
    }
    func lookShadow() async throws -> ShadowCounts? {
        try state.update { state in state.shadowCounts.isEmpty ? .success(nil) : state.shadowCounts.removeFirst() }
            .get()
    }
    func stop() async {
        state.update {
            $0.running = false; $0.split = [:]
        }
    }
}

/// The runtime: which colours run, and what deploying or stopping one does.
final class FakeRuntime: ColourRuntime {
    struct State {
        var running: Set<String>
        /// Colours that run but answer no health check.
        var silent: Set<String> = []
        var deployFailures: [String: String] = [:]
        var stopFailures: [String: String] = [:]
        var storedModels: Set<String> = []
        var deployed: [String] = []
        var stopped: [String] = []
        var targetsWritten = 0
    }

    let state: Locked<State>

    init(running: Set<String>, storedModels: Set<String> = []) {
        state = Locked(State(running: running, storedModels: storedModels))
    }

    static func instance(_ color: String) -> RolloutMachine.Instance {
        RolloutMachine.Instance(
            color: color, addresses: ["127.0.0.1:\(color == "green" ? 2 : 1)"],
            modelSHA256: color == "green" ? FakePlan.newModel : FakePlan.liveModel,
            modelVersion: color == "green" ? "v2" : "v1")
    }

    func deploy(_ color: String, model: RolloutMachine.ModelSource) async throws -> RolloutMachine.Instance {
        try state.update { state in
            state.deployed.append(color)
            if let error = state.deployFailures[color] { throw FakeError(error) }
            state.running.insert(color)
            state.silent.remove(color)
            return Self.instance(color)
        }
    }

    func locate(_ color: String, _ how: RolloutMachine.Locate) async -> Bool {
        state.get().running.contains(color) && (how == .running || !state.get().silent.contains(color))
    }

    func stop(_ color: String) async throws {
        try state.update { state in
            state.stopped.append(color)
            if let error = state.stopFailures[color] { throw FakeError(error) }
            state.running.remove(color)
        }
    }

    func hasStoredModel(sha256: String) -> Bool { state.get().storedModels.contains(sha256) }

    func look(weight: Int) async -> StepWatch.Look {
        let state = self.state.get()
        func colour(_ name: String) -> StepWatch.Colour {
            state.running.contains(name)
                ? (state.silent.contains(name) ? .silent(detail: "timed out") : .serving(["127.0.0.1:1"])) : .gone
        }
        return StepWatch.Look(
            nginxRunning: true, target: colour("green"), live: weight < 100 ? colour("blue") : nil, upstream: [:])
    }

    /// What writing the targets also does (the moment the new colour is healthy).
    let whenWritingTargets = Locked<(@Sendable () async -> Void)?>(nil)

    func writeTargets() async {
        state.update { $0.targetsWritten += 1 }
        await whenWritingTargets.get()?()
    }
}

/// Prometheus: what each query returns next, and the judge's looks.
final class FakeMetricsSource: MetricsSource {
    let samples = Locked<[String: [RolloutMachine.GateSample]]>([:])
    let looks = Locked<[RolloutMachine.JudgeObservation]>([])

    func sample(_ query: String) async -> RolloutMachine.GateSample {
        samples.update { samples in samples[query]?.isEmpty == false ? samples[query]!.removeFirst() : .noData }
    }

    func startJudge(step: Int) async {}

    func lookJudge(step: Int) async -> RolloutMachine.JudgeObservation {
        looks.update { looks in
            looks.isEmpty
                ? RolloutMachine.JudgeObservation(judgements: [], elapsed: 0, at: FakeClock.start) : looks.removeFirst()
        }
    }
}

/// Time that moves only when the test moves it; a sleep ends once the time it waits for is reached.
final class FakeClock: RolloutClock {
    static let start = Date(timeIntervalSince1970: 1_800_000_000)

    private struct Sleeper {
        var until: Date
        var continuation: CheckedContinuation<Void, any Error>
    }

    private let state = Locked<(now: Date, sleepers: [Int: Sleeper], next: Int)>((start, [:], 0))

    func now() -> Date { state.get().now }

    /// Moves time on, ending the sleeps it reaches.
    func advance(by seconds: Double) {
        let woken = state.update { state -> [CheckedContinuation<Void, any Error>] in
            state.now += seconds
            let due = state.sleepers.filter { $0.value.until <= state.now }
            for id in due.keys { state.sleepers.removeValue(forKey: id) }
            return due.values.map(\.continuation)
        }
        for continuation in woken { continuation.resume() }
    }

    /// How many sleeps are waiting.
    var sleeping: Int { state.get().sleepers.count }

    func sleep(for duration: Duration) async throws {
        let id = state.update { state in
            defer { state.next += 1 }
            return state.next
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let now = state.update { state -> Bool in
                    let until =
                        state.now + Double(duration.components.seconds) + Double(duration.components.attoseconds)
                        * 1e-18
                    if until <= state.now || Task.isCancelled { return true }
                    state.sleepers[id] = Sleeper(until: until, continuation: continuation)
                    return false
                }
                if now {
                    if Task.isCancelled {
                        continuation.resume(throwing: CancellationError())
                    } else {
                        continuation.resume()
                    }
                }
            }
        } onCancel: {
            let sleeper = state.update { $0.sleepers.removeValue(forKey: id) }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }
}

/// The run's files in memory: every change kept; saves can be made to fail (a full disk).
final class FakeJournal: RolloutJournal {
    struct State {
        var changes: [RolloutMachine.RunStateChange] = []
        var phase: RunPhase = .stages
        var weight = 0
        var events: [RolloutEvent] = []
        var steps: [ReleaseRecord.RolloutRecord.Step] = []
        var rolloutOpened = false
        var deployment: String?
        var measurements: [GateMeasurement] = []
        var shadow: ShadowComparison?
        /// Saves fail from now on with this message.
        var diskFull: String?
        var saveFailure: String?
        var live: LiveRelease?
        var commitFailure: String?
        /// What `run.json` says the rollout waits for.
        var waiting: String?
        /// The record's table of webhook gate answers.
        var gateAnswers: [ReleaseRecord.RolloutRecord.GateAnswer] = []
    }

    let state = Locked(State())

    private func saving(_ change: (inout State) -> Void) {
        state.update { state in
            change(&state)
            if let full = state.diskFull, state.saveFailure == nil { state.saveFailure = full }
        }
    }

    func save(_ change: RolloutMachine.RunStateChange) async {
        saving { state in
            state.changes.append(change)
            if let phase = change.phase { state.phase = phase }
            if let waiting = change.waiting { state.waiting = waiting }
            if change.clearsWaiting { state.waiting = nil }
            if let weight = change.weight { state.weight = weight }
        }
    }

    func record(_ kind: RolloutEvent.Kind, _ detail: String, at time: Date) async {
        saving { $0.events.append(RolloutEvent(at: time, kind: kind, detail: detail)) }
    }

    func recordRollout(live: String?, target: String, mode: String) async { saving { $0.rolloutOpened = true } }
    func recordStep(_ step: ReleaseRecord.RolloutRecord.Step) async { saving { $0.steps.append(step) } }
    func recordGateAnswer(_ answer: ReleaseRecord.RolloutRecord.GateAnswer) async {
        saving { $0.gateAnswers.append(answer) }
    }
    func recordDeployment(color: String, modelSHA256: String) async { saving { $0.deployment = color } }
    func clearDeployment() async { saving { $0.deployment = nil } }
    func saveMeasurement(_ measurement: GateMeasurement) async { saving { $0.measurements.append(measurement) } }
    func recordShadow(_ comparison: ShadowComparison) async { saving { $0.shadow = comparison } }
    func saveFailure() async -> String? { state.get().saveFailure }

    func commit(_ live: LiveRelease) async throws {
        try state.update { state in
            if let failure = state.commitFailure { throw FakeError(failure) }
            state.live = live
        }
    }
}

/// Webhooks and people.
final class FakeNotifier: RolloutNotifier {
    let announcements = Locked<[RolloutMachine.Announcement]>([])
    let lines = Locked<[RolloutProgress]>([])

    func announce(_ announcement: RolloutMachine.Announcement) async {
        announcements.update { $0.append(announcement) }
    }
    func progress(_ progress: RolloutProgress) { lines.update { $0.append(progress) } }
}

/// Hooks that succeed unless told otherwise.
final class FakeHooks: HookRunner {
    let results = Locked<[RolloutMachine.Hook: Bool]>([:])
    let runs = Locked<[RolloutMachine.Hook]>([])

    func run(_ hook: RolloutMachine.Hook, _ argv: [String]) async -> Bool {
        runs.update { $0.append(hook) }
        return results.get()[hook] ?? true
    }
}

/// A webhook receiver in memory: answers each webhook (by name) as told, and keeps every call.
final class FakeWebhooks: WebhookCaller {
    let answers = Locked<[String: RolloutMachine.WebhookAnswer]>([:])
    let calls = Locked<[(name: String, phase: String)]>([])

    func call(_ webhook: WebhookGate, phase: String) async -> RolloutMachine.WebhookAnswer {
        calls.update { $0.append((webhook.name, phase)) }
        return answers.get()[webhook.name] ?? .status(200)
    }
}

/// `orchestrate abort|promote` and signals.
final class FakeControl: RolloutControl {
    let requests = Locked<[ControlRequest]>([])
    let raised = Locked<Int32?>(nil)

    func takeRequest() -> ControlRequest? { requests.update { $0.isEmpty ? nil : $0.removeFirst() } }
    var signal: Int32? { raised.get() }
    func waitForSignal() async {
        while raised.get() == nil && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
    }
}

/// The plan the table and the scenarios release: blue (release rel-1) live, green new, steps
/// 25/50/100, one gate, a judge of two metrics, one hook of each kind.
enum FakePlan {
    static let liveModel = String(repeating: "a", count: 64)
    static let newModel = String(repeating: "b", count: 64)
    static let live = LiveRelease(color: "blue", releaseID: "rel-1", modelSHA256: liveModel, modelVersion: "v1")
    static let gate = PromQLGate(
        name: "error-rate", query: "rate{color=\"{{color}}\"}", min: nil, max: 0.05, interval: .seconds(5), count: 1,
        initialDelay: .seconds(0),
        failureLimit: 0, consecutiveErrorLimit: 0, onNoData: .fail)
    static let query = "rate{color=\"green\"}"

    static func metric(_ name: String, critical: Bool) -> JudgeSpec.Metric {
        JudgeSpec.Metric(
            name: name, kind: .proportion(successes: "s{{color}}", trials: "t{{color}}"), bad: .decrease, effect: 0.1,
            absolute: false, baseline: nil,
            critical: critical, weight: 1, onNoData: .fail, minTrials: 30)
    }

    /// Checks the split's share of users at every look (`users{color}`), as a pipeline would.
    static func judge(onInconclusive: JudgeSpec.Inconclusive = .fail) -> JudgeSpec {
        JudgeSpec(
            metrics: [metric("engagement", critical: true), metric("latency", critical: false)], confidence: 0.95,
            interval: .seconds(2), maxWait: .seconds(60),
            onInconclusive: onInconclusive, marginal: 40, pass: 90, expectedRate: nil,
            sampleRatio: .init(users: "users{color=\"{{color}}\"}"))
    }

    /// What the sample ratio check counts at a look: users `new` and `live` since the step started.
    static func users(new: Double, live: Double) -> [JudgeRules.RatioCounts] {
        [JudgeRules.RatioCounts(count: "users", new: ["": new], live: ["": live])]
    }

    static func plan(
        live: LiveRelease? = live, steps: [Int] = [25, 50, 100], automaticRollback: Bool = true,
        onInconclusive: JudgeSpec.Inconclusive = .fail,
        judge: Bool = true, gates: Bool = true, hooks: Bool = true, stopOld: Bool = true, stopNew: Bool = true,
        trafficSwitch: Bool = true
    ) -> RolloutMachine.Plan {
        RolloutMachine.Plan(
            releaseID: "rel-2", target: "green", live: live, modelDirectory: "/models/new",
            steps: steps.map { weight in
                RolloutMachine.Plan.Step(
                    newWeight: weight, liveWeight: 100 - weight,
                    gates: gates ? [GateTally(gate: gate, query: query)] : [])
            },
            hold: .seconds(30), drain: .seconds(10), healthPath: "/health", stopOld: stopOld, stopNew: stopNew,
            automaticRollback: automaticRollback,
            hooks: hooks
                ? HooksSpec(
                    preRollout: [["pre.sh"]], duringStep: [["load.sh"]], postRollout: [["post.sh"]],
                    onRollback: [["notify.sh"]]) : HooksSpec(),
            judge: judge && live != nil ? Self.judge(onInconclusive: onInconclusive) : nil,
            trafficSwitch: trafficSwitch, mode: "sticky")
    }

    /// What the judge sees when every metric passes, when the critical one is worse, and when
    /// the score falls between `marginal` and `pass`.
    static func judgements(
        _ engagement: MetricJudgement.Classification, _ latency: MetricJudgement.Classification
    ) -> [MetricJudgement] {
        [
            MetricJudgement(
                metric: "engagement", classification: engagement, comparisons: [], rule: engagement.rawValue,
                critical: true, weight: 1),
            MetricJudgement(
                metric: "latency", classification: latency, comparisons: [], rule: latency.rawValue, critical: false,
                weight: 1),
        ]
    }

    static func errors() -> [MetricJudgement] {
        judgements(.noData, .noData).map { judgement in
            var judgement = judgement
            judgement.error = "the query failed: green: connection refused"
            return judgement
        }
    }
}

/// A rollout's end as the record writes it: the outcome, and the failure's text.
struct RecordedEnding: Equatable, CustomStringConvertible {
    var outcome: ReleaseOutcome
    var failure: String?

    init(_ outcome: ReleaseOutcome, failure: String?) {
        self.outcome = outcome
        self.failure = failure
    }

    var description: String { "\(outcome.rawValue): \(failure ?? "no failure")" }
}

extension RolloutMachine.Ending {
    var recorded: RecordedEnding? {
        guard case .finished(let outcome, let failure) = self else { return nil }
        return RecordedEnding(outcome, failure: failure?.description)
    }
}
