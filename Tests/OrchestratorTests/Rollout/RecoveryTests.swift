import Foundation
import StrictYAML
import TestSupport
import Testing
import Traffic

@testable import DeploymentRuntimes
@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// Recovery prints and carries out one plan: what `recover --dry-run` and `run --dry-run` show
/// is what `recover` does (they were two decision trees, and disagreed when the live colour was
/// gone: the printed plan stopped the colour that carried the traffic, recovery kept it).
@Suite struct RecoveryTests {
    /// A runtime whose colours run as the test says; it records what it is asked to stop.
    final class StubRuntime: DeploymentRuntime {
        let running: Locked<Set<String>>
        let stopped = Locked<[String]>([])
        let models: ModelStore
        var name: String { "process" }
        var loadBalancer: any NginxHost { LocalNginx() }

        init(running: Set<String>, folder: String) {
            self.running = Locked(running)
            models = ModelStore(folder: folder + "/models")
        }

        func preflight(colors: [String], loadBalancer: Bool) async throws {}
        func plannedContainers(target: String, loadBalancer: Bool) throws -> [RunPlan.PlannedContainer] { [] }
        func deploy(color: String, modelDirectory: String, timeout: Duration) async throws -> ColorInstance {
            throw FakeError("not deployed here")
        }
        func instance(of color: String) async -> ColorInstance? {
            guard running.get().contains(color) else { return nil }
            return ColorInstance(
                color: color, pid: nil, address: "127.0.0.1:1", modelSHA256: "m", modelVersion: "v", modelPath: "/m")
        }
        func stop(color: String) async throws {
            stopped.update { $0.append(color) }
            running.update { _ = $0.remove(color) }
        }
        func logTail(of color: String) async -> String { "" }
    }

    static let live = LiveRelease(color: "blue", releaseID: "rel-1", modelSHA256: "m", modelVersion: "v")

    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var running: Set<String>
        var line: String
        var stopped: [String]
        var testDescription: String { name }
    }

    @Test(arguments: [
        Case(
            name: "the live colour gone: the other one carries the traffic and keeps running", running: ["green"],
            line: "keep green running: blue, the live colour, is not running", stopped: []),
        Case(
            name: "the live colour running: the other one stops", running: ["blue", "green"], line: "stop green",
            stopped: ["green"]),
    ])
    func whatIsPrintedIsWhatIsDone(_ example: Case) async throws {
        try await withTemporaryDirectory { folder in
            let file = folder + "/pipeline.yml"
            try """
            version: 1
            name: demo
            stages:
              - name: train
                uses: train
                with: {ratings: r.csv, model: m}
            deploy: {runtime: process}

            """.write(toFile: file, atomically: true, encoding: .utf8)
            let pipeline = try PipelineLoader().load(file)
            let store = StateStore(folder: folder + "/state")
            try store.setLive(Self.live)
            try store.saveRun(
                RunState(
                    releaseID: "rel-2", pid: 999_999, startedOn: Date(), phase: .shifting, live: Self.live,
                    target: "green", weight: 50))
            let runtime = StubRuntime(running: example.running, folder: folder)
            let recovery = Recovery(
                pipeline: pipeline, store: store, runtime: runtime, nginx: nil,
                history: ReleaseHistory(path: folder + "/history.jsonl"), progress: { _ in })

            let printed = try #require(try await recovery.plan())
            #expect(printed.lines.contains(example.line), "\(printed.lines)")
            #expect(runtime.stopped.get().isEmpty, "printing the plan changes nothing")

            let record = try #require(try await recovery.converge())
            #expect(runtime.stopped.get() == example.stopped)
            #expect(record.outcome == printed.outcome)
            #expect(record.outcome == .rolledBack)
            #expect(try store.run() == nil, "converged: the run's state is gone")
        }
    }
}
