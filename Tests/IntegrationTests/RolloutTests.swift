import DeploymentRuntimes
import EngineAPI
import Foundation
import Orchestrator
import OrchestratorSupport
import Provenance
import StrictYAML
import TestSupport
import Testing
import Traffic

/// Real nginx, Prometheus and `recengine serve` processes on loopback.
@Suite(.serialized) struct RolloutTests {
    /// Share of answers from `color` among the samples taken while a step was in force.
    static func share(
        of color: String, in samples: [LoadGenerator.Sample], during step: ReleaseRecord.RolloutRecord.Step
    ) -> (Double, Int) {
        let end = step.finishedOn ?? Date()
        let window = samples.filter {
            $0.at > step.startedOn.addingTimeInterval(0.2) && $0.at < end && $0.status == 200
        }
        guard !window.isEmpty else { return (0, 0) }
        return (Double(window.filter { $0.color == color }.count) / Double(window.count), window.count)
    }

    @Test func aHealthyReleaseIsPromotedThroughEveryStepUnderSteadyLoad() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let first = try await playground.run()
            #expect(
                first.outcome == .succeeded,
                "\(first.failure ?? ""): \(first.rollout?.steps.first?.measurements.map { "\($0.at.timeIntervalSince(first.rollout?.steps.first?.startedOn ?? Date())) \($0.outcome) \($0.error ?? "")" } ?? [])"
            )
            #expect(
                playground.lastSamples.allSatisfy { $0.status == 200 || $0.status == 0 },
                "before the first release nginx is not there yet")
            #expect(first.rollout?.steps.map(\.weight) == [100], "nothing was live: one step")
            let firstColor = try #require(first.deployment?.color)

            let second = try await playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])
            #expect(second.outcome == .succeeded, "\(second.failure ?? "")")
            let rollout = try #require(second.rollout)
            let target = rollout.target
            #expect(target != firstColor)
            #expect(rollout.steps.map(\.weight) == [25, 50, 100])
            for step in rollout.steps {
                #expect(step.passed == true)
                #expect(
                    step.measurements.contains { $0.gate == "error-rate" && $0.outcome == "success" },
                    "each step is measured")
            }
            let samples = playground.lastSamples
            #expect(samples.count > 60)
            #expect(
                samples.allSatisfy { $0.status == 200 },
                "no failed request: \(samples.filter { $0.status != 200 }.map { "\($0.status)" })")
            for step in rollout.steps {
                // Each step's share of answers from the target, within 12 points or 3.5 standard
                // errors of its weight, whichever is wider (the load's rate depends on the machine).
                let (share, count) = Self.share(of: target, in: samples, during: step)
                #expect(count >= 10)
                let weight = Double(step.weight) / 100
                let tolerance = max(0.12, 3.5 * (weight * (1 - weight) / Double(max(count, 1))).squareRoot())
                #expect(
                    abs(share - weight) <= tolerance,
                    "step \(step.weight)%: \(Int(share * 100))% of \(count) answers from \(target)")
            }
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [target])
            #expect(
                await playground.runtime.instance(of: firstColor) == nil, "stopOld stops the old colour after the drain"
            )
            let history = ReleaseHistory(path: playground.historyPath)
            #expect(try history.verify().isEmpty)
        }
    }

    @Test func aGateThatCannotBeMetRollsBackAtTheFirstStepWithoutFailingARequest() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let first = try await playground.run()
            let live = try #require(first.deployment?.color)
            try playground.writePipeline(gates: Playground.impossibleGate)
            let second = try await playground.run(RunOptions(force: true), environment: ["EPOCHS": "12"])
            #expect(second.outcome == .rolledBack)
            #expect(second.rollout?.steps.count == 1)
            #expect(second.failure?.contains("gate impossible: 1 is not <= 0.5") == true, "\(second.failure ?? "")")
            #expect(second.failure?.contains("recengine_model_info{color=") == true, "the failure names the query")
            #expect(
                await playground.nginx.currentSplit()?.backends.map(\.color) == [live],
                "traffic is back on the live colour")
            let target = try #require(second.rollout?.target)
            #expect(await playground.runtime.instance(of: target) == nil, "the new colour is stopped")
            #expect(
                try #require(await playground.runtime.instance(of: live)).modelSHA256 == first.deployment?.modelSHA256)
            let samples = playground.lastSamples
            #expect(samples.count > 50)
            #expect(
                samples.allSatisfy { $0.status == 200 },
                "no failed request through the rollback: \(samples.filter { $0.status != 200 }.map { "\($0.status)" })")
            #expect(samples.suffix(10).allSatisfy { $0.color == live })
        }
    }

    @Test func aServerThatFailsPartOfItsAnswersIsRolledBackOnTheErrorRateGate() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let first = try await playground.run()
            let live = try #require(first.deployment?.color)
            try playground.writePipeline(args: #"[--fault-rate, "0.5"]"#)
            let second = try await playground.run(RunOptions(force: true))
            #expect(second.outcome == .rolledBack)
            // Usually at the first step (4 s); on a loaded machine the new colour's first failed
            // answers may reach Prometheus too late for that step's looks.
            let steps = second.rollout?.steps ?? []
            #expect(steps.count == 1 || steps.count == 2, "rolled back before the last step: \(steps.map(\.weight))")
            #expect(steps.last?.passed == false)
            #expect(second.failure?.contains("gate error-rate") == true, "\(second.failure ?? "")")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
        }
    }

    @Test func anUnreachablePrometheusIsRefusedBeforeAnyChange() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let first = try await playground.run()
            let live = try #require(first.deployment?.color)
            let before = await playground.nginx.currentSplit()
            try playground.writePipeline(prometheusPort: try freePort())
            let error = await #expect(throws: OrchestratorError.self) {
                try await playground.run(RunOptions(force: true))
            }
            #expect(error?.code == .unreachable)
            #expect(error?.code.exitCode == 4)
            #expect(await playground.nginx.currentSplit() == before)
            #expect(await playground.runtime.instance(of: live) != nil)
            let other = live == "blue" ? "green" : "blue"
            #expect(await playground.runtime.instance(of: other) == nil, "nothing was deployed")
            let last = try ReleaseHistory(path: playground.historyPath).records().last
            #expect(last?.outcome == .failed)
            #expect(last?.failure?.contains("unreachable") == true)
            #expect(last?.stages.map(\.status) == [.notRun], "no stage runs when the rollout could not happen")
        }
    }

    @Test func aKilledControllerIsConvergedByTheNextRun() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(wait: "30s")
            let first = try await playground.run(RunOptions(noStagedShift: true))
            let live = try #require(first.deployment?.color)

            // A second release in another process, killed with SIGKILL in the middle of its first step.
            let controller = try await playground.startControllerUntilTrafficStep()
            let state = StateStore(folder: playground.statePath)
            try await Task.sleep(for: .milliseconds(500))
            controller.signal(SIGKILL)
            _ = await controller.wait()
            let interrupted = try #require(try state.run())
            let target = try #require(interrupted.target)
            #expect(await playground.runtime.instance(of: target) != nil, "the new colour outlived its controller")
            #expect(await playground.nginx.currentSplit()?.weight(of: target) == 25)

            // The next run converges first: traffic on the healthy live colour, no orphan.
            try playground.writePipeline(wait: "1s")
            let next = try await playground.run(RunOptions(noStagedShift: true))
            let records = try ReleaseHistory(path: playground.historyPath).records()
            let recovered = try #require(records.first { $0.releaseID == interrupted.releaseID })
            #expect(recovered.outcome == .rolledBack)
            #expect(recovered.failure?.contains("interrupted while shifting") == true)
            #expect(recovered.rollout?.events.contains { $0.kind == .recover } == true)
            #expect(next.outcome == .succeeded, "\(next.failure ?? "")")
            #expect(next.rollout?.live == live, "the recovery put traffic back on \(live) before the next release")
            #expect(try state.run() == nil)
            #expect(try ReleaseHistory(path: playground.historyPath).verify().isEmpty)
        }
    }

    @Test func abortFromAnotherProcessRollsTheReleaseBack() async throws {
        try await Playground.with { playground in
            try playground.writePipeline(wait: "30s")
            let first = try await playground.run(RunOptions(noStagedShift: true))
            let live = try #require(first.deployment?.color)
            let controller = try await playground.startControllerUntilTrafficStep()
            let abort = try await orchestrate(["abort", playground.pipelinePath])
            #expect(abort.status == 0, "\(abort.stderr)")
            #expect(abort.stdout.contains("abort requested"))
            let status = await controller.wait()
            #expect(status >> 8 == 1, "a rolled-back release exits 1")
            let last = try #require(try ReleaseHistory(path: playground.historyPath).records().last)
            #expect(last.outcome == .rolledBack)
            #expect(last.failure == "aborted by orchestrate abort")
            #expect(last.rollout?.events.contains { $0.kind == .abort } == true)
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [live])
            let again = try await orchestrate(["abort", playground.pipelinePath])
            #expect(again.status == 1, "nothing in progress any more")
        }
    }

    @Test func statusAndRollbackFromTheCommandLine() async throws {
        try await Playground.with { playground in
            try playground.writePipeline()
            let first = try await playground.run(RunOptions(noStagedShift: true))
            let second = try await playground.run(
                RunOptions(force: true, noStagedShift: true), environment: ["EPOCHS": "12"])
            #expect(second.outcome == .succeeded)
            #expect(first.deployment?.modelSHA256 != second.deployment?.modelSHA256)
            let status = try await orchestrate(["status", playground.pipelinePath, "--output", "json"])
            #expect(status.status == 0, "\(status.stderr)")
            #expect(status.stdout.contains("\"healthy\" : true"))
            #expect(
                status.stdout.contains("\"traffic_source\" : \"nginx\""),
                "the split nginx reports on its control socket")

            let rollback = try await orchestrate(["rollback", playground.pipelinePath])
            #expect(rollback.status == 0, "\(rollback.stderr)")
            let current = try #require(try StateStore(folder: playground.statePath).live())
            #expect(current.releaseID == first.releaseID)
            #expect(current.modelSHA256 == first.deployment?.modelSHA256)
            let served = try #require(await playground.runtime.instance(of: current.color))
            #expect(
                served.modelSHA256 == first.deployment?.modelSHA256, "the old model was redeployed, verified by digest")
            #expect(await playground.nginx.currentSplit()?.backends.map(\.color) == [current.color])
            let last = try ReleaseHistory(path: playground.historyPath).records().last
            #expect(last?.action == .rollback && last?.outcome == .succeeded)

            // Unhealthy: stop the live colour behind the controller's back.
            try await playground.runtime.stop(color: current.color)
            let unhealthy = try await orchestrate(["status", playground.pipelinePath])
            #expect(unhealthy.status == 1)
            #expect(unhealthy.stderr.contains("not running"))

            // Without nginx, the split last applied, said to come from the state file.
            await playground.nginx.stop()
            let stopped = try await orchestrate(["status", playground.pipelinePath])
            #expect(stopped.stdout.contains("\(current.color) 100% (generation"), "\(stopped.stdout)")
            #expect(
                stopped.stdout.contains("last applied, from the state file); nginx not running"), "\(stopped.stdout)")
            #expect(stopped.stderr.contains("problem: nginx is not running"))
        }
    }

    func orchestrate(_ arguments: [String]) async throws -> (status: Int32, stdout: String, stderr: String) {
        try await runCommand(Playground.orchestrate, arguments, environment: ["RECENGINE_BIN": Playground.recengine])
    }
}
