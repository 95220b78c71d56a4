import Foundation
import Testing

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// `orchestrate status --watch`: what it draws, and how it ends when no rollout will finish.
/// (Tests/IntegrationTests/ObservedRolloutTests watches real rollouts to their outcome.)
@Suite struct WatchTests {
    static let pipeline = "version: 1\nname: watched\nhistory: h.jsonl\nstages:\n  - name: a\n    run: [\"true\"]\n"

    /// Starts `orchestrate status --watch` in `folder` and returns once it printed `text`.
    static func startWatch(in folder: String, until text: String) async throws -> ChildProcess {
        let watcher = try ChildProcess.spawn(
            CLITests.binary, ["status", "--watch", folder + "/p.yml"], log: folder + "/watch.log")
        for _ in 0..<200 {
            if read(folder + "/watch.log").contains(text) { return watcher }
            try await Task.sleep(for: .milliseconds(50))
        }
        watcher.signal(SIGKILL)
        _ = await watcher.wait()
        throw WatchTestError(description: "the watch did not print \(text): \(read(folder + "/watch.log"))")
    }

    struct WatchTestError: Error, CustomStringConvertible {
        var description: String
    }

    @Test func ctrlCEndsTheWatchCleanlyWith130() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.pipeline, to: folder + "/p.yml")
            let watcher = try await Self.startWatch(
                in: folder, until: "no rollout in progress for watched: waiting for one")
            watcher.signal(SIGINT)
            #expect(await watcher.wait() >> 8 == 130, "\(read(folder + "/watch.log"))")
        }
    }

    @Test func aControllerKilledMidRolloutEndsTheWatchWith1() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.pipeline, to: folder + "/p.yml")
            let gone = try ChildProcess.spawn("/bin/true", [])
            _ = await gone.wait()
            let store = ReleaseController(pipeline: try PipelineLoader().load(folder + "/p.yml")).store
            try FileManager.default.createDirectory(atPath: store.folder, withIntermediateDirectories: true)
            try store.saveRun(
                RunState(
                    releaseID: "rel-killed", pid: gone.pid, startedOn: Date(), phase: .shifting, target: "green",
                    weight: 50))
            let watcher = try ChildProcess.spawn(
                CLITests.binary, ["status", "--watch", folder + "/p.yml"], log: folder + "/watch.log")
            let status = await watcher.wait()
            let output = read(folder + "/watch.log")
            #expect(status >> 8 == 1, "\(output)")
            #expect(output.contains("release rel-killed  shifting  green 50%"), "\(output)")
            #expect(
                output.contains(
                    "its controller (pid \(gone.pid)) is gone without a record; `orchestrate recover` converges it"),
                "\(output)")
        }
    }

    @Test func theTerminalViewShowsTheStepWeightsAndLatestGateValues() {
        let now = Date()
        let view = ReleaseController.RolloutView(
            service: "recommender", releaseID: "rel-1", phase: .shifting, stage: nil, target: "green", live: "blue",
            weights: [.init(color: "blue", percent: 75), .init(color: "green", percent: 25)], step: 1, steps: 3,
            gates: [
                GateMeasurement(
                    outcome: "success", gate: "error-rate", query: "q", value: 0.0123, condition: "<= 0.05",
                    at: now.addingTimeInterval(-3), error: nil),
                GateMeasurement(
                    outcome: "inconclusive", gate: "p95", query: "q", value: nil, condition: "<= 0.2", at: now,
                    error: "no data"),
            ],
            events: [RolloutEvent(at: now, kind: .shift, detail: "green 25% / blue 75%")], controllerPID: 42,
            controllerRunning: true,
            startedOn: now.addingTimeInterval(-14))
        let lines = view.lines(now: now)
        #expect(lines.contains("Status:      ◌ Progressing"))
        #expect(lines.contains("Step:        1/3"))
        #expect(lines.contains("Weights:     blue 75%  green 25%"))
        #expect(
            lines.contains("  NAME        CONDITION  VALUE    OUTCOME       AGE"), "\(lines.joined(separator: "\n"))")
        #expect(
            lines.contains("  error-rate  <= 0.05    0.0123   success       3s"), "\(lines.joined(separator: "\n"))")
        #expect(
            lines.contains("  p95         <= 0.2     no data  inconclusive  0s"), "\(lines.joined(separator: "\n"))")
        #expect(
            view.line
                == "release rel-1  shifting  step 1/3  blue 75% green 25%  gates error-rate=0.0123 success, p95=- inconclusive"
        )
    }
    @Test func aWaitingWebhookGateIsShownAsPaused() {
        let now = Date()
        var view = ReleaseController.RolloutView(
            service: "recommender", releaseID: "rel-1", phase: .shifting, stage: nil, target: "green", live: "blue",
            weights: [.init(color: "green", percent: 100)], step: 2, steps: 2, gates: [], events: [],
            controllerPID: 42, controllerRunning: true, startedOn: now)
        #expect(view.status == "◌ Progressing")
        view.waiting = "waiting for confirm-promotion approve-100"
        #expect(
            view.lines(now: now).contains(
                "Status:      ॥ Paused (waiting for confirm-promotion approve-100: orchestrate approve, or abort)"))
        #expect(view.line == "release rel-1  shifting  waiting for confirm-promotion approve-100  step 2/2  green 100%")
    }
}
