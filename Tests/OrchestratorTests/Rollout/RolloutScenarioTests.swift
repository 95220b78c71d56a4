import Foundation
import StrictYAML
import Testing

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// Whole rollouts, several events each, through the machine and the fakes: what the record, the
/// traffic, the observers and people get, word for word where it matters.
@Suite struct RolloutScenarioTests {
    static func lines(_ harness: RolloutHarness) -> [String] { harness.notifier.lines.get().map(\.text) }

    @Test func aWholeRolloutIsPromotedStepByStepThenTheOldColourDrainsAndStops() async throws {
        let harness = RolloutHarness()
        await harness.send(.start)
        for _ in 0..<3 { await harness.passStep() }
        #expect(harness.phaseName == "draining")
        await harness.send(.timer(.drain))

        #expect(harness.machine.ending?.recorded == RecordedEnding(.succeeded, failure: nil))
        #expect(RolloutMachine.exitStatus(try #require(harness.machine.ending), signal: nil) == 0)
        #expect(harness.split == ["green": 100])
        #expect(harness.runtime.state.get().running == ["green"], "blue stopped after the drain")
        #expect(
            harness.journal.state.get().live
                == LiveRelease(color: "green", releaseID: "rel-2", modelSHA256: FakePlan.newModel, modelVersion: "v2"))
        #expect(
            harness.recorded.map(\.detail) == [
                "live blue, releasing to green", "pre-rollout pre.sh: ok", "starting green",
                "green answers /health at 127.0.0.1:2 (model v2)",
                "green 25% / blue 75%", "green 50% / blue 50%", "green 100% / blue 0%", "green is live with model v2",
                "post-rollout post.sh: ok",
                "blue drains for 10s", "blue stopped after the drain",
            ])
        let steps = harness.journal.state.get().steps
        #expect(steps.map(\.weight) == [25, 50, 100])
        #expect(steps.map(\.passed) == [true, true, true])
        #expect(
            steps[0].judgeDecision == .pass && steps[2].judge == nil,
            "no judge at 100%: the live colour gets nothing to compare")
        #expect(steps.allSatisfy { $0.measurements.map(\.value) == [0.01] })
        #expect(harness.journal.state.get().changes.compactMap(\.weight) == [0, 25, 50, 100])
        #expect(harness.journal.state.get().phase == .draining)
        #expect(
            harness.notifier.announcements.get().map { "\($0)".prefix { $0 != "(" } } == [
                "stepPassed", "stepPassed", "stepPassed", "promoted",
            ])
        let lines = Self.lines(harness)
        #expect(lines.first == "rollout: live colour blue (release rel-1), releasing to green")
        #expect(lines.contains("deploy: starting green with /models/new"))
        #expect(lines.contains("deploy: green is healthy at 127.0.0.1:2"))
        #expect(lines.contains("step 1/3: green 25%, blue 75%"))
        #expect(lines.contains("    gate error-rate <= 0.05: 0.0100 success"))
        #expect(
            lines.contains(
                "    judge 2.0 s: engagement Pass, latency Pass -> pass (score 100 (pass ≥ 90, marginal ≥ 40): pass)"))
        #expect(lines.contains("step 3/3: green 100%, blue 0%"))
        #expect(lines.contains("promoted: green is live (model v2)"))
        #expect(lines.last == "draining blue for 10s, then stopping it (orchestrate abort now returns to it)")
        #expect(
            harness.hooks.runs.get() == [.preRollout(0), .postRollout(0)], "during-step hooks run until their step ends"
        )
    }

    @Test func aGateFailingAt50PercentPutsTrafficBackThenStopsGreenThenRunsTheHook() async throws {
        let harness = RolloutHarness()
        await harness.send(.start)
        await harness.passStep()
        await harness.send(.gateSample(step: 1, gate: "error-rate", .value(0.2), at: harness.clock.now()))

        let failure = "gate error-rate: 0.2000 is not <= 0.05 (query: rate{color=\"green\"})"
        #expect(
            harness.machine.ending == .finished(.rolledBack, failure: RolloutFailure(.gateFailed(failure))),
            "the reason, typed")
        #expect(harness.machine.ending?.recorded == RecordedEnding(.rolledBack, failure: failure))
        #expect(harness.split == ["blue": 100])
        #expect(harness.runtime.state.get().running == ["blue"])
        let events = harness.recorded.suffix(5).map { "\($0.kind.rawValue): \($0.detail)" }
        #expect(
            events == [
                "shift: green 50% / blue 50%", "rollback: \(failure)", "shift: blue 100% (traffic restored)",
                "stop: green stopped",
                "hook: on-rollback notify.sh: ok",
            ])
        let steps = harness.journal.state.get().steps
        #expect(steps.map(\.passed) == [true, false])
        #expect(steps[1].measurements.map(\.outcome) == ["failure"])
        #expect(harness.journal.state.get().deployment == nil, "nothing of the release is deployed any more")
        #expect(harness.journal.state.get().phase == .rollingBack && harness.journal.state.get().weight == 0)
        let announced = harness.notifier.announcements.get()
        #expect(announced.count == 3)
        #expect(announced[1] == .gateFailed(weight: 50, failure: failure, measurements: steps[1].measurements))
        #expect(announced[2] == .rolledBack(reason: failure, interrupted: false))
        #expect(
            Self.lines(harness).suffix(4) == [
                "step 2: FAILED: \(failure)", "rollback: \(failure)", "rollback: traffic back on blue (100%)",
                "rollback: green stopped",
            ])
        // Traffic went back before anything was journalled about the rollback.
        let sent = try #require(harness.log.firstIndex { if case .sendAllTraffic = $0 { true } else { false } })
        let journalled = try #require(
            harness.log.firstIndex { if case .record(.rollback, _, _) = $0 { true } else { false } })
        #expect(sent < journalled)
    }

    /// Two gates, one failing while the other has not measured yet: the record and the
    /// announcement keep the failing measurement (they kept none: EngagementTests on CI).
    @Test func aGateFailingBesideOneStillMeasuringIsRecordedWithItsMeasurement() async throws {
        var plan = FakePlan.plan(judge: false)
        var engagement = FakePlan.gate
        engagement.name = "engagement"
        engagement.interval = .seconds(60)
        for index in plan.steps.indices {
            plan.steps[index].gates.append(GateTally(gate: engagement, query: "engagement"))
        }
        let harness = RolloutHarness(plan: plan)
        await harness.send(.start)
        await harness.send(.gateSample(step: 0, gate: "error-rate", .value(0.2), at: harness.clock.now()))

        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack, failure: "gate error-rate: 0.2000 is not <= 0.05 (query: rate{color=\"green\"})"))
        let steps = harness.journal.state.get().steps
        #expect(steps.map(\.passed) == [false])
        #expect(steps[0].measurements.map { "\($0.gate) \($0.outcome)" } == ["error-rate failure"])
        let failed = harness.notifier.announcements.get().first { if case .gateFailed = $0 { true } else { false } }
        #expect(failed.map { if case .gateFailed(_, _, let measurements) = $0 { measurements.count } else { 0 } } == 1)
    }

    @Test func sigtermThenASecondSignalLeavesTheStateForRecovery() async {
        let harness = RolloutHarness()
        harness.heldHooks = [.onRollback(0)]
        await harness.send(.start)
        await harness.passStep()
        await harness.send(.signal(SIGTERM))
        #expect(harness.split == ["blue": 100], "the first signal puts traffic back")
        let logged = harness.log.count
        let recorded = harness.recorded.count
        await harness.send(.signal(SIGINT))
        #expect(harness.log.count == logged, "the second changes nothing: the service exits at once")
        #expect(harness.recorded.count == recorded)
        #expect(harness.machine.signal == SIGTERM)
        #expect(harness.phaseName == "rolling back")
        #expect(
            harness.journal.state.get().phase == .rollingBack,
            "run.json says where it was: recovery converges from there")
        #expect(harness.recorded.last?.detail == "green stopped")
        #expect(harness.recorded.contains { $0.kind == .interrupt && $0.detail == "interrupted by SIGTERM at 50%" })
    }

    @Test func anAbortAlreadyRequestedWhenTheFirstStepIsSavedPreventsIt() async {
        let harness = RolloutHarness()
        harness.holdDeploys = true
        await harness.send(.start)
        // Written meanwhile by `orchestrate abort`; the checkpoint before the shift reads it.
        harness.control.requests.update { $0 = [.abort] }
        await harness.answer { if case .deploy = $0 { true } else { false } }

        #expect(harness.traffic.state.get().applied.isEmpty, "no traffic ever moved")
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack,
                    failure: "aborted by orchestrate abort before the first traffic step; traffic was not moved"))
        #expect(
            harness.recorded.last?.detail
                == "aborted by orchestrate abort before the first traffic step: green stopped; traffic untouched")
        #expect(harness.runtime.state.get().running == ["blue"])
    }

    @Test func aSignalDuringAStepsShiftIsHonouredOnceTheSplitIsInForce() async {
        let harness = RolloutHarness()
        await harness.send(.start)
        harness.holdShifts = true
        await harness.passStep()
        await harness.send(.signal(SIGINT))
        #expect(harness.split == ["blue": 75, "green": 25], "the split being put in force is not overtaken")
        await harness.answer { if case .shift = $0 { true } else { false } }
        #expect(
            harness.machine.ending?.recorded == RecordedEnding(.interrupted, failure: "interrupted by SIGINT at 50%"))
        #expect(RolloutMachine.exitStatus(harness.machine.ending ?? .failed(""), signal: harness.machine.signal) == 130)
        #expect(harness.split == ["blue": 100])
        #expect(!harness.hooks.runs.get().contains(.duringStep(step: 1, 0)), "the step's hooks never started")
    }

    @Test func aLostLiveColourWhoseModelIsGoneLeavesTrafficOnGreenAndTheReleaseFailed() async throws {
        let harness = RolloutHarness()
        harness.runtime.state.update { $0.storedModels = [] }
        await harness.send(.start)
        harness.runtime.state.update { _ = $0.running.remove("blue") }
        await harness.send(
            .looked(
                step: 0,
                StepWatch.Look(nginxRunning: true, target: .serving(["127.0.0.1:2"]), live: .gone, upstream: [:])))

        guard case .finished(let outcome, let failure?)? = harness.machine.ending else {
            Issue.record("not finished")
            return
        }
        #expect(
            outcome == .failed,
            "a rollback that could not put traffic back on the live release is never recorded as rolled back")
        guard case .colourLost = failure.reason,
            case .liveModelMissing(color: "blue", model: "aaaaaaaaaaaa", _)? = failure.problems.first
        else {
            Issue.record("the reason is the colour lost, the problem the live model missing: \(failure)")
            return
        }
        #expect(failure.problems.count == 1)
        #expect(
            failure.description.contains(
                "the live colour blue is lost and its model aaaaaaaaaaaa is not in the model store"), "\(failure)")
        #expect(
            failure.description.contains(
                "`orchestrate rollback --to rel-1` redeploys the live release on the idle colour"))
        #expect(harness.split == ["green": 100], "all traffic on the only colour that serves")
        #expect(harness.runtime.state.get().running == ["green"], "green is not stopped: it carries the traffic")
        #expect(RolloutMachine.exitStatus(try #require(harness.machine.ending), signal: nil) == 1)
    }

    @Test func aRollbackThatCannotPutTrafficBackIsRecordedAsFailed() async {
        let harness = RolloutHarness()
        await harness.send(.start)
        harness.traffic.state.update { $0.failNextSend = "nginx does not answer on its control socket" }
        await harness.send(.control(.abort))
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .failed,
                    failure:
                        "aborted by orchestrate abort; traffic could not be restored to blue: nginx does not answer on its control socket"
                ))
        #expect(harness.runtime.state.get().running.contains("green"), "green carries traffic: it is not stopped")
        #expect(
            harness.recorded.contains {
                $0.detail == "could not restore traffic to blue: nginx does not answer on its control socket"
            })
    }

    @Test func aFirstReleaseThatFailsStopsNginxAndTheNewColour() async {
        let harness = RolloutHarness(plan: FakePlan.plan(live: nil, steps: [100]))
        await harness.send(.start)
        await harness.send(.gateSample(step: 0, gate: "error-rate", .value(1), at: harness.clock.now()))
        #expect(harness.traffic.state.get().running == false)
        #expect(harness.runtime.state.get().running.isEmpty)
        #expect(harness.recorded.contains { $0.detail == "nothing was live before this release: nginx stopped" })
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack, failure: "gate error-rate: 1 is not <= 0.05 (query: rate{color=\"green\"})"))
    }

    @Test func promoteFullAt25PercentGoesTo100PercentOnceTheGatesHaveMeasured() async {
        let harness = RolloutHarness()
        await harness.send(.start)
        await harness.send(.control(.promoteFull))
        #expect(harness.phaseName == "holding", "the gate has not measured yet")
        await harness.send(.gateSample(step: 0, gate: "error-rate", .value(0), at: harness.clock.now()))
        #expect(harness.split == ["green": 100])
        #expect(harness.phaseName == "draining")
        #expect(harness.journal.state.get().steps.map(\.weight) == [25])
        #expect(harness.recorded.map(\.detail).contains("orchestrate promote --full at 25%"))
        #expect(harness.recorded.map(\.detail).contains("promote --full: green to 100% now"))
        #expect(Self.lines(harness).contains("promote --full requested"))
    }

    @Test func anInconclusiveJudgeUnderHoldWaitsForTheOperatorThenGoesOn() async {
        let harness = RolloutHarness(plan: FakePlan.plan(onInconclusive: .hold))
        await harness.send(.start)
        await harness.send(.gateSample(step: 0, gate: "error-rate", .value(0), at: harness.clock.now()))
        await harness.send(
            .judgeLooked(
                step: 0, .init(judgements: FakePlan.judgements(.pass, .low), elapsed: 8, at: harness.clock.now())))
        #expect(harness.phaseName == "holding for a decision")
        #expect(harness.journal.state.get().phase == .holding)
        let rule = "score 50 (pass ≥ 90, marginal ≥ 40): inconclusive"
        #expect(
            harness.recorded.last?.detail
                == "judge: inconclusive: \(rule); judge.onInconclusive is hold: holding at 25%")
        #expect(
            Self.lines(harness).suffix(2) == [
                "hold: judge: inconclusive: \(rule)",
                "hold: judge.onInconclusive is hold: traffic stays at green 25%; `orchestrate abort` rolls back, `orchestrate promote` goes on",
            ])
        await harness.send(.control(.promote))
        #expect(
            harness.recorded.contains {
                $0.detail == "orchestrate promote at 25% despite: judge: inconclusive: \(rule)"
            })
        #expect(harness.split == ["blue": 50, "green": 50])
    }

    @Test func aLostColourDoesNotWaitForTheOperator() async {
        let harness = RolloutHarness(plan: FakePlan.plan(automaticRollback: false))
        await harness.send(.start)
        harness.runtime.state.update { _ = $0.running.remove("green") }
        await harness.send(
            .looked(
                step: 0,
                StepWatch.Look(nginxRunning: true, target: .gone, live: .serving(["127.0.0.1:1"]), upstream: [:])))
        #expect(
            harness.machine.ending?.recorded == RecordedEnding(.rolledBack, failure: "green stopped running at 25%"),
            "an outage, not a verdict on the model")
    }

    @Test func aSaveThatFailedDuringTheStagesDeploysNothing() async {
        let harness = RolloutHarness()
        await harness.send([.journalSaveFailed("No space left on device"), .start])
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .failed,
                    failure:
                        "the controller's state could not be saved (No space left on device) during the stages; nothing was deployed"
                ))
        #expect(harness.log.count == 1, "only the end")
    }

    @Test func aSaveThatFailsDuringAPreRolloutHookRollsBackWhenItEnds() async {
        let harness = RolloutHarness()
        harness.heldHooks = [.preRollout(0)]
        await harness.send(.start)
        harness.journal.state.update { $0.diskFull = "No space left on device" }
        await harness.send(.journalSaveFailed("No space left on device"))
        #expect(harness.phaseName == "pre-rollout hooks", "the hook runs on")
        await harness.answer { if case .runHook = $0 { true } else { false } }
        #expect(harness.runtime.state.get().deployed.isEmpty, "nothing deployed")
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack, failure: "the controller's state could not be saved (No space left on device)"))
        #expect(harness.split == ["blue": 100])
    }

    @Test func promoteDuringTheDeployEndsTheFirstStepsWaitOnceItHolds() async {
        let harness = RolloutHarness()
        harness.holdDeploys = true
        await harness.send(.start)
        await harness.send(.control(.promote))
        await harness.answer { if case .deploy = $0 { true } else { false } }
        guard case .holding(let hold) = harness.machine.phase else {
            Issue.record("not holding: \(harness.phaseName)")
            return
        }
        #expect(hold.skipWait && hold.requests == ["promote"])
        await harness.send(.gateSample(step: 0, gate: "error-rate", .value(0), at: harness.clock.now()))
        #expect(harness.split == ["blue": 50, "green": 50], "the first step ended without its wait nor the judge")
    }

    @Test func nginxsMasterLostMidStepIsReplacedAndTheStepGoesOn() async {
        let harness = RolloutHarness()
        await harness.send(.start)
        harness.traffic.state.update {
            $0.replaceWorkers =
                "nginx's master was gone: its orphaned workers (pid 41) got the split first, then stopped; a fresh nginx serves it"
        }
        await harness.send(
            .looked(
                step: 0,
                StepWatch.Look(
                    nginxRunning: false, orphanedWorkers: [41], target: .serving(["127.0.0.1:2"]),
                    live: .serving(["127.0.0.1:1"]), upstream: [:])))
        #expect(harness.phaseName == "holding")
        let events = harness.recorded.suffix(2)
        #expect(events.first?.kind == .recover && events.first?.detail.contains("orphaned workers (pid 41)") == true)
        #expect(
            events.last?.detail
                == "green 25% / blue 75% again: nginx's master was gone and its orphaned workers (pid 41) served alone; a fresh nginx serves the step's split"
        )
        #expect(harness.isPending { $0 == .startTimer(.watchDue(step: 0), after: .seconds(1)) }, "looks go on")
    }

    @Test func nginxThatCannotBeBroughtBackEndsTheStep() async {
        let harness = RolloutHarness()
        await harness.send(.start)
        harness.traffic.state.update { $0.failNextReapply = "nginx: [emerg] bind() failed" }
        await harness.send(
            .looked(
                step: 0,
                StepWatch.Look(nginxRunning: false, target: .serving(["a"]), live: .serving(["b"]), upstream: [:])))
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack,
                    failure: "nginx was not running, and nginx could not be brought back: nginx: [emerg] bind() failed")
        )
    }

    @Test func aGateWithoutDataFailsOnlyAfterTheInconclusiveDeadline() async {
        var gate = FakePlan.gate
        gate.onNoData = .inconclusive
        var plan = FakePlan.plan(judge: false)
        plan.steps[0].gates = [GateTally(gate: gate, query: FakePlan.query)]
        let harness = RolloutHarness(plan: plan)
        await harness.send(.start)
        #expect(
            harness.isPending { $0 == .startTimer(.inconclusiveDeadline(step: 0), after: .seconds(60)) },
            "twice the longer of the wait and the gate's time")
        await harness.send(.gateSample(step: 0, gate: "error-rate", .noData, at: harness.clock.now()))
        #expect(harness.phaseName == "holding")
        await harness.send(.timer(.inconclusiveDeadline(step: 0)))
        await harness.send(.gateSample(step: 0, gate: "error-rate", .noData, at: harness.clock.now()))
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack,
                    failure: "gate error-rate: no data until the step's deadline (query: rate{color=\"green\"})"))
    }

    @Test func aJudgeWhoseQueriesFailFiveTimesInARowFailsTheStep() async {
        let harness = RolloutHarness(plan: FakePlan.plan(gates: false))
        await harness.send(.start)
        for look in 1...5 {
            #expect(harness.phaseName == "holding", "look \(look)")
            await harness.send(
                .judgeLooked(
                    step: 0, .init(judgements: FakePlan.errors(), elapsed: Double(look * 2), at: harness.clock.now())))
        }
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack, failure: "judge: Prometheus did not answer the judge's queries 5 times in a row"))
        #expect(harness.journal.state.get().steps.first?.judge?.count == 5)
    }

    @Test func theJudgesMaxWaitMakesItsNextLookDecide() async {
        let harness = RolloutHarness(plan: FakePlan.plan(gates: false))
        await harness.send(.start)
        let undecided = FakePlan.judgements(.undecided, .pass)
        await harness.send(.judgeLooked(step: 0, .init(judgements: undecided, elapsed: 2, at: harness.clock.now())))
        #expect(harness.phaseName == "holding", "undecided before maxWait")
        await harness.send([.timer(.stepWait(step: 0)), .timer(.judgeMaxWait(step: 0))])
        #expect(harness.phaseName == "holding", "the wait passed, but the judge has not decided")
        await harness.send(.judgeLooked(step: 0, .init(judgements: undecided, elapsed: 60, at: harness.clock.now())))
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack,
                    failure:
                        "judge: inconclusive: score 50 (pass ≥ 90, marginal ≥ 40): inconclusive, the critical metric did not decide (engagement Undecided at the deadline)"
                ))
    }

    @Test func anAbortDuringTheDrainWhenTheOldColourIsGoneLeavesTheReleaseLive() async {
        let harness = RolloutHarness()
        await harness.send(.start)
        for _ in 0..<3 { await harness.passStep() }
        harness.runtime.state.update { _ = $0.running.remove("blue") }
        await harness.send(.control(.abort))
        #expect(harness.machine.ending?.recorded == RecordedEnding(.succeeded, failure: nil))
        #expect(
            harness.recorded.last?.detail
                == "blue is no longer running: the abort cannot return to it; green stays live")
        #expect(harness.split == ["green": 100])
    }

    @Test func stoppingTheOldColourAfterTheDrainFailingIsTheRunsError() async {
        let harness = RolloutHarness()
        await harness.send(.start)
        for _ in 0..<3 { await harness.passStep() }
        harness.runtime.state.update { $0.stopFailures["blue"] = "the engine does not answer" }
        await harness.send(.timer(.drain))
        #expect(harness.machine.ending == .failed("the engine does not answer"))
    }

    @Test func withoutALoadBalancerARollbackStopsNothingAndIsStillRolledBack() async {
        let harness = RolloutHarness(plan: FakePlan.plan(trafficSwitch: false))
        await harness.send(.start)
        await harness.send(.gateSample(step: 0, gate: "error-rate", .value(1), at: harness.clock.now()))
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack, failure: "gate error-rate: 1 is not <= 0.05 (query: rate{color=\"green\"})"))
        #expect(!RolloutHarness.world(harness.log).contains("send all to blue"))
    }
}
