import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML

/// The decisions of a rollout, apart from their effects: `handle(event)` takes the state from
/// one event to the next and returns what must be done, in order. Nothing here waits, reads a
/// clock or touches a file: the executor (`RolloutRunner`) feeds it one stream of events (what
/// its effects came back with, looks at the services, operators' requests, signals, timers) and
/// carries its effects out against small protocols, so that every decision is tested as plain
/// values (`RolloutMachineTableTests`).
///
/// The rollout: the pre-rollout hooks, the deploy of the new colour and its health check, the
/// traffic steps (each held for its wait while the PromQL gates measure, the judge compares both
/// colours and nginx and both colours are watched), the promotion (`current.json`, the commit
/// point), the post-rollout hooks, the drain and the old colour stopped. Before the commit point,
/// a failed gate, an `orchestrate abort`, a signal or a state that cannot be saved rolls back:
/// traffic back on the live colour first (redeployed when it is lost), which waits for no disk
/// write, then the new colour stopped, then the journal. The journal (`run.json`) is saved before
/// every step forward, so that a controller killed at any point is converged by recovery.
struct RolloutMachine: Sendable, Equatable {
    let plan: Plan
    /// Changed only by `handle`.
    var phase: Phase = .idle
    /// The new colour's share of traffic in force, in percent, as last put in force.
    var weight = 0
    /// The first signal received (the run then exits 128 + it).
    private(set) var signal: Int32?
    /// A stop that came while nothing could be stopped at once (a save or a step's split in
    /// progress): honoured at the next point where the rollout would have been stopped.
    private(set) var pendingStop: Stop?
    /// `promote` or `promote --full` received before a step held, taken by the next one that does
    /// (as the request file kept it, the latest replacing an earlier one).
    private(set) var deferredRequest: ControlRequest?
    /// The first save that failed: no traffic moves forward after it.
    private(set) var saveFailure: String?
    /// The new colour once it answers its health check.
    private(set) var deployed: Instance?
    /// The shadow stage put its split in force (the new colour at 0 %, shadowed): a stop before
    /// the first step then puts traffic back as a rollback does.
    var shadowed = false
    /// Tells one wait for a webhook from the next (stale answers and timers are ignored).
    var webhookRound = 0
    /// `promote --full` answered a confirm gate by hand: confirm-promotion is not asked.
    var promotionApproved = false
    /// Who made the latest request from another process (nil: not said).
    private(set) var requester: String?

    init(plan: Plan) {
        self.plan = plan
    }

    /// What the machine needs of the rollout's plan.
    struct Plan: Sendable, Equatable {
        var releaseID: String
        var target: String
        /// The release serving now; nil on a first release.
        var live: LiveRelease?
        var modelDirectory: String
        var steps: [Step]
        var hold: PipelineDuration
        var drain: PipelineDuration
        var healthPath: String
        var stopOld: Bool
        var stopNew: Bool
        var automaticRollback: Bool
        var hooks: HooksSpec
        /// The judge, when there is a live colour to compare with and Prometheus to ask.
        var judge: JudgeSpec?
        /// Whether nginx splits the traffic (`traffic:`); without it nothing is shifted or watched.
        var trafficSwitch: Bool
        /// The traffic mode as the record names it (`sticky`, `weighted`, `none`).
        var mode: String
        /// The fewest healthy instances the new colour may have during a step.
        var minimumHealthyInstances = 1
        /// Whether instances move while they run (Swarm tasks).
        var instancesMove = false
        /// The shadow stage before the first step (only with a live colour and nginx).
        var shadow: ShadowSpec? = nil
        /// The webhook gates (`webhooks:`), in the order listed.
        var webhooks: [WebhookGate] = []

        struct Step: Sendable, Equatable {
            var newWeight: Int
            var liveWeight: Int
            /// The PromQL gates measured at this step (none without Prometheus).
            var gates: [GateTally] = []
        }

        /// The judge of step `index`: none at 100 % (the live colour gets no traffic left to
        /// compare with) or without a live colour; at 0 % only its interleaving metrics.
        func judge(ofStep index: Int) -> JudgeSpec? {
            guard let judge, live != nil, steps.indices.contains(index), steps[index].newWeight < 100 else {
                return nil
            }
            return judge.judging(weight: steps[index].newWeight)
        }
    }

    enum Phase: Sendable, Equatable {
        case idle
        /// The run's state, the record's rollout section and the plan are being saved.
        case beginning
        /// Pre-rollout hook `hook` runs (`succeeded` nil), or its outcome is being saved.
        case preRollout(hook: Int, succeeded: Bool?)
        /// The deploy is being saved (`running` false), or the new colour is being deployed.
        case deploying(running: Bool)
        /// The shadow stage: the new colour at 0 % answers a share of live requests beside, compared.
        case shadowing(Shadowing)
        /// The shadow stage failed under `rollback.automatic: false`: before step 1, the new colour
        /// at 0 %, until `orchestrate abort` (rolls back) or `promote` (step 1 despite the verdict).
        case holdingAfterShadow(verdict: String)
        /// Step `step` is being saved (`shiftRequestedAt` nil), or its split put in force.
        case stepping(step: Int, shiftRequestedAt: Date?)
        case holding(Hold)
        /// The step's record is being saved.
        case closingStep(Hold)
        /// A failed step waits for `orchestrate abort` or `promote` (`rollback.automatic: false`,
        /// `judge.onInconclusive: hold`).
        case holdingForDecision(Hold)
        /// A webhook gate is asked until it answers yes (or by hand), before `next`.
        case confirming(Confirm)
        /// `promote --full`: 100 % is being saved (`shifting` false), then put in force.
        case promotingFully(Hold, shifting: Bool)
        /// The promotion is being saved (`committing` false), then `current.json` written.
        case promoting(committing: Bool)
        case postRollout(hook: Int)
        case draining
        case stoppingOld
        /// `orchestrate abort` during the drain: back to the previous release.
        case returning(Return)
        case rollingBack(Rollback)
        case done(Ending)
    }

    /// A step holding: what its gates, judge and watch saw so far, and its verdict.
    struct Hold: Sendable, Equatable {
        var step: Int
        var weight: Int
        var startedOn: Date
        var gates: [GateTally]
        /// Every measurement of the step's gates, in the order taken.
        var measurements: [GateMeasurement] = []
        var inconclusiveDeadlinePassed = false
        var judge: JudgeProgress?
        var watch: StepWatch?
        /// Why the split is being put in force again, and whether nginx ran at that look.
        var reapplying: Reapply?
        var waited = false
        var skipWait = false
        var passed = true
        var failure: RolloutFailure.Reason?
        var promoteFull = false
        /// `orchestrate` requests honoured during the step, for the record.
        var requests: [String] = []
        var stop: Stop?
        /// A colour with traffic stopped serving (an outage, not a verdict: no operator is waited for).
        var colourLost = false
        /// The judge ended inconclusive under `onInconclusive: hold`.
        var holdWhenInconclusive = false
        /// A rollback webhook answered yes (or could not be reached under `onUnreachable: fail`):
        /// rolled back whatever `rollback.automatic` says.
        var webhookRollback = false

        struct Reapply: Sendable, Equatable {
            var why: String
            var nginxRunning: Bool
        }

        /// Whether the gates have all passed or one failed.
        var analysisFinished: Bool { gates.allSatisfy { $0.verdict != .measuring } }

        var analysisFailure: String? {
            for tally in gates { if case .failed(let reason) = tally.verdict { return reason } }
            return nil
        }

        /// The measurements the step's record keeps: those of an analysis that ended, every gate
        /// decided or one failed (the others may still have been measuring: the failing
        /// measurement is the one a reader of the record needs most).
        var recordedMeasurements: [GateMeasurement] {
            analysisFinished || analysisFailure != nil ? measurements.sorted { $0.at < $1.at } : []
        }
    }

    /// The judge during a step.
    struct JudgeProgress: Sendable, Equatable {
        var looks: [JudgeLook] = []
        var consecutiveErrors = 0
        /// `maxWait` has passed: the next look decides.
        var final = false
        var decision: JudgeLook.Decision?
        var rule: String?

        /// The judge's verdict, when it passed the step although a critical metric had not
        /// decided (`allowUndecidedCritical: true`): the notification says so.
        var passedWithoutCritical: String? {
            guard decision == .pass, let last = looks.last,
                last.metrics.contains(where: {
                    $0.critical && ($0.classification == .undecided || $0.classification == .noData)
                })
            else { return nil }
            return "judge: \(rule ?? "")"
        }
    }

    /// An abort during the drain, returning to the previous release.
    struct Return: Sendable, Equatable {
        enum Stage: Sendable, Equatable {
            case locating
            case committing
            case sending(since: Date)
            case stoppingTarget
        }

        var stage: Stage
    }

    /// A rollback in progress: traffic first, then the journal, the new colour, the hooks.
    struct Rollback: Sendable, Equatable {
        enum Stage: Sendable, Equatable {
            case locatingLive
            /// The live colour is lost: the new one takes all traffic until it is redeployed.
            case locatingTarget
            case sendingToTarget
            case findingModel
            case redeployingLive
            case restoringLive
            case stoppingTrafficSwitch
            case pausing
            case stoppingTarget
            case hook(Int)
        }

        /// What was done to traffic and colours, journalled once traffic is back.
        struct Done: Sendable, Equatable {
            var at: Date
            var kind: RolloutEvent.Kind
            var detail: String
        }

        var reason: RolloutFailure.Reason
        var outcome: ReleaseOutcome
        var began: Date
        /// What could not be done.
        var problems: [RolloutFailure.Problem] = []
        var done: [Done] = []
        /// Traffic is on the live release (or nothing was live).
        var restored: Bool
        var stage: Stage
    }

    // MARK: Reading the state

    var isDone: Bool {
        if case .done = phase { return true }
        return false
    }

    var ending: Ending? {
        if case .done(let ending) = phase { return ending }
        return nil
    }

    /// The documented exit status of a finished rollout (nil when an error decides it).
    static func exitStatus(_ ending: Ending, signal: Int32?) -> Int32? {
        if let signal { return ExitStatus.interrupted(by: signal) }
        switch ending {
        case .finished(.succeeded, _): return ExitStatus.success
        case .finished(_, let failure?) where failure.reason.isInvalidExperiment: return ExitStatus.invalidExperiment
        case .finished: return ExitStatus.failed
        case .failed: return nil
        }
    }

    var target: String { plan.target }
    var live: LiveRelease? { plan.live }

    /// Why a rollout stopped when its state could not be saved.
    static func unsaved(_ message: String) -> String {
        "the controller's state could not be saved (\(message.prefix { $0 != "\n" }))"
    }

    /// What a split put in force without its state file means.
    static func stateFileBehind(_ message: String) -> String {
        "the split's state file could not be written (\(message.prefix { $0 != "\n" })): an nginx started now would load the previous split"
    }

    // MARK: Deciding

    /// Takes the state to the next one on `event`, at time `now`; returns what must be done, in order.
    mutating func handle(_ event: Event, at now: Date) -> [Effect] {
        if case .requestedBy(let name) = event {
            requester = name
            return []
        }
        switch event {
        case .signal(let signal):
            // A second signal: the service exits at once (ReleaseService), leaving the state to recovery.
            guard self.signal == nil else { return [] }
            self.signal = signal
        case .journalSaveFailed(let message):
            if saveFailure == nil { saveFailure = message }
        default:
            break
        }
        switch phase {
        case .idle:
            return idle(event, at: now)
        case .beginning:
            return beginning(event, at: now)
        case .preRollout(let hook, let succeeded):
            return preRollout(hook, succeeded: succeeded, event, at: now)
        case .deploying(let running):
            return deploying(running: running, event, at: now)
        case .shadowing(let shadow):
            return shadowing(shadow, event, at: now)
        case .holdingAfterShadow(let verdict):
            return holdingAfterShadow(verdict, event, at: now)
        case .stepping(let step, let requestedAt):
            return stepping(step, shiftRequestedAt: requestedAt, event, at: now)
        case .holding(let hold):
            return holding(hold, event, at: now)
        case .closingStep(let hold):
            return closingStep(hold, event, at: now)
        case .holdingForDecision(let hold):
            return holdingForDecision(hold, event, at: now)
        case .confirming(let confirm):
            return confirming(confirm, event, at: now)
        case .promotingFully(let hold, let shifting):
            return promotingFully(hold, shifting: shifting, event, at: now)
        case .promoting(let committing):
            return promoting(committing: committing, event, at: now)
        case .postRollout(let hook):
            return postRollout(hook, event, at: now)
        case .draining:
            return draining(event, at: now)
        case .stoppingOld:
            return stoppingOld(event, at: now)
        case .returning(let state):
            return returning(state, event, at: now)
        case .rollingBack(let rollback):
            return rollingBack(rollback, event, at: now)
        case .done:
            return []
        }
    }

    /// Remembers a stop that cannot be honoured now; a signal takes the place of an abort.
    private mutating func hold(_ stop: Stop) {
        if pendingStop == nil || pendingStop == .aborted { pendingStop = stop }
    }

    /// Keeps a stop or a request that comes while nothing can act on it.
    mutating func keep(_ event: Event) {
        switch event {
        case .signal(let signal): hold(.interrupted(signal))
        case .control(.abort): hold(.aborted)
        case .control(.approve): break
        case .control(let request): deferredRequest = request
        default: break
        }
    }

    /// A `promote` kept for the next step is dropped (it was asked before a verdict it cannot answer).
    mutating func dropDeferredRequest() { deferredRequest = nil }

    mutating func takePendingStop() -> Stop? {
        defer { pendingStop = nil }
        return pendingStop
    }

    private mutating func finish(_ outcome: ReleaseOutcome, _ failure: RolloutFailure.Reason?) -> [Effect] {
        let ending = Ending.finished(outcome, failure: failure.map { RolloutFailure($0) })
        phase = .done(ending)
        return [.finish(ending)]
    }

    private mutating func fail(_ error: String) -> [Effect] {
        phase = .done(.failed(error))
        return [.finish(.failed(error))]
    }

    /// The journal entry and the line of a killed nginx master's workers replaced by a split.
    func replacement(_ note: String?, at now: Date) -> [Effect] {
        guard let note else { return [] }
        return [.record(.recover, note, at: now), .progress(.workersReplaced(detail: note))]
    }

    // MARK: Before the deploy

    private mutating func idle(_ event: Event, at now: Date) -> [Effect] {
        switch event {
        case .start:
            phase = .beginning
            return [
                .save(RunStateChange(phase: .deploying, weight: 0, beginsRollout: true)),
                .recordRollout(live: live?.color, target: target, mode: plan.mode),
                .record(.plan, "live \(live?.color ?? "none"), releasing to \(target)", at: now),
                .checkpoint,
            ]
        case .journalSaveFailed(let message):
            return finish(.failed, .unsavedDuringStages(message))
        default:
            keep(event)
            return []
        }
    }

    private mutating func beginning(_ event: Event, at now: Date) -> [Effect] {
        switch event {
        case .saved:
            let line = Effect.progress(.plan(live: live?.color, liveRelease: live?.releaseID, target: target))
            return [line] + preRolloutHook(0, at: now)
        case .journalSaveFailed:
            return rollBackOnError(nil, at: now)
        default:
            keep(event)
            return []
        }
    }

    /// Runs pre-rollout hook `index`, or goes on to the deploy after the last.
    private mutating func preRolloutHook(_ index: Int, at now: Date) -> [Effect] {
        guard index < plan.hooks.preRollout.count else { return gateThen(.confirmRollout, next: .deploy, at: now) }
        if let stop = takePendingStop() { return stopped(stop, duringHook: index, at: now, running: false) }
        phase = .preRollout(hook: index, succeeded: nil)
        return [.runHook(.preRollout(index), plan.hooks.preRollout[index])]
    }

    /// Saves the deploy, then deploys once saved.
    mutating func startDeploy(at now: Date) -> [Effect] {
        phase = .deploying(running: false)
        return [
            .progress(.deployStarting(target: target, model: plan.modelDirectory)),
            .record(.deploy, "starting \(target)", at: now), .checkpoint,
        ]
    }

    private mutating func preRollout(_ index: Int, succeeded: Bool?, _ event: Event, at now: Date) -> [Effect] {
        let hook = plan.hooks.preRollout[index]
        switch (event, succeeded) {
        case (.hookFinished(.preRollout(index), let ok), nil):
            phase = .preRollout(hook: index, succeeded: ok)
            return [.record(.hook, "pre-rollout \(shellQuoted(hook)): \(ok ? "ok" : "failed")", at: now), .checkpoint]
        case (.signal(let signal), nil):
            return stopped(.interrupted(signal), duringHook: index, at: now, running: true)
        case (.control(.abort), nil):
            return stopped(.aborted, duringHook: index, at: now, running: true)
        case (.saved, let ok?):
            guard ok else { return finish(.failed, .preRolloutHookFailed(hook)) }
            return preRolloutHook(index + 1, at: now)
        case (.journalSaveFailed, _?):
            return rollBackOnError(nil, at: now)
        default:
            keep(event)
            return []
        }
    }

    private mutating func stopped(_ stop: Stop, duringHook index: Int, at now: Date, running: Bool) -> [Effect] {
        let hook = shellQuoted(plan.hooks.preRollout[index])
        let recorded = Effect.record(
            stop == .aborted ? .abort : .interrupt,
            "\(stop.description) during the pre-rollout hook \(hook); nothing was changed", at: now)
        let ending = finish(stop == .aborted ? .rolledBack : .interrupted, .stoppedBeforeDeploy(stop))
        return (running ? [.cancelHook(.preRollout(index))] : []) + [recorded] + ending
    }

    // MARK: The deploy

    private mutating func deploying(running: Bool, _ event: Event, at now: Date) -> [Effect] {
        switch (event, running) {
        case (.saved, false):
            if let stop = takePendingStop() { return stoppedBeforeTraffic(stop, "while deploying", at: now) }
            phase = .deploying(running: true)
            return [.deploy(color: target, model: .directory(plan.modelDirectory))]
        case (.journalSaveFailed, false):
            return rollBackOnError(nil, at: now)
        case (.deployed(let instance), true) where instance.color == target:
            deployed = instance
            let addresses = instance.addresses.joined(separator: ", ")
            return [
                .record(
                    .healthy, "\(target) answers \(plan.healthPath) at \(addresses) (model \(instance.modelVersion))",
                    at: now),
                .progress(.deployHealthy(target: target, addresses: instance.addresses)),
                .recordDeployment(color: target, modelSHA256: instance.modelSHA256), .writeTargets,
            ] + gateThen(.preRollout, next: .traffic, at: now)
        case (.deployFailed(let color, let error), true) where color == target:
            return [
                .progress(.deployFailed(error: error)), .stopColourQuietly(target),
                .record(.stop, "\(target) stopped; traffic untouched", at: now),
            ]
                + finish(.failed, .deployFailed(color: target, error: error))
        case (.signal(let signal), true):
            return [.cancelDeploy] + stoppedBeforeTraffic(.interrupted(signal), "while deploying", at: now)
        case (.control(.abort), true):
            return [.cancelDeploy] + stoppedBeforeTraffic(.aborted, "while deploying", at: now)
        default:
            keep(event)
            return []
        }
    }

    /// A stop before any traffic moved: the new colour is stopped (also what its deploy was still
    /// starting), traffic is left as it is.
    mutating func stoppedBeforeTraffic(_ stop: Stop, _ moment: String, at now: Date) -> [Effect] {
        let effects: [Effect] = [
            .stopColourQuietly(target),
            .progress(.stoppedBeforeTraffic(stop: stop.description, moment: moment, target: target)),
            .save(RunStateChange(weight: 0)),
            .record(
                stop == .aborted ? .abort : .interrupt,
                "\(stop.description) \(moment): \(target) stopped; traffic untouched", at: now),
        ]
        return effects
            + finish(stop == .aborted ? .rolledBack : .interrupted, .stoppedBeforeTraffic(stop, moment: moment))
    }

    // MARK: Traffic steps

    /// Saves step `index` (or the promotion after the last), then moves traffic once saved.
    /// `confirmed`: its confirm gates are open; `previous`: the step held before.
    mutating func beginStep(_ index: Int, at now: Date, confirmed: Bool = false, previous: Hold? = nil) -> [Effect] {
        guard index < plan.steps.count else { return beginPromotion(at: now, confirmed: confirmed) }
        if !confirmed && index > 0 {
            return gateThen(.confirmTrafficIncrease, next: .step(index), hold: previous, at: now)
        }
        phase = .stepping(step: index, shiftRequestedAt: nil)
        return [
            .save(RunStateChange(phase: .shifting, weight: plan.steps[index].newWeight, clearsGates: true)),
            .checkpoint,
        ]
    }

    private mutating func stepping(
        _ index: Int, shiftRequestedAt requestedAt: Date?, _ event: Event, at now: Date
    ) -> [Effect] {
        let step = plan.steps[index]
        switch (event, requestedAt) {
        case (.saved, nil):
            // The last moment to honour a stop requested meanwhile: none may be overtaken by a step.
            if let stop = takePendingStop() {
                if index == 0 && !shadowed {
                    return stoppedBeforeTraffic(stop, "before the first traffic step", at: now)
                }
                if index == 0 { return rollBack(stop, at: 0, now: now) }
                return rollBack(stop, at: plan.steps[index - 1].newWeight, now: now)
            }
            phase = .stepping(step: index, shiftRequestedAt: now)
            return [.shift(weight: step.newWeight)]
        case (.journalSaveFailed, nil):
            return rollBackOnError(nil, at: now)
        case (.shiftApplied(step.newWeight, let replaced), let requestedAt?):
            weight = step.newWeight
            return replacement(replaced, at: now) + [
                .record(
                    .shift, "\(target) \(step.newWeight)% / \(live?.color ?? "none") \(step.liveWeight)%",
                    at: requestedAt),
                .progress(
                    .step(
                        number: index + 1, of: plan.steps.count, target: target, weight: step.newWeight,
                        live: live?.color, liveWeight: step.liveWeight)),
            ] + startHold(index, at: now)
        case (.shiftFailed(step.newWeight, let error), let requestedAt?):
            let record = ReleaseRecord.RolloutRecord.Step(
                weight: step.newWeight, startedOn: requestedAt, finishedOn: nil, passed: nil, measurements: [])
            return [.recordStep(record)]
                + rollBack(
                    reason: .trafficStepFailed(weight: step.newWeight, error: error), outcome: .rolledBack, at: now)
        default:
            keep(event)
            return []
        }
    }

    /// Holds step `index`: its hooks start, its gates, judge and watch begin, its wait runs.
    private mutating func startHold(_ index: Int, at now: Date) -> [Effect] {
        let step = plan.steps[index]
        let judging = plan.judge(ofStep: index) != nil
        var hold = Hold(
            step: index, weight: step.newWeight, startedOn: now, gates: step.gates,
            judge: judging ? JudgeProgress() : nil,
            watch: plan.trafficSwitch
                ? StepWatch(
                    target: target, live: step.newWeight < 100 ? live?.color : nil, weight: step.newWeight,
                    minimumHealthy: plan.minimumHealthyInstances,
                    instancesMove: plan.instancesMove) : nil)
        if let stop = takePendingStop() {
            if stop == .aborted { hold.requests.append("abort") }
            hold.stop = stop
            return endHold(hold, at: now)
        }
        if let saveFailure {
            // The run can no longer be converged from its files: the step ends at once.
            hold.passed = false
            hold.failure = .unsaved(saveFailure)
            return endHold(hold, at: now)
        }
        var effects: [Effect] = []
        for (number, hook) in plan.hooks.duringStep.enumerated() {
            effects.append(.runHook(.duringStep(step: index, number), hook))
        }
        effects.append(.startTimer(.stepWait(step: index), after: plan.hold.duration))
        for tally in step.gates {
            effects.append(
                .startTimer(.gateDue(step: index, gate: tally.gate.name), after: tally.gate.initialDelay.duration))
        }
        if !step.gates.isEmpty {
            let deadline = GateTally.inconclusiveDeadline(wait: plan.hold.duration, gates: step.gates.map(\.gate))
            effects.append(.startTimer(.inconclusiveDeadline(step: index), after: deadline))
        }
        if let judge = plan.judge(ofStep: index) {
            effects += [
                .startJudge(step: index),
                .startTimer(.judgeMaxWait(step: index), after: max(judge.maxWait.duration, plan.hold.duration)),
            ]
        }
        if hold.watch != nil { effects.append(.startTimer(.watchDue(step: index), after: .seconds(1))) }
        effects += rollbackWebhookCalls(step: index)
        phase = .holding(hold)
        if let request = deferredRequest {
            deferredRequest = nil
            return effects + holding(hold, .control(request), at: now)
        }
        return effects
    }

    private mutating func holding(_ held: Hold, _ event: Event, at now: Date) -> [Effect] {
        var hold = held
        let index = hold.step
        var effects: [Effect] = []
        switch event {
        case .signal(let signal):
            hold.stop = .interrupted(signal)
            return endHold(hold, at: now)
        case .journalSaveFailed(let message):
            // The run can no longer be converged from its files: the step ends now.
            hold.passed = false
            hold.failure = .unsaved(message)
            return endHold(hold, at: now)
        case .control(.abort):
            hold.requests.append("abort")
            hold.stop = .aborted
            return endHold(hold, at: now)
        case .control(.promote):
            effects.append(.progress(.promoteRequested))
            hold.skipWait = true
            hold.requests.append("promote")
        case .control(.promoteFull):
            effects.append(.progress(.promoteFullRequested))
            hold.skipWait = true
            hold.promoteFull = true
            hold.requests.append("promote --full")
        case .timer(.stepWait(index)):
            hold.waited = true
        case .timer(.gateDue(index, let name)):
            guard hold.gates.contains(where: { $0.gate.name == name && $0.verdict == .measuring }) else { return [] }
            return [.sampleGate(step: index, gate: name)]
        case .gateSample(index, let name, let sample, let time):
            guard let position = hold.gates.firstIndex(where: { $0.gate.name == name }),
                hold.gates[position].verdict == .measuring
            else { return [] }
            let measurement = hold.gates[position].record(
                sample, at: time, deadlinePassed: hold.inconclusiveDeadlinePassed)
            hold.measurements.append(measurement)
            effects += [.progress(.gate(measurement)), .saveMeasurement(measurement)]
            switch hold.gates[position].verdict {
            case .measuring:
                effects.append(
                    .startTimer(.gateDue(step: index, gate: name), after: hold.gates[position].gate.interval.duration))
            case .failed(let reason):
                hold.passed = false
                hold.failure = .gateFailed(reason)
                return effects + endHold(hold, at: now)
            case .passed:
                break
            }
        case .timer(.inconclusiveDeadline(index)):
            hold.inconclusiveDeadlinePassed = true
            phase = .holding(hold)
            return []
        case .judgeStarted(index):
            guard let judge = plan.judge(ofStep: index) else { return [] }
            return [.startTimer(.judgeDue(step: index), after: judge.interval.duration)]
        case .timer(.judgeDue(index)):
            return hold.judge?.decision == nil ? [.lookJudge(step: index)] : []
        case .timer(.judgeMaxWait(index)):
            hold.judge?.final = true
            phase = .holding(hold)
            return []
        case .judgeLooked(index, let observation):
            guard let spec = plan.judge(ofStep: index), var judge = hold.judge, judge.decision == nil else { return [] }
            let rules = JudgeRules(spec: spec)
            var (decision, score, rule) = rules.decide(observation.judgements, final: judge.final)
            // A split that does not send each colour its share biases every comparison: the
            // step ends as an invalid experiment, whatever the metrics say.
            let users = observation.ratios.first { $0.count == "users" }
            let checks = observation.ratios.compactMap { rules.sampleRatio($0, weight: hold.weight, users: users) }
            let mismatches = checks.filter(\.mismatch)
            if !mismatches.isEmpty, let threshold = spec.sampleRatio?.pValue {
                (decision, score) = (.invalid, nil)
                rule =
                    "sample ratio mismatch (p < \(formatNumber(threshold))): "
                    + mismatches.map(\.summary).joined(separator: "; ")
                    + ": the split does not send each colour its share, so no comparison of this step can be trusted"
            }
            var look = JudgeLook(
                at: observation.at, elapsed: observation.elapsed, metrics: observation.judgements, score: score,
                decision: decision, rule: rule)
            if spec.sampleRatio != nil { look.sampleRatio = checks }
            judge.looks.append(look)
            judge.consecutiveErrors =
                observation.judgements.allSatisfy { $0.error != nil } ? judge.consecutiveErrors + 1 : 0
            effects.append(.progress(.judge(look)))
            if decision != .undecided {
                (judge.decision, judge.rule) = (decision, rule)
            } else if judge.consecutiveErrors > 4 {
                (judge.decision, judge.rule) = (.fail, "Prometheus did not answer the judge's queries 5 times in a row")
            } else {
                effects.append(.startTimer(.judgeDue(step: index), after: spec.interval.duration))
            }
            hold.judge = judge
            switch judge.decision {
            case .invalid?:
                hold.passed = false
                hold.failure = .sampleRatioMismatch(judge.rule ?? "")
                return effects + endHold(hold, at: now)
            case .fail?:
                hold.passed = false
                hold.failure = .judgeFailed(rule: judge.rule ?? "")
                return effects + endHold(hold, at: now)
            case .inconclusive?:
                hold.passed = false
                hold.failure = .judgeInconclusive(rule: judge.rule ?? "")
                hold.holdWhenInconclusive = spec.onInconclusive == .hold
                return effects + endHold(hold, at: now)
            case .pass?, .undecided?, nil:
                break
            }
        case .timer(.watchDue(index)):
            return [.look(step: index, weight: hold.weight)]
        case .timer(.rollbackWebhookDue(index, let webhook)):
            return [.askWebhook(WebhookCall(webhook: webhook, phase: "Progressing", step: index))]
        case .webhookAnswered(let call, let answer) where call.step == index:
            let (answered, ends) = rollbackWebhookAnswered(&hold, call, answer, at: now)
            if ends { return answered + endHold(hold, at: now) }
            phase = .holding(hold)
            return answered
        case .looked(index, let look):
            guard var watch = hold.watch else { return [] }
            let decision = watch.decide(look)
            hold.watch = watch
            switch decision {
            case .hold:
                phase = .holding(hold)
                return [.startTimer(.watchDue(step: index), after: .seconds(1))]
            case .reapply(let why):
                hold.reapplying = Hold.Reapply(why: why, nginxRunning: look.nginxRunning)
                phase = .holding(hold)
                return [.reapply(step: index, weight: hold.weight)]
            case .targetLost(let why), .liveLost(let why):
                hold.passed = false
                hold.failure = .colourLost(why)
                hold.colourLost = true
                return [.record(.shift, why, at: now), .progress(.colourLost(detail: why))] + endHold(hold, at: now)
            }
        case .splitReapplied(index, let upstream, let replaced):
            guard let reapply = hold.reapplying else { return [] }
            hold.reapplying = nil
            let weights = "\(target) \(hold.weight)% / \(live?.color ?? "none") \(100 - hold.weight)%"
            let detail =
                reapply.nginxRunning
                ? "\(weights) again: \(reapply.why): upstream now \(upstream.map { "\($0.color) \($0.addresses.joined(separator: ", "))" }.joined(separator: "; "))"
                : "\(weights) again: \(reapply.why); a fresh nginx serves the step's split"
            phase = .holding(hold)
            return replacement(replaced, at: now) + [
                .record(.shift, detail, at: now), .progress(.splitReapplied(detail: detail)),
                .startTimer(.watchDue(step: index), after: .seconds(1)),
            ]
        case .splitNotReapplied(index, let error):
            guard let reapply = hold.reapplying else { return [] }
            hold.reapplying = nil
            let line = Effect.progress(.splitNotReapplied(why: reapply.why, error: error))
            if !reapply.nginxRunning {
                hold.passed = false
                hold.failure = .trafficSwitchLost(why: reapply.why, error: error)
                hold.colourLost = true
                return [line] + endHold(hold, at: now)
            }
            phase = .holding(hold)
            return [line, .startTimer(.watchDue(step: index), after: .seconds(1))]
        default:
            return []
        }
        return effects + endIfDone(hold, at: now)
    }

    /// Ends the step once its wait passed (or was cut short by `promote`, or the judge passed
    /// it), never before its gates have measured and its judge decided.
    private mutating func endIfDone(_ hold: Hold, at now: Date) -> [Effect] {
        let judged = hold.judge.map { $0.decision != nil } ?? true
        let waited = hold.waited || hold.skipWait || hold.judge?.decision == .pass
        if waited && hold.analysisFinished && (judged || hold.skipWait) { return endHold(hold, at: now) }
        phase = .holding(hold)
        return []
    }

    /// The step's hooks, queries and looks are stopped, and its record saved.
    private mutating func endHold(_ hold: Hold, at now: Date) -> [Effect] {
        var record = ReleaseRecord.RolloutRecord.Step(
            weight: hold.weight, startedOn: hold.startedOn, finishedOn: now, passed: hold.passed,
            measurements: hold.recordedMeasurements)
        if let judge = hold.judge, let decision = judge.decision {
            record.judge = judge.looks
            record.judgeDecision = decision
            record.judgeRule = judge.rule
        }
        phase = .closingStep(hold)
        return [.endStep(hold.step), .recordStep(record), .checkpoint]
    }

    private mutating func closingStep(_ hold: Hold, _ event: Event, at now: Date) -> [Effect] {
        switch event {
        case .saved:
            var effects: [Effect] = []
            if hold.passed {
                effects.append(
                    .announce(
                        .stepPassed(
                            step: hold.step + 1, steps: plan.steps.count, weight: hold.weight,
                            measurements: hold.recordedMeasurements,
                            note: hold.judge?.passedWithoutCritical)))
            } else if hold.stop == nil {
                effects.append(
                    .announce(
                        .gateFailed(
                            weight: hold.weight, failure: hold.failure?.description ?? "a gate failed",
                            measurements: hold.recordedMeasurements)))
            }
            for request in hold.requests {
                effects.append(
                    .record(
                        request == "abort" ? .abort : .promote, "orchestrate \(request) at \(hold.weight)%", at: now))
            }
            // A colour lost is an outage, not a verdict on the model: no operator is waited for.
            if hold.stop == nil && !hold.passed && !hold.colourLost && !hold.webhookRollback
                && (!plan.automaticRollback || hold.holdWhenInconclusive)
            {
                return effects + holdForDecision(hold, at: now)
            }
            return effects + afterVerdict(hold, at: now)
        case .journalSaveFailed:
            return rollBackOnError(nil, at: now)
        default:
            keep(event)
            return []
        }
    }

    /// What a step's verdict leads to: a rollback, the next step, `promote --full`, the promotion.
    private mutating func afterVerdict(_ hold: Hold, at now: Date) -> [Effect] {
        if let stop = hold.stop { return rollBack(stop, at: hold.weight, now: now) }
        if !hold.passed {
            return [.progress(.stepFailed(number: hold.step + 1, failure: hold.failure?.description ?? ""))]
                + rollBack(reason: hold.failure ?? .gateFailed("a gate failed"), outcome: .rolledBack, at: now)
        }
        if hold.promoteFull && hold.weight < 100 {
            phase = .promotingFully(hold, shifting: false)
            return [
                .record(.promote, "promote --full: \(target) to 100% now", at: now), .save(RunStateChange(weight: 100)),
                .checkpoint,
            ]
        }
        return beginStep(hold.step + 1, at: now, previous: hold)
    }

    // MARK: Holding for a decision

    /// Under `rollback.automatic: false` (a failed gate) or `judge.onInconclusive: hold`, traffic
    /// stays where it is until an operator decides: `abort` rolls back, `promote` goes on.
    private mutating func holdForDecision(_ hold: Hold, at now: Date) -> [Effect] {
        let failure = hold.failure?.description ?? "a gate failed"
        let why = hold.holdWhenInconclusive ? "judge.onInconclusive is hold" : "rollback.automatic is false"
        phase = .holdingForDecision(hold)
        return [
            .save(RunStateChange(phase: .holding)),
            .record(.hold, "\(failure); \(why): holding at \(hold.weight)%", at: now),
            .progress(.holding(failure: failure)),
            .progress(.holdingUntilDecided(why: why, target: target, weight: hold.weight)), .checkpoint,
        ]
    }

    private mutating func holdingForDecision(_ held: Hold, _ event: Event, at now: Date) -> [Effect] {
        switch event {
        case .saved:
            if let stop = takePendingStop() { return rollBack(stop, at: held.weight, now: now) }
            if let request = deferredRequest {
                deferredRequest = nil
                return holdingForDecision(held, .control(request), at: now)
            }
            return []
        case .signal(let signal):
            return rollBack(.interrupted(signal), at: held.weight, now: now)
        case .control(.abort):
            return rollBack(.aborted, at: held.weight, now: now)
        case .control(.promote), .control(.promoteFull):
            let failure = held.failure?.description ?? "a gate failed"
            var hold = held
            hold.passed = true
            hold.failure = nil
            return [
                .record(.promote, "orchestrate promote at \(hold.weight)% despite: \(failure)", at: now),
                .progress(.promotedDespite(failure: failure)),
                .save(RunStateChange(phase: .shifting)),
            ] + afterVerdict(hold, at: now)
        case .journalSaveFailed:
            return rollBackOnError(nil, at: now)
        default:
            return []
        }
    }

    private mutating func promotingFully(_ hold: Hold, shifting: Bool, _ event: Event, at now: Date) -> [Effect] {
        switch (event, shifting) {
        case (.saved, false):
            if let stop = takePendingStop() { return rollBack(stop, at: hold.weight, now: now) }
            phase = .promotingFully(hold, shifting: true)
            return [.shift(weight: 100)]
        case (.journalSaveFailed, false):
            return rollBackOnError(nil, at: now)
        case (.shiftApplied(100, let replaced), true):
            weight = 100
            return replacement(replaced, at: now) + beginPromotion(at: now)
        case (.shiftFailed(100, let error), true):
            return rollBack(reason: .trafficStepFailed(weight: 100, error: error), outcome: .rolledBack, at: now)
        default:
            keep(event)
            return []
        }
    }

    // MARK: The promotion and after

    /// `confirmed`: its confirm-promotion gates are open.
    mutating func beginPromotion(at now: Date, confirmed: Bool = false) -> [Effect] {
        if !confirmed { return gateThen(.confirmPromotion, next: .promotion, at: now) }
        phase = .promoting(committing: false)
        return [.checkpoint]
    }

    private mutating func promoting(committing: Bool, _ event: Event, at now: Date) -> [Effect] {
        switch (event, committing) {
        case (.saved, false):
            guard let deployed else { return rollBackOnError("nothing was deployed", at: now) }
            phase = .promoting(committing: true)
            return [
                .setLive(
                    LiveRelease(
                        color: target, releaseID: plan.releaseID, modelSHA256: deployed.modelSHA256,
                        modelVersion: deployed.modelVersion))
            ]
        case (.journalSaveFailed, false):
            return rollBackOnError(nil, at: now)
        case (.liveSaved, true):
            // The commit point: from here on, recovery converges forward, and the journal's
            // writes are best effort (the record the controller appends holds them all).
            let version = deployed?.modelVersion ?? ""
            return [
                .save(RunStateChange(phase: .draining)),
                .record(.promote, "\(target) is live with model \(version)", at: now),
                .progress(.promoted(target: target, modelVersion: version)),
                .announce(.promoted(color: target, modelVersion: version)),
            ] + postRolloutHook(0, at: now)
        case (.liveSaveFailed(let error), true):
            return rollBackOnError(error, at: now)
        default:
            keep(event)
            return []
        }
    }

    private mutating func postRolloutHook(_ index: Int, at now: Date) -> [Effect] {
        guard index < plan.hooks.postRollout.count else {
            return postRolloutWebhooks(phase: "Succeeded") + drain(at: now)
        }
        phase = .postRollout(hook: index)
        return [.runHook(.postRollout(index), plan.hooks.postRollout[index])]
    }

    private mutating func postRollout(_ index: Int, _ event: Event, at now: Date) -> [Effect] {
        guard case .hookFinished(.postRollout(index), let ok) = event else {
            keep(event)
            return []
        }
        let detail =
            "post-rollout \(shellQuoted(plan.hooks.postRollout[index])): \(ok ? "ok" : "failed (the release stays promoted)")"
        return [.record(.hook, detail, at: now)] + postRolloutHook(index + 1, at: now)
    }

    /// The old colour drains, then stops (`traffic.stopOld`); an abort meanwhile returns to it.
    private mutating func drain(at now: Date) -> [Effect] {
        guard let live, plan.stopOld else { return finish(.succeeded, nil) }
        let effects: [Effect] = [
            .progress(.draining(color: live.color, drain: "\(plan.drain)")),
            .record(.drain, "\(live.color) drains for \(plan.drain)", at: now),
        ]
        switch takePendingStop() {
        case .aborted?:
            return effects + beginReturn(at: now)
        case .interrupted(let signal)?:
            return effects + drainInterrupted(.interrupted(signal), at: now)
        case nil:
            phase = .draining
            return effects + [.startTimer(.drain, after: plan.drain.duration)]
        }
    }

    private mutating func drainInterrupted(_ stop: Stop, at now: Date) -> [Effect] {
        guard let live else { return finish(.succeeded, nil) }
        phase = .stoppingOld
        return [
            .record(.interrupt, "\(stop.description) during the drain: \(live.color) is stopped now", at: now),
            .stopColour(live.color),
        ]
    }

    private mutating func draining(_ event: Event, at now: Date) -> [Effect] {
        guard let live else { return [] }
        switch event {
        case .timer(.drain):
            phase = .stoppingOld
            return [.stopColour(live.color)]
        case .signal(let signal):
            return drainInterrupted(.interrupted(signal), at: now)
        case .control(.abort):
            return beginReturn(at: now)
        default:
            return []
        }
    }

    private mutating func stoppingOld(_ event: Event, at now: Date) -> [Effect] {
        guard let live else { return [] }
        switch event {
        case .colourStopped(live.color):
            return [.record(.stop, "\(live.color) stopped after the drain", at: now), .writeTargets]
                + finish(.succeeded, nil)
        case .colourStopFailed(live.color, let error):
            return fail(error)
        default:
            return []
        }
    }

    // MARK: An abort during the drain

    /// The old colour still runs, so the release is undone at once: `current.json` back to the
    /// previous release (the abort's commit point), traffic back on it, the new colour stopped.
    private mutating func beginReturn(at now: Date) -> [Effect] {
        guard let live else { return finish(.succeeded, nil) }
        let recorded = Effect.record(
            .abort, "orchestrate abort during the drain: returning to \(live.color) (release \(live.releaseID))",
            at: now)
        guard plan.trafficSwitch else { return [recorded] + cannotReturn(at: now) }
        phase = .returning(Return(stage: .locating))
        return [recorded, .locate(live.color, .running)]
    }

    private mutating func cannotReturn(at now: Date) -> [Effect] {
        guard let live else { return finish(.succeeded, nil) }
        return [
            .record(
                .abort, "\(live.color) is no longer running: the abort cannot return to it; \(target) stays live",
                at: now),
            .progress(.abortCannotReturn(previous: live.color, target: target)),
        ] + finish(.succeeded, nil)
    }

    private mutating func returning(_ state: Return, _ event: Event, at now: Date) -> [Effect] {
        guard let live else { return [] }
        let reason = RolloutFailure.Reason.abortedDuringDrain
        switch (state.stage, event) {
        case (.locating, .located(live.color)):
            phase = .returning(Return(stage: .committing))
            return [.setLive(live)]
        case (.locating, .notLocated(live.color)):
            return cannotReturn(at: now)
        case (.committing, .liveSaved):
            phase = .returning(Return(stage: .sending(since: now)))
            return [.save(RunStateChange(phase: .rollingBack)), .sendAllTraffic(to: live.color)]
        case (.committing, .liveSaveFailed(let error)):
            return [
                .record(
                    .abort, "current.json cannot be written back to \(live.releaseID) (\(error)): \(target) stays live",
                    at: now),
                .progress(.abortCannotWriteLive(release: live.releaseID, error: error, target: target)),
            ] + finish(.succeeded, nil)
        case (.sending(let since), .trafficSent(live.color, let replaced, _)):
            weight = 0
            let effects =
                replacement(replaced, at: now) + [
                    .record(.shift, "\(live.color) 100% (traffic restored)", at: since),
                    .progress(.returnedToPrevious(color: live.color, release: live.releaseID)),
                    .announce(.rolledBack(reason: reason.description, interrupted: false)),
                ]
            guard plan.stopNew else { return effects + finishReturn(reason) }
            phase = .returning(Return(stage: .stoppingTarget))
            return effects + [.stopColour(target)]
        case (.sending, .trafficNotSent(live.color, let error)):
            return fail(error)
        case (.stoppingTarget, .colourStopped(target)):
            return [.record(.stop, "\(target) stopped", at: now)] + finishReturn(reason)
        case (.stoppingTarget, .colourStopFailed(target, let error)):
            return fail(error)
        default:
            return []
        }
    }

    private mutating func finishReturn(_ reason: RolloutFailure.Reason) -> [Effect] {
        [.writeTargets, .clearDeployment] + finish(.rolledBack, reason)
    }
}
