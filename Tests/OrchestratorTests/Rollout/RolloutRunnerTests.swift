import Foundation
import StrictYAML
import Testing

@testable import Orchestrator
@testable import Provenance

/// The runner against the fakes, with its tasks, timers and polling: the stream of events the
/// machine is fed comes together as it would in a run (time moves only as the test moves it).
@Suite struct RolloutRunnerTests {
    final class World: Sendable {
        let plan: RolloutMachine.Plan
        let runtime: FakeRuntime
        let traffic: FakeTrafficSwitch
        let metrics = FakeMetricsSource()
        let clock = FakeClock()
        let journal = FakeJournal()
        let notifier = FakeNotifier()
        let hooks = FakeHooks()
        let control = FakeControl()
        let outcome = Locked<RolloutRunner.Outcome?>(nil)

        init(plan: RolloutMachine.Plan) {
            self.plan = plan
            runtime = FakeRuntime(running: ["blue"], storedModels: [FakePlan.liveModel])
            traffic = FakeTrafficSwitch(target: "green", live: "blue", runtime: runtime)
            metrics.samples.update { $0[FakePlan.query] = Array(repeating: .value(0), count: 10) }
        }

        var runner: RolloutRunner {
            RolloutRunner(
                plan: plan,
                ports: RolloutPorts(
                    traffic: traffic, runtime: runtime, metrics: metrics, clock: clock, journal: journal,
                    notifier: notifier, hooks: hooks, control: control),
                pollInterval: .milliseconds(5))
        }

        /// Runs the rollout, moving time on by a second whenever `until` does not hold yet and
        /// the rollout waits; returns once it ended.
        func run(
            until condition: @escaping @Sendable (World) -> Bool = { _ in false },
            then act: @escaping @Sendable (World) -> Void = { _ in }
        ) async throws
            -> RolloutRunner.Outcome
        {
            let runner = self.runner
            let task = Task {
                self.outcome.update { $0 = nil }; let outcome = await runner.run(); self.outcome.update { $0 = outcome }
            }
            var acted = false
            for _ in 0..<20_000 {
                if let outcome = outcome.get() { return outcome }
                if !acted && condition(self) {
                    acted = true
                    act(self)
                }
                try await Task.sleep(for: .milliseconds(1))
                if clock.sleeping > 0 { clock.advance(by: 0.5) }
            }
            task.cancel()
            throw FakeError("the rollout did not end")
        }
    }

    @Test func aRolloutRunsToItsPromotionThroughTheStream() async throws {
        let world = World(plan: FakePlan.plan(judge: false))
        let outcome = try await world.run()
        #expect(outcome.ending.recorded == RecordedEnding(.succeeded, failure: nil))
        #expect(outcome.signal == nil)
        #expect(world.traffic.split == ["green": 100])
        #expect(world.runtime.state.get().running == ["green"])
        #expect(world.journal.state.get().steps.map(\.weight) == [25, 50, 100])
        #expect(world.journal.state.get().events.last?.detail == "blue stopped after the drain")
        #expect(
            world.hooks.runs.get().filter { if case .duringStep = $0 { true } else { false } }.count == 3,
            "a during-step hook per step")
    }

    @Test func sigtermMidStepPutsTrafficBackAndEndsInterrupted() async throws {
        let world = World(plan: FakePlan.plan(judge: false))
        let outcome = try await world.run(
            until: { $0.traffic.split["green"] == 50 }, then: { $0.control.raised.update { $0 = SIGTERM } })
        #expect(outcome.ending.recorded == RecordedEnding(.interrupted, failure: "interrupted by SIGTERM at 50%"))
        #expect(outcome.signal == SIGTERM)
        #expect(world.traffic.split == ["blue": 100])
        #expect(world.runtime.state.get().running == ["blue"])
    }

    @Test func anAbortFromAnotherProcessRollsBack() async throws {
        let world = World(plan: FakePlan.plan(judge: false))
        let outcome = try await world.run(
            until: { $0.traffic.split["green"] == 25 }, then: { $0.control.requests.update { $0 = [.abort] } })
        #expect(outcome.ending.recorded == RecordedEnding(.rolledBack, failure: "aborted by orchestrate abort"))
        #expect(world.journal.state.get().events.contains { $0.detail == "orchestrate abort at 25%" })
        #expect(world.traffic.split == ["blue": 100])
    }

    /// `orchestrate abort` as the new colour turns healthy, taken by the poller of requests while
    /// the targets are written: the checkpoint before the first step answers behind it, so the
    /// step never overtakes it (it did when the checkpoint's answer jumped the stream).
    @Test func anAbortThePollerTookAsTheDeployEndsIsNeverOvertakenByTheFirstStep() async throws {
        let world = World(plan: FakePlan.plan(judge: false, hooks: false))
        let control = world.control
        world.runtime.whenWritingTargets.update {
            $0 = {
                control.requests.update { $0 = [.abort] }
                // The poller (every 5 ms) takes it while this effect still runs.
                while !control.requests.get().isEmpty { try? await Task.sleep(for: .milliseconds(1)) }
            }
        }
        let outcome = try await world.run()
        #expect(
            outcome.ending.recorded
                == RecordedEnding(
                    .rolledBack,
                    failure: "aborted by orchestrate abort before the first traffic step; traffic was not moved"))
        #expect(world.journal.state.get().steps.isEmpty, "no step was taken")
        #expect(world.traffic.split == ["blue": 100], "traffic never moved")
        #expect(world.runtime.state.get().running == ["blue"], "green stopped")
    }

    @Test func aSaveThatFailsOnItsOwnIsNoticedAndRollsBack() async throws {
        let world = World(plan: FakePlan.plan(judge: false))
        let outcome = try await world.run(
            until: { $0.traffic.split["green"] == 25 },
            then: {
                $0.journal.state.update {
                    $0.diskFull = "No space left on device"; $0.saveFailure = "No space left on device"
                }
            })
        #expect(
            outcome.ending.recorded
                == RecordedEnding(
                    .rolledBack, failure: "the controller's state could not be saved (No space left on device)"))
        #expect(world.traffic.split == ["blue": 100], "traffic goes back without a disk write")
    }

    @Test func stoppingTheOldColourFailingIsTheRunsOwnError() async throws {
        let world = World(plan: FakePlan.plan(judge: false))
        world.runtime.state.update { $0.stopFailures["blue"] = "engine down" }
        let outcome = try await world.run()
        #expect(outcome.ending == .failed("engine down"))
        #expect((outcome.error as? FakeError)?.description == "engine down", "the error itself, for its exit code")
    }
}
