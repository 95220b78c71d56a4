import Foundation
import OrchestratorSupport
import StrictYAML
import Testing

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// Every phase of a rollout × every event it can meet, on plain values: the machine with the
/// fakes of `RolloutFakes` (blue live, green new, steps 25/50/100, a gate, a judge, a hook of
/// each kind). Each case reaches its phase, meets its event, and checks the traffic in force,
/// what was done to the world, what the record gained, the outcome and the exit status.
@Suite struct RolloutMachineTableTests {
    enum Phase: String, CaseIterable, Sendable {
        case preRollout = "a pre-rollout hook running"
        case deploying = "the new colour deploying"
        case holding25 = "holding at 25%"
        case shifting50 = "putting 50% in force"
        case holding50 = "holding at 50%"
        case holding100 = "holding at 100%"
        case holdingForDecision = "holding for a decision at 25%"
        case confirming = "waiting for confirm-promotion at 100%"
        case holdingAfterShadow = "holding for a decision after a failed shadow stage"
        case rollingBack = "rolling back (its hook running)"
        case postRollout = "promoted (a post-rollout hook running)"
        case draining = "draining the old colour"
        case done = "done (rolled back)"
    }

    enum Incoming: String, CaseIterable, Sendable {
        case gatePasses = "a gate passes"
        case gateFails = "a gate fails"
        case metricsSourceAway = "Prometheus away (a query error)"
        case judgePasses = "the judge passes"
        case judgeFails = "the judge fails"
        case judgeInconclusive = "the judge is inconclusive"
        case splitSkewed = "the judge passes on a skewed split (sample ratio mismatch)"
        case abort = "orchestrate abort"
        case promote = "orchestrate promote"
        case promoteFull = "orchestrate promote --full"
        case sigterm = "SIGTERM"
        case secondSignal = "SIGTERM, then SIGINT"
        case targetLost = "the new colour lost"
        case liveLost = "the live colour lost"
        case engineAway = "the engine away (last addresses answer)"
        case journalSaveFailed = "a save fails (disk full)"
        case stepWaitElapsed = "the step's wait passes"
        case drainElapsed = "the drain passes"
        case deployFinished = "the deploy answers healthy"
        case deployFailed = "the deploy fails"
        case hookFailed = "the running hook fails"
        case shiftFailed = "nginx refuses the split"
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var phase: Phase
        var incoming: Incoming
        var testDescription: String { "\(phase.rawValue): \(incoming.rawValue)" }
    }

    static let cases = Phase.allCases.flatMap { phase in Incoming.allCases.map { Case(phase: phase, incoming: $0) } }

    /// What a case leaves behind.
    struct Expected {
        var phase: String
        var split: [String: Int]
        var world: [String] = []
        var recorded: [RolloutEvent.Kind] = []
        var outcome: ReleaseOutcome? = nil
        var failure: String? = nil
        var exit: Int32? = nil
    }

    @Test(arguments: cases)
    func aPhaseMeetsAnEvent(_ example: Case) async throws {
        let harness = RolloutHarness(plan: Self.plan(example.phase))
        await Self.reach(example.phase, harness)
        let effectsBefore = harness.log.count
        let recordedBefore = harness.recorded.count
        Self.prepare(example.incoming, harness)
        await harness.send(Self.events(example.incoming, harness))
        if example.incoming != .secondSignal { await Self.epilogue(example.phase, harness) }

        let expected = Self.expected(example.phase, example.incoming)
        #expect(harness.phaseName == expected.phase)
        #expect(harness.split == expected.split, "the traffic in force")
        #expect(RolloutHarness.world(Array(harness.log[effectsBefore...])) == expected.world)
        #expect(
            harness.recorded[recordedBefore...].map(\.kind) == expected.recorded,
            "\(harness.recorded[recordedBefore...].map(\.detail))")
        switch harness.machine.ending {
        case .finished(let outcome, let failure)?:
            #expect(outcome == expected.outcome)
            if let wanted = expected.failure {
                #expect(
                    failure?.description.contains(wanted) == true,
                    "\(failure.map(String.init(describing:)) ?? "no failure")")
            }
        case .failed(let error)?:
            Issue.record("ended on an error: \(error)")
        case nil:
            #expect(expected.outcome == nil, "still running")
        }
        // A second signal makes the service exit at once (ReleaseService), leaving the state to recovery.
        let exit =
            example.incoming == .secondSignal
            ? ExitStatus.interrupted(by: SIGINT)
            : harness.machine.ending.flatMap { RolloutMachine.exitStatus($0, signal: harness.machine.signal) }
        #expect(exit == expected.exit)
    }

    @Test func theTableCoversEveryPhaseAndEvent() {
        #expect(Self.cases.count == Phase.allCases.count * Incoming.allCases.count)
        #expect(Self.cases.count >= 100)
    }

    // MARK: Getting to a phase

    /// The fakes' plan; the phases that wait for a decision run under `rollback.automatic: false`,
    /// the one after the shadow stage with `ShadowStageTests.spec` as its shadow stage, the one
    /// waiting for confirm-promotion with that webhook gate.
    static func plan(_ phase: Phase) -> RolloutMachine.Plan {
        var plan = FakePlan.plan(automaticRollback: phase != .holdingForDecision && phase != .holdingAfterShadow)
        if phase == .confirming {
            plan.webhooks = [WebhookGate(name: "go", kind: .confirmPromotion, url: "http://127.0.0.1:9/go")]
        }
        if phase == .holdingAfterShadow { plan.shadow = ShadowStageTests.spec }
        return plan
    }

    static func reach(_ phase: Phase, _ harness: RolloutHarness) async {
        switch phase {
        case .preRollout:
            harness.heldHooks = [.preRollout(0)]
            await harness.send(.start)
        case .deploying:
            harness.holdDeploys = true
            await harness.send(.start)
        case .holding25:
            await harness.send(.start)
        case .shifting50:
            await harness.send(.start)
            harness.holdShifts = true
            await harness.passStep()
        case .holding50:
            await harness.send(.start)
            await harness.passStep()
        case .holding100:
            await harness.send(.start)
            await harness.passStep()
            await harness.passStep()
        case .holdingForDecision:
            await harness.send(.start)
            await harness.send(.gateSample(step: 0, gate: FakePlan.gate.name, .value(0.5), at: harness.clock.now()))
        case .confirming:
            await harness.send(.start)
            for _ in 0..<3 { await harness.passStep() }
            // The receiver says no: asked again after its interval.
            let call = RolloutMachine.WebhookCall(webhook: 0, phase: "Promoting", round: 1)
            await harness.send(.webhookAnswered(call, .status(503)))
        case .holdingAfterShadow:
            await harness.send(.start)
            harness.traffic.state.update {
                $0.shadowCounts.append(.success(ShadowStageTests.counts(compared: 50, rbo: 0.02)))
            }
            await harness.send(.timer(.shadowDue))
            await harness.answer { $0 == .lookShadow }
        case .rollingBack:
            harness.heldHooks = [.onRollback(0)]
            await harness.send(.start)
            await harness.passStep()
            await harness.send(.gateSample(step: 1, gate: FakePlan.gate.name, .value(0.5), at: harness.clock.now()))
        case .postRollout:
            harness.heldHooks = [.postRollout(0)]
            await harness.send(.start)
            for _ in 0..<3 { await harness.passStep() }
        case .draining:
            await harness.send(.start)
            for _ in 0..<3 { await harness.passStep() }
        case .done:
            await harness.send(.start)
            await harness.passStep()
            await harness.send(.gateSample(step: 1, gate: FakePlan.gate.name, .value(0.5), at: harness.clock.now()))
        }
        precondition(harness.phaseName == baseline(phase).phaseBefore, "\(phase): reached \(harness.phaseName)")
    }

    /// What is true of the world when the event comes.
    static func prepare(_ incoming: Incoming, _ harness: RolloutHarness) {
        switch incoming {
        case .targetLost: harness.runtime.state.update { _ = $0.running.remove("green") }
        case .liveLost: harness.runtime.state.update { _ = $0.running.remove("blue") }
        case .journalSaveFailed:
            harness.journal.state.update {
                $0.diskFull = "No space left on device"; $0.saveFailure = "No space left on device"
            }
        case .secondSignal: harness.heldHooks.insert(.onRollback(0))
        default: break
        }
    }

    static func events(_ incoming: Incoming, _ harness: RolloutHarness) -> [RolloutMachine.Event] {
        let step = harness.step
        let now = harness.clock.now()
        let weight = [25, 50, 100][min(step, 2)]
        let live: StepWatch.Colour? = weight < 100 ? .serving(["127.0.0.1:1"]) : nil
        func judge(
            _ engagement: MetricJudgement.Classification, _ latency: MetricJudgement.Classification
        ) -> RolloutMachine.Event {
            .judgeLooked(step: step, .init(judgements: FakePlan.judgements(engagement, latency), elapsed: 4, at: now))
        }
        func look(target: StepWatch.Colour, live: StepWatch.Colour?) -> RolloutMachine.Event {
            .looked(step: step, StepWatch.Look(nginxRunning: true, target: target, live: live, upstream: [:]))
        }
        switch incoming {
        case .gatePasses: return [.gateSample(step: step, gate: FakePlan.gate.name, .value(0.01), at: now)]
        case .gateFails: return [.gateSample(step: step, gate: FakePlan.gate.name, .value(0.5), at: now)]
        case .metricsSourceAway:
            return [.gateSample(step: step, gate: FakePlan.gate.name, .error("connection refused"), at: now)]
        case .judgePasses: return [judge(.pass, .pass)]
        case .judgeFails: return [judge(.low, .pass)]
        case .judgeInconclusive: return [judge(.pass, .low)]
        case .splitSkewed:
            // 15 % of the users, at 25 % and at 50 %: far from either.
            return [
                .judgeLooked(
                    step: step,
                    .init(
                        judgements: FakePlan.judgements(.pass, .pass), elapsed: 4, at: now,
                        ratios: FakePlan.users(new: 150, live: 850)))
            ]
        case .abort: return [.control(.abort)]
        case .promote: return [.control(.promote)]
        case .promoteFull: return [.control(.promoteFull)]
        case .sigterm: return [.signal(SIGTERM)]
        case .secondSignal: return [.signal(SIGTERM), .signal(SIGINT)]
        case .targetLost: return [look(target: .gone, live: live)]
        case .liveLost: return [look(target: .serving(["127.0.0.1:2"]), live: .gone)]
        case .engineAway: return [look(target: .serving(["127.0.0.1:2"]), live: live)]
        case .journalSaveFailed: return [.journalSaveFailed("No space left on device")]
        case .stepWaitElapsed: return [.timer(.stepWait(step: step))]
        case .drainElapsed: return [.timer(.drain)]
        case .deployFinished: return [.deployed(FakeRuntime.instance("green"))]
        case .deployFailed: return [.deployFailed(color: "green", error: "exited at start")]
        case .hookFailed:
            let hook: RolloutMachine.Hook =
                switch harness.machine.phase {
                case .holding: .duringStep(step: step, 0)
                case .rollingBack: .onRollback(0)
                case .postRollout: .postRollout(0)
                default: .preRollout(0)
                }
            return [.hookFinished(hook, succeeded: false)]
        case .shiftFailed: return [.shiftFailed(weight: 50, error: "nginx refused the split")]
        }
    }

    /// What was waiting when the event came is answered, so that what the event left pending shows.
    static func epilogue(_ phase: Phase, _ harness: RolloutHarness) async {
        switch phase {
        case .shifting50: await harness.answer { if case .shift = $0 { true } else { false } }
        case .rollingBack: await harness.answer { $0 == .runHook(.onRollback(0), ["notify.sh"]) }
        case .postRollout: await harness.answer { $0 == .runHook(.postRollout(0), ["post.sh"]) }
        default: break
        }
    }

    // MARK: What each case leaves

    static let blue = ["blue": 100]
    static let green = ["green": 100]

    /// A phase's state before the event, and what an event it ignores leaves (with its epilogue).
    static func baseline(_ phase: Phase) -> (phaseBefore: String, ignored: Expected) {
        switch phase {
        case .preRollout: ("pre-rollout hooks", Expected(phase: "pre-rollout hooks", split: blue))
        case .deploying: ("deploying", Expected(phase: "deploying", split: blue))
        case .holding25: ("holding", Expected(phase: "holding", split: ["blue": 75, "green": 25]))
        case .shifting50:
            (
                "stepping",
                Expected(
                    phase: "holding", split: ["blue": 50, "green": 50], world: ["run during-step hook"],
                    recorded: [.shift])
            )
        case .holding50: ("holding", Expected(phase: "holding", split: ["blue": 50, "green": 50]))
        case .holding100: ("holding", Expected(phase: "holding", split: green))
        case .holdingForDecision:
            ("holding for a decision", Expected(phase: "holding for a decision", split: ["blue": 75, "green": 25]))
        case .confirming: ("confirming", Expected(phase: "confirming", split: green))
        case .holdingAfterShadow:
            (
                "holding after the shadow stage",
                Expected(phase: "holding after the shadow stage", split: ["blue": 100, "green": 0])
            )
        case .rollingBack:
            (
                "rolling back",
                Expected(
                    phase: "done", split: blue, world: ["finish rolled_back"], recorded: [.hook], outcome: .rolledBack,
                    failure: "gate error-rate: 0.5000 is not <= 0.05",
                    exit: 1)
            )
        case .postRollout: ("post-rollout hooks", Expected(phase: "draining", split: green, recorded: [.hook, .drain]))
        case .draining: ("draining", Expected(phase: "draining", split: green))
        case .done:
            (
                "done",
                Expected(
                    phase: "done", split: blue, outcome: .rolledBack, failure: "gate error-rate: 0.5000 is not <= 0.05",
                    exit: 1)
            )
        }
    }

    /// A rollback from a step: the step ended, traffic back on blue, green stopped, the hook run.
    static func rolledBack(
        step: Int?, before: [RolloutEvent.Kind] = [], _ outcome: ReleaseOutcome = .rolledBack, failure: String,
        after: [RolloutEvent.Kind] = [],
        exit: Int32 = 1
    ) -> Expected {
        let first: RolloutEvent.Kind = outcome == .interrupted ? .interrupt : .rollback
        return Expected(
            phase: "done", split: blue,
            world: (step.map { ["end step \($0)"] } ?? []) + [
                "send all to blue", "stop green", "run on-rollback hook", "finish \(outcome.rawValue)",
            ],
            recorded: before + [first, .shift, .stop, .hook] + after, outcome: outcome, failure: failure, exit: exit)
    }

    /// The same, cut short by a second signal while the on-rollback hook runs.
    static func cutShort(step: Int?, before: [RolloutEvent.Kind] = []) -> Expected {
        Expected(
            phase: "rolling back", split: blue,
            world: (step.map { ["end step \($0)"] } ?? []) + [
                "send all to blue", "stop green", "run on-rollback hook",
            ],
            recorded: before + [.interrupt, .shift, .stop], exit: ExitStatus.interrupted(by: SIGINT))
    }

    /// The live colour lost during a step: all traffic on green, blue redeployed, traffic back on it.
    static func liveRestored(step: Int?, before: [RolloutEvent.Kind], failure: String) -> Expected {
        Expected(
            phase: "done", split: blue,
            world: (step.map { ["end step \($0)"] } ?? []) + [
                "send all to green", "deploy blue", "send all to blue", "stop green", "run on-rollback hook",
                "finish rolled_back",
            ],
            recorded: before + [.rollback, .shift, .deploy, .healthy, .shift, .stop, .hook], outcome: .rolledBack,
            failure: failure, exit: 1)
    }

    static let unsaved = "the controller's state could not be saved (No space left on device)"

    static func expected(_ phase: Phase, _ incoming: Incoming) -> Expected {
        let ignored = baseline(phase).ignored
        switch (phase, incoming) {
        // A pre-rollout hook running: a stop cancels it, nothing was changed.
        case (.preRollout, .abort):
            return Expected(
                phase: "done", split: blue, world: ["cancel pre-rollout hook", "finish rolled_back"],
                recorded: [.abort], outcome: .rolledBack,
                failure: "aborted by orchestrate abort before the deploy; nothing was changed", exit: 1)
        case (.preRollout, .sigterm), (.preRollout, .secondSignal):
            return Expected(
                phase: "done", split: blue, world: ["cancel pre-rollout hook", "finish interrupted"],
                recorded: [.interrupt], outcome: .interrupted,
                failure: "interrupted by SIGTERM before the deploy; nothing was changed",
                exit: incoming == .sigterm ? 143 : 130)
        case (.preRollout, .hookFailed):
            return Expected(
                phase: "done", split: blue, world: ["finish failed"], recorded: [.hook], outcome: .failed,
                failure: "pre-rollout hook pre.sh failed; nothing was changed", exit: 1)

        // Deploying: a stop cancels the deploy and stops green; traffic was never moved.
        case (.deploying, .abort):
            return Expected(
                phase: "done", split: blue, world: ["cancel deploy", "stop green", "finish rolled_back"],
                recorded: [.abort], outcome: .rolledBack,
                failure: "aborted by orchestrate abort while deploying; traffic was not moved", exit: 1)
        case (.deploying, .sigterm), (.deploying, .secondSignal):
            return Expected(
                phase: "done", split: blue, world: ["cancel deploy", "stop green", "finish interrupted"],
                recorded: [.interrupt], outcome: .interrupted,
                failure: "interrupted by SIGTERM while deploying; traffic was not moved",
                exit: incoming == .sigterm ? 143 : 130)
        case (.deploying, .deployFinished):
            return Expected(
                phase: "holding", split: ["blue": 75, "green": 25], world: ["shift 25", "run during-step hook"],
                recorded: [.healthy, .shift])
        case (.deploying, .deployFailed):
            return Expected(
                phase: "done", split: blue, world: ["stop green", "finish failed"], recorded: [.stop], outcome: .failed,
                failure: "deploy of green failed before any traffic moved: exited at start", exit: 1)

        // Holding a step: a failed gate or judge, a lost colour, a stop or a save that fails rolls back.
        case (.holding25, .gateFails), (.holding50, .gateFails), (.holding100, .gateFails):
            return rolledBack(
                step: phase.step, failure: "gate error-rate: 0.5000 is not <= 0.05 (query: rate{color=\"green\"})")
        case (.holding25, .metricsSourceAway), (.holding50, .metricsSourceAway), (.holding100, .metricsSourceAway):
            return rolledBack(step: phase.step, failure: "gate error-rate: 1 query errors in a row: connection refused")
        case (.holding25, .judgeFails), (.holding50, .judgeFails):
            return rolledBack(step: phase.step, failure: "judge: critical metric engagement is Low")
        case (.holding25, .judgeInconclusive), (.holding50, .judgeInconclusive):
            return rolledBack(
                step: phase.step, failure: "judge: inconclusive: score 50 (pass ≥ 90, marginal ≥ 40): inconclusive")
        case (.holding25, .splitSkewed), (.holding50, .splitSkewed):
            return rolledBack(
                step: phase.step,
                failure:
                    "invalid experiment: sample ratio mismatch (p < 0.001): users: new 15.0 % of 1000 (150 new, 850 live), expected \(phase.weight).0 %",
                exit: ExitStatus.invalidExperiment)
        case (.holding25, .abort), (.holding50, .abort), (.holding100, .abort):
            return rolledBack(step: phase.step, before: [.abort], failure: "aborted by orchestrate abort")
        case (.holding25, .sigterm), (.holding50, .sigterm), (.holding100, .sigterm):
            return rolledBack(
                step: phase.step, .interrupted, failure: "interrupted by SIGTERM at \(phase.weight)%", exit: 143)
        case (.holding25, .secondSignal), (.holding50, .secondSignal), (.holding100, .secondSignal):
            return cutShort(step: phase.step)
        case (.holding25, .targetLost), (.holding50, .targetLost), (.holding100, .targetLost):
            return rolledBack(step: phase.step, before: [.shift], failure: "green stopped running at \(phase.weight)%")
        case (.holding25, .liveLost), (.holding50, .liveLost):
            return liveRestored(
                step: phase.step, before: [.shift], failure: "the live colour blue stopped running at \(phase.weight)%")
        case (.holding25, .journalSaveFailed), (.holding50, .journalSaveFailed), (.holding100, .journalSaveFailed):
            return rolledBack(step: phase.step, failure: unsaved)

        // Putting 50% in force: a stop waits for the split, then rolls back from it.
        case (.shifting50, .abort):
            return rolledBack(step: 2, before: [.shift, .abort], failure: "aborted by orchestrate abort")
        case (.shifting50, .sigterm):
            return rolledBack(
                step: 2, before: [.shift], .interrupted, failure: "interrupted by SIGTERM at 50%", exit: 143)
        case (.shifting50, .secondSignal):
            return Expected(phase: "stepping", split: ["blue": 75, "green": 25], exit: 130)
        case (.shifting50, .liveLost):
            // nginx cannot keep a share on a colour that does not run: the step's split fails.
            return liveRestored(
                step: nil, before: [], failure: "traffic step 50% failed: the live colour blue is not running")
        case (.shifting50, .journalSaveFailed):
            return rolledBack(step: 2, before: [.shift], failure: unsaved)
        case (.shifting50, .shiftFailed):
            return rolledBack(step: nil, failure: "traffic step 50% failed: nginx refused the split")

        // Holding for a decision: abort rolls back, promote goes on to the next step.
        case (.holdingForDecision, .abort):
            return rolledBack(step: nil, failure: "aborted by orchestrate abort")
        case (.holdingForDecision, .promote), (.holdingForDecision, .promoteFull):
            return Expected(
                phase: "holding", split: ["blue": 50, "green": 50], world: ["shift 50", "run during-step hook"],
                recorded: [.promote, .shift])
        case (.holdingForDecision, .sigterm):
            return rolledBack(step: nil, .interrupted, failure: "interrupted by SIGTERM at 25%", exit: 143)
        case (.holdingForDecision, .secondSignal):
            return cutShort(step: nil)
        case (.holdingForDecision, .journalSaveFailed):
            return rolledBack(step: nil, failure: unsaved)

        // Waiting for confirm-promotion at 100 %: approve or promote goes on to the promotion; a
        // stop or a save that fails rolls back from 100 %; the step's events are over.
        case (.confirming, .promote), (.confirming, .promoteFull):
            return Expected(
                phase: "draining", split: green, world: ["commit green", "run post-rollout hook"],
                recorded: [.webhook, .promote, .hook, .drain])
        case (.confirming, .abort):
            return rolledBack(step: nil, before: [.abort], failure: "aborted by orchestrate abort")
        case (.confirming, .sigterm):
            return rolledBack(step: nil, .interrupted, failure: "interrupted by SIGTERM at 100%", exit: 143)
        case (.confirming, .secondSignal):
            return cutShort(step: nil)
        case (.confirming, .journalSaveFailed):
            return rolledBack(step: nil, failure: unsaved)

        // Holding after a failed shadow stage: as after a failed step, abort rolls back and promote
        // goes on (to step 1); no user was on green.
        case (.holdingAfterShadow, .abort):
            return rolledBack(step: nil, failure: "aborted by orchestrate abort")
        case (.holdingAfterShadow, .promote), (.holdingAfterShadow, .promoteFull):
            return Expected(
                phase: "holding", split: ["blue": 75, "green": 25], world: ["shift 25", "run during-step hook"],
                recorded: [.promote, .shift])
        case (.holdingAfterShadow, .sigterm):
            return rolledBack(step: nil, .interrupted, failure: "interrupted by SIGTERM at 0%", exit: 143)
        case (.holdingAfterShadow, .secondSignal):
            return cutShort(step: nil)
        case (.holdingAfterShadow, .journalSaveFailed):
            return rolledBack(step: nil, failure: unsaved)

        // Rolling back: nothing turns it; a signal only changes the exit status.
        case (.rollingBack, .sigterm):
            var expected = ignored
            expected.exit = 143
            return expected
        case (.rollingBack, .secondSignal):
            return Expected(phase: "rolling back", split: blue, exit: 130)

        // Promoted: a stop waits for the hook, then acts on the drain.
        case (.postRollout, .abort):
            return Expected(
                phase: "done", split: blue,
                world: ["commit blue", "send all to blue", "stop green", "finish rolled_back"],
                recorded: [.hook, .drain, .abort, .shift, .stop], outcome: .rolledBack,
                failure: "aborted by orchestrate abort during the drain", exit: 1)
        case (.postRollout, .sigterm):
            return Expected(
                phase: "done", split: green, world: ["stop blue", "finish succeeded"],
                recorded: [.hook, .drain, .interrupt, .stop], outcome: .succeeded,
                exit: 143)
        case (.postRollout, .secondSignal):
            return Expected(phase: "post-rollout hooks", split: green, exit: 130)

        // Draining: abort returns to blue; a signal or the drain's end stops blue now.
        case (.draining, .abort):
            return Expected(
                phase: "done", split: blue,
                world: ["commit blue", "send all to blue", "stop green", "finish rolled_back"],
                recorded: [.abort, .shift, .stop],
                outcome: .rolledBack, failure: "aborted by orchestrate abort during the drain", exit: 1)
        case (.draining, .sigterm), (.draining, .secondSignal):
            return Expected(
                phase: "done", split: green, world: ["stop blue", "finish succeeded"], recorded: [.interrupt, .stop],
                outcome: .succeeded,
                exit: incoming == .sigterm ? 143 : 130)
        case (.draining, .drainElapsed):
            return Expected(
                phase: "done", split: green, world: ["stop blue", "finish succeeded"], recorded: [.stop],
                outcome: .succeeded, exit: 0)

        // Done: nothing changes; a signal while the record is appended exits 128 + it.
        case (.done, .sigterm):
            var expected = ignored
            expected.exit = 143
            return expected
        case (.done, .secondSignal):
            var expected = ignored
            expected.exit = 130
            return expected

        default:
            // Ignored: a step's gates, judge and looks outside their step, requests that wait
            // for the next step, `promote` while the gates have not measured yet, the live
            // colour lost at 100 % (it gets no traffic), the engine away while the last
            // addresses answer, a save that fails after the commit point.
            var expected = ignored
            if incoming == .secondSignal { expected.exit = 130 }
            return expected
        }
    }
}

extension RolloutMachineTableTests.Phase {
    /// The step held (1-based), for the effects' names.
    var step: Int? {
        switch self {
        case .holding25: 1
        case .holding50: 2
        case .holding100: 3
        default: nil
        }
    }

    var weight: Int {
        switch self {
        case .holding50, .shifting50: 50
        case .holding100: 100
        default: 25
        }
    }
}
