import Foundation
import StrictYAML

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// Drives the machine as `RolloutRunner` does, with the same `RolloutEffects` against the fakes,
/// but one event at a time: what takes time (a look, a query, a timer, a during-step hook, and
/// whatever the test holds) waits in `pending` until the test answers it, so every case is
/// deterministic and takes microseconds.
final class RolloutHarness {
    var machine: RolloutMachine
    let traffic: FakeTrafficSwitch
    let runtime: FakeRuntime
    let metrics = FakeMetricsSource()
    let clock = FakeClock()
    let journal = FakeJournal()
    let notifier = FakeNotifier()
    let hooks = FakeHooks()
    let control = FakeControl()
    let webhooks = FakeWebhooks()
    let effects: RolloutEffects

    /// Effects that take time, not answered yet.
    private(set) var pending: [RolloutMachine.Effect] = []
    /// Every effect the machine asked for, in order.
    private(set) var log: [RolloutMachine.Effect] = []
    /// Deploys, hooks and steps' splits the harness leaves pending instead of answering at once.
    var holdDeploys = false
    var heldHooks: Set<RolloutMachine.Hook> = []
    var holdShifts = false

    init(plan: RolloutMachine.Plan = FakePlan.plan()) {
        machine = RolloutMachine(plan: plan)
        runtime = FakeRuntime(running: plan.live.map { [$0.color] } ?? [], storedModels: [FakePlan.liveModel])
        traffic = FakeTrafficSwitch(target: plan.target, live: plan.live?.color, runtime: runtime)
        effects = RolloutEffects(
            plan: plan,
            ports: RolloutPorts(
                traffic: traffic, runtime: runtime, metrics: metrics, clock: clock, journal: journal,
                notifier: notifier, hooks: hooks, control: control, webhooks: webhooks))
    }

    /// Sends `event` and everything it leads to that the harness answers by itself.
    func send(_ event: RolloutMachine.Event) async {
        answered(by: event)
        var queue = [event]
        while !queue.isEmpty {
            let next = queue.removeFirst()
            for effect in machine.handle(next, at: clock.now()) {
                log.append(effect)
                queue += await carryOut(effect)
            }
        }
    }

    func send(_ events: [RolloutMachine.Event]) async {
        for event in events { await send(event) }
    }

    /// Carries out a pending effect (a held hook, deploy or split) and sends what it answers.
    func answer(where matches: (RolloutMachine.Effect) -> Bool) async {
        guard let index = pending.firstIndex(where: matches) else { return }
        let effect = pending.remove(at: index)
        for event in await effects.perform(effect).events { await send(event) }
    }

    /// Whether an effect is waiting for its answer.
    func isPending(_ matches: (RolloutMachine.Effect) -> Bool) -> Bool { pending.contains(where: matches) }

    private func carryOut(_ effect: RolloutMachine.Effect) async -> [RolloutMachine.Event] {
        switch effect {
        case .cancelDeploy:
            pending.removeAll { RolloutRunner.scope(of: $0) == .deploy }
        case .cancelHook(let hook):
            pending.removeAll { RolloutRunner.scope(of: $0) == .hook(hook) }
        case .endStep(let step):
            pending.removeAll { RolloutRunner.scope(of: $0) == .step(step) }
        case .endShadow:
            pending.removeAll { RolloutRunner.scope(of: $0) == .shadow }
        case .startTimer(.rollbackPause, _):
            return [.timer(.rollbackPause)]
        case .startTimer, .look, .sampleGate, .lookJudge, .lookShadow, .runHook(.duringStep, _), .askWebhook:
            pending.append(effect)
        case .runHook(let hook, _) where heldHooks.contains(hook):
            pending.append(effect)
        case .deploy where holdDeploys, .shift where holdShifts:
            pending.append(effect)
        default:
            return await effects.perform(effect).events
        }
        return []
    }

    /// An event the test sends stands for the answer to the pending effect it answers.
    private func answered(by event: RolloutMachine.Event) {
        pending.removeAll { effect in
            switch (effect, event) {
            case (.shift(let weight), .shiftApplied(let applied, _)),
                (.shift(let weight), .shiftFailed(let applied, _)):
                weight == applied
            case (.deploy(let color, _), .deployed(let instance)): color == instance.color
            case (.deploy(let color, _), .deployFailed(let failed, _)): color == failed
            case (.runHook(let hook, _), .hookFinished(let finished, _)): hook == finished
            case (.startTimer(let timer, _), .timer(let fired)): timer == fired
            case (.sampleGate(let step, let gate), .gateSample(let sampled, let name, _, _)):
                step == sampled && gate == name
            case (.look(let step, _), .looked(let looked, _)): step == looked
            case (.lookJudge(let step), .judgeLooked(let looked, _)): step == looked
            case (.lookShadow, .shadowLooked): true
            case (.askWebhook(let call), .webhookAnswered(let answered, _)): call == answered
            default: false
            }
        }
    }

    // MARK: Reading what happened

    var recorded: [RolloutEvent] { journal.state.get().events }
    var split: [String: Int] { traffic.split }

    /// The step the machine is at (0 before any).
    var step: Int {
        switch machine.phase {
        case .stepping(let step, _): step
        case .holding(let hold), .closingStep(let hold), .holdingForDecision(let hold), .promotingFully(let hold, _):
            hold.step
        default: 0
        }
    }

    var phaseName: String {
        switch machine.phase {
        case .idle: "idle"
        case .beginning: "beginning"
        case .preRollout: "pre-rollout hooks"
        case .deploying: "deploying"
        case .shadowing: "shadowing"
        case .holdingAfterShadow: "holding after the shadow stage"
        case .stepping: "stepping"
        case .holding: "holding"
        case .closingStep: "closing a step"
        case .holdingForDecision: "holding for a decision"
        case .confirming: "confirming"
        case .promotingFully: "promoting fully"
        case .promoting: "promoting"
        case .postRollout: "post-rollout hooks"
        case .draining: "draining"
        case .stoppingOld: "stopping the old colour"
        case .returning: "returning"
        case .rollingBack: "rolling back"
        case .done: "done"
        }
    }

    /// What the effects did to the world (traffic, colours, hooks, the commit point, the end),
    /// one line each; the journal, progress, timers and looks are left out.
    static func world(_ effects: [RolloutMachine.Effect]) -> [String] {
        effects.compactMap { effect in
            switch effect {
            case .shift(let weight): "shift \(weight)"
            case .sendAllTraffic(let color): "send all to \(color)"
            case .stopTrafficSwitch: "stop nginx"
            case .reapply(_, let weight): "reapply \(weight)"
            case .deploy(let color, _): "deploy \(color)"
            case .stopColour(let color), .stopColourQuietly(let color): "stop \(color)"
            case .runHook(let hook, _): "run \(name(hook))"
            case .cancelHook(let hook): "cancel \(name(hook))"
            case .cancelDeploy: "cancel deploy"
            case .endStep(let step): "end step \(step + 1)"
            case .setLive(let live): "commit \(live.color)"
            case .finish(.finished(let outcome, _)): "finish \(outcome.rawValue)"
            case .finish(.failed): "finish with an error"
            default: nil
            }
        }
    }

    static func name(_ hook: RolloutMachine.Hook) -> String {
        switch hook {
        case .preRollout: "pre-rollout hook"
        case .duringStep: "during-step hook"
        case .postRollout: "post-rollout hook"
        case .onRollback: "on-rollback hook"
        }
    }

    // MARK: Getting somewhere

    /// The step's gate passes and its judge (if it judges) passes; at 100 % its wait passes.
    func passStep() async {
        let step = self.step
        await send(.gateSample(step: step, gate: FakePlan.gate.name, .value(0.01), at: clock.now()))
        if case .holding(let hold) = machine.phase, hold.judge != nil {
            await send(
                .judgeLooked(
                    step: step, .init(judgements: FakePlan.judgements(.pass, .pass), elapsed: 2, at: clock.now())))
        } else {
            await send(.timer(.stepWait(step: step)))
        }
    }
}
