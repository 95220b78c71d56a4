import Foundation
import OrchestratorSupport
import Provenance
import StrictYAML
import Testing

@testable import Orchestrator
@testable import PipelineSchema

/// A split that does not send each colour its share ends the step as an invalid experiment, not
/// as a worse model; a critical metric must decide before a step passes: through the machine and
/// the fakes, what the record, the traffic, the exit status and the notifications get.
@Suite struct InvalidExperimentScenarioTests {
    static func lines(_ harness: RolloutHarness) -> [String] { harness.notifier.lines.get().map(\.text) }

    /// A release whose first gate passed and whose judge looked once at the first (25 %) step:
    /// every metric passing, the users split `new` to `live`.
    static func judgedOnce(usersNew new: Double, live: Double) async -> RolloutHarness {
        let harness = RolloutHarness()
        await harness.send(.start)
        await harness.send(.gateSample(step: 0, gate: "error-rate", .value(0.01), at: harness.clock.now()))
        await harness.send(
            .judgeLooked(
                step: 0,
                .init(
                    judgements: FakePlan.judgements(.pass, .pass), elapsed: 4, at: harness.clock.now(),
                    ratios: FakePlan.users(new: new, live: live))))
        return harness
    }

    @Test func aSkewedSplitIsRolledBackAsAnInvalidExperimentWithWhatWasExpectedAndSeen() async throws {
        // Every metric passes, but green got 15 % of the users at a 25 % step.
        let harness = await Self.judgedOnce(usersNew: 150, live: 850)

        let ending = try #require(harness.machine.ending)
        guard case .finished(.rolledBack, let failure?) = ending, case .sampleRatioMismatch(let rule) = failure.reason
        else {
            Issue.record("not an invalid experiment: \(ending)")
            return
        }
        // scipy: chisquare([150, 850], [250, 750]) = 53.33, p 2.8e-13.
        #expect(
            rule.hasPrefix(
                "sample ratio mismatch (p < 0.001): users: new 15.0 % of 1000 (150 new, 850 live), expected 25.0 %: chi-squared 53.33, p 2.8e-13"
            ), "\(rule)")
        #expect(failure.description.hasPrefix("invalid experiment: sample ratio mismatch"))
        #expect(RolloutMachine.exitStatus(ending, signal: nil) == ExitStatus.invalidExperiment)
        #expect(ExitStatus.invalidExperiment == 6)
        #expect(harness.split == ["blue": 100], "traffic back on the live colour")
        #expect(harness.runtime.state.get().running == ["blue"])
        let step = try #require(harness.journal.state.get().steps.first)
        #expect(
            step.passed == false && step.judgeDecision == .invalid
                && step.judgeDecision?.rawValue == "invalid experiment")
        let check = try #require(step.judge?.last?.sampleRatio?.first)
        #expect(
            check.mismatch && check.expectedShare == 0.25 && check.observedShare == 0.15 && check.new == 150
                && check.live == 850)
        let announced = harness.notifier.announcements.get()
        #expect(announced.count == 2)
        #expect(
            announced.first == .gateFailed(weight: 25, failure: failure.description, measurements: step.measurements))
        #expect(announced.last == .rolledBack(reason: failure.description, interrupted: false))
        let lines = Self.lines(harness)
        #expect(
            lines.contains {
                $0.hasPrefix(
                    "    judge 4.0 s: engagement Pass, latency Pass -> invalid experiment (sample ratio mismatch")
                    && $0.hasSuffix("; split users new 15.0 % (expected 25.0 %), p 2.8e-13")
            }, "\(lines)")
        #expect(lines.contains("step 1: FAILED: \(failure.description)"))
    }

    @Test func anEvenSplitIsCheckedAndTheJudgesVerdictStands() async throws {
        let harness = await Self.judgedOnce(usersNew: 260, live: 740)
        #expect(harness.machine.ending == nil && harness.split == ["blue": 50, "green": 50], "on to the 50 % step")
        let step = try #require(harness.journal.state.get().steps.first)
        #expect(step.passed == true && step.judgeDecision == .pass)
        let check = try #require(step.judge?.last?.sampleRatio?.first)
        // scipy: chisquare([260, 740], [250, 750]) = 0.533, p 0.465.
        #expect(!check.mismatch && abs(check.pValue - 0.4652088184521417) < 1e-12)
    }

    @Test func aCriticalMetricUndecidedAtMaxWaitEndsTheStepInconclusive() async {
        var plan = FakePlan.plan(gates: false)
        plan.judge?.pass = 50
        let harness = RolloutHarness(plan: plan)
        await harness.send(.start)
        // Latency passes, engagement never decides: its score (50) would pass the step alone.
        await harness.send([.timer(.stepWait(step: 0)), .timer(.judgeMaxWait(step: 0))])
        await harness.send(
            .judgeLooked(
                step: 0, .init(judgements: FakePlan.judgements(.undecided, .pass), elapsed: 60, at: harness.clock.now())
            ))
        #expect(
            harness.machine.ending?.recorded
                == RecordedEnding(
                    .rolledBack,
                    failure:
                        "judge: inconclusive: score 50 (pass ≥ 50, marginal ≥ 40): inconclusive: the critical metric did not decide (engagement Undecided at the deadline); passing on the other metrics needs allowUndecidedCritical: true"
                ))
        #expect(
            RolloutMachine.exitStatus(harness.machine.ending ?? .failed(""), signal: nil) == 1,
            "inconclusive is not an invalid experiment")
    }

    @Test func underHoldACriticalMetricUndecidedAtMaxWaitWaitsForTheOperator() async {
        var plan = FakePlan.plan(onInconclusive: .hold, gates: false)
        plan.judge?.pass = 50
        let harness = RolloutHarness(plan: plan)
        await harness.send(.start)
        await harness.send(.timer(.judgeMaxWait(step: 0)))
        await harness.send(
            .judgeLooked(
                step: 0, .init(judgements: FakePlan.judgements(.undecided, .pass), elapsed: 60, at: harness.clock.now())
            ))
        #expect(harness.phaseName == "holding for a decision")
        #expect(harness.split == ["blue": 75, "green": 25])
    }

    @Test func optedInTheStepPassesAndTheNotificationSaysTheCriticalMetricDidNotDecide() async throws {
        var plan = FakePlan.plan(gates: false)
        plan.judge?.pass = 50
        plan.judge?.allowUndecidedCritical = true
        let harness = RolloutHarness(plan: plan)
        await harness.send(.start)
        await harness.send([.timer(.stepWait(step: 0)), .timer(.judgeMaxWait(step: 0))])
        await harness.send(
            .judgeLooked(
                step: 0, .init(judgements: FakePlan.judgements(.undecided, .pass), elapsed: 60, at: harness.clock.now())
            ))
        #expect(harness.machine.ending == nil && harness.split == ["blue": 50, "green": 50], "on to the 50 % step")
        let rule =
            "score 50 (pass ≥ 50, marginal ≥ 40): pass without the critical metric deciding (engagement Undecided at the deadline; allowUndecidedCritical: true)"
        let step = try #require(harness.journal.state.get().steps.first)
        #expect(step.judgeDecision == .pass && step.judgeRule == rule)
        #expect(
            harness.notifier.announcements.get().first
                == .stepPassed(step: 1, steps: 3, weight: 25, measurements: [], note: "judge: \(rule)"))
        // A step whose critical metric decided says nothing more.
        await harness.send(
            .judgeLooked(
                step: 1, .init(judgements: FakePlan.judgements(.pass, .pass), elapsed: 2, at: harness.clock.now())))
        #expect(
            harness.notifier.announcements.get().dropFirst().first
                == .stepPassed(step: 2, steps: 3, weight: 50, measurements: [], note: nil))
    }
}
