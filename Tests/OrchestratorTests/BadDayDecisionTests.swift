import Foundation
import Testing
import Traffic

@testable import DeploymentRuntimes
@testable import Orchestrator
@testable import OrchestratorSupport
@testable import PipelineSchema
@testable import Provenance

/// The decisions behind a bad day's rollout, on plain values: which colours are strays, what a
/// rollout's end did, what a journal that cannot save keeps. (Which processes belong to a run:
/// `ProcessTableTests` in DeploymentRuntimesTests.)
@Suite struct BadDayDecisionTests {
    static let approved = String(repeating: "a", count: 64)
    static let unapproved = String(repeating: "b", count: 64)
    static let live = LiveRelease(color: "blue", releaseID: "rel-1", modelSHA256: approved, modelVersion: "v1")

    static func color(_ name: String, model: String?, weight: Int) -> ServingState.Color {
        let instance = model.map {
            ColorInstance(
                color: name, pid: 42, address: "127.0.0.1:9000", modelSHA256: $0, modelVersion: "v",
                modelPath: "/m/\($0)")
        }
        return ServingState.Color(
            color: name, instance: instance, health: HealthProbe(healthy: true, detail: "HTTP 200"), weight: weight,
            upstream: nil)
    }

    struct StrayCase: Sendable, CustomTestStringConvertible {
        var name: String
        var live: LiveRelease?
        var green: ServingState.Color
        var kept: Set<String>
        var stray: Bool
        var testDescription: String { name }
    }

    @Test(arguments: [
        StrayCase(
            name: "idle with a model nobody approved", live: live, green: color("green", model: unapproved, weight: 0),
            kept: [], stray: true),
        StrayCase(
            name: "idle with a kept model (stopOld: false)", live: live,
            green: color("green", model: approved, weight: 0), kept: [approved], stray: false),
        StrayCase(
            name: "receiving traffic", live: live, green: color("green", model: unapproved, weight: 25), kept: [],
            stray: false),
        StrayCase(
            name: "not running", live: live, green: color("green", model: nil, weight: 0), kept: [], stray: false),
        StrayCase(
            name: "nothing released yet", live: nil, green: color("green", model: unapproved, weight: 0), kept: [],
            stray: true),
    ])
    func aColourIsAStrayWhenItRunsWithNoTrafficAndNothingKeepsIt(_ example: StrayCase) {
        let blue = Self.color(
            "blue", model: Self.approved, weight: example.live == nil ? 0 : 100 - example.green.weight)
        let serving = ServingState(nginxRunning: true, traffic: nil, trafficReport: nil, colors: [blue, example.green])
        let strays = serving.strays(live: example.live, keptModels: example.kept).map(\.color)
        #expect(strays.contains("green") == example.stray, "\(strays)")
        #expect(strays.contains("blue") == (example.live == nil), "the live colour is never a stray")
    }

    @Test func whatTheEndOfARolloutDidIsReadFromItsLastDecision() throws {
        func event(_ kind: RolloutEvent.Kind, _ detail: String) -> RolloutEvent {
            RolloutEvent(at: Date(), kind: kind, detail: detail)
        }
        var record = Recovery.rebuiltRecord(releaseID: "rel-2", pipeline: try Self.pipeline(), run: nil)
        record.rollout = .init(
            live: "blue", target: "green", mode: "sticky", steps: [],
            events: [
                event(.shift, "green 50% / blue 50%"), event(.rollback, "a gate failed"),
                event(.shift, "blue 100% (traffic restored)"),
                event(.hook, "on-rollback x: ok"), event(.stop, "green stopped"),
            ])
        #expect(Recovery.lastActions(of: record) == ["blue 100% (traffic restored)", "green stopped"])
    }

    static func pipeline() throws -> Pipeline {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("bad-day-\(UUID().uuidString)").path
        try write("version: 1\nname: svc\nstages:\n  - name: s\n    run: [\"true\"]\n", to: folder + "/pipeline.yml")
        defer { try? FileManager.default.removeItem(atPath: folder) }
        return try PipelineLoader().load(folder + "/pipeline.yml")
    }

    @Test func aJournalThatCannotSaveKeepsEverythingInMemoryAndSaysSoUntilTheRunEnds() async throws {
        try await withTemporaryDirectory { folder in
            let disk = try FullDisk(at: folder + "/state", megabytes: 1)
            defer { disk.unmount() }
            let store = StateStore(folder: disk.folder + "/svc")
            let state = RunState(
                releaseID: "rel-3", pid: getpid(), startedOn: Date(), phase: .shifting, target: "green", weight: 25)
            var record = Recovery.rebuiltRecord(releaseID: "rel-3", pipeline: try Self.pipeline(), run: state)
            record.rollout = .init(live: "blue", target: "green", mode: "sticky", steps: [], events: [])
            let journal = RunJournal(store: store, state: state, record: record)
            try await journal.begin()
            try await journal.requireSaved()

            try disk.fill()
            await #expect(throws: OrchestratorError.self) { try await journal.update { $0.weight = 50 } }
            await #expect(throws: OrchestratorError.self) { try await journal.event(.shift, "green 50%") }
            #expect(await journal.state.weight == 50, "the change is made in memory first")
            #expect(
                await journal.record.rollout?.events.map(\.detail) == ["green 50%"],
                "the record keeps what could not be saved")
            #expect(try store.run()?.weight == 25, "the file keeps the last state saved whole")
            let failure = await journal.saveFailure
            #expect(failure?.message.contains("No space left on device") == true, "\(failure?.message ?? "")")

            disk.free()
            try await journal.update { $0.weight = 25 }
            await #expect(
                throws: OrchestratorError.self, "a failed save is kept: traffic never moves forward after one"
            ) {
                try await journal.requireSaved()
            }
        }
    }
}
