import Foundation
import StrictYAML
import TestSupport
import Testing

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// Gates relative to history: the plan reads the last promoted releases' values of the stage's
/// metric, takes the quantile, and turns "not below it by more than 2 %" into a bound it prints.
@Suite struct HistoryGateTests {
    static let pipeline = """
        version: 1
        name: svc
        history: releases/history.jsonl
        stages:
          - name: train
            uses: train
            with: {ratings: ratings.csv, model: models/m}
            gate:
              train_rmse: {max: 1.5, history: {last: 3, maxRise: 0.05}}
              fit_seconds: {history: {last: 3, quantile: 0.9, maxDrop: 0.5}}

        """

    /// A promoted release whose train stage reported these metrics.
    static func release(
        _ id: String, _ metrics: [String: Double], outcome: ReleaseOutcome = .succeeded
    ) -> ReleaseRecord {
        var record = ReleaseRecords.sample(id)
        record.action = .release
        record.outcome = outcome
        record.stages = [
            .init(
                status: .succeeded, name: "train", uses: "train", argv: nil, parameters: nil, attempts: 1,
                durationSeconds: 1, inputs: [], outputs: [], metrics: metrics, gates: [], reason: nil)
        ]
        return record
    }

    func planned(records: [ReleaseRecord]) async throws -> RunPlan.PlannedStage {
        try await withTemporaryDirectory { folder in
            try Self.pipeline.write(toFile: folder + "/p.yml", atomically: true, encoding: .utf8)
            try "user_id,movie_id,rating\nu,m,4\n".write(
                toFile: folder + "/ratings.csv", atomically: true, encoding: .utf8)
            let pipeline = try PipelineLoader().load(folder + "/p.yml")
            let plan = try Planner(pipeline: pipeline, options: RunOptions(), records: records, runtime: nil).plan(
                releaseID: "rel-new", live: nil, recovery: nil)
            return try #require(plan.stages.first)
        }
    }

    @Test func theQuantileIsNumpysLinearOne() {
        // numpy.quantile([3, 1, 4, 2], q) for q = 0.5, 0.9, 0, 1; and of one value.
        #expect(HistoryBound.quantile([3, 1, 4, 2], 0.5) == 2.5)
        #expect(abs(HistoryBound.quantile([3, 1, 4, 2], 0.9)! - 3.7) < 1e-12)
        #expect(HistoryBound.quantile([3, 1, 4, 2], 0) == 1 && HistoryBound.quantile([3, 1, 4, 2], 1) == 4)
        #expect(HistoryBound.quantile([0.93], 0.5) == 0.93 && HistoryBound.quantile([], 0.5) == nil)
    }

    @Test func theBoundComesFromTheLastPromotedReleasesOnly() async throws {
        // Oldest first, as the planner reads them: the newest three promoted count, the rolled-back
        // one and the oldest do not.
        let records = [
            Self.release("r1", ["train_rmse": 0.50, "fit_seconds": 1]),
            Self.release("r2", ["train_rmse": 0.90, "fit_seconds": 2]),
            Self.release("r3", ["train_rmse": 0.80, "fit_seconds": 4]),
            Self.release("r4", ["train_rmse": 0.10, "fit_seconds": 100], outcome: .rolledBack),
            Self.release("r5", ["train_rmse": 1.00, "fit_seconds": 3]),
        ]
        let stage = try await planned(records: records)
        let rmse = try #require(stage.gate.first { $0.metric == "train_rmse" })
        #expect(rmse.reference?.releases == ["r5", "r3", "r2"])
        #expect(rmse.reference?.value == 0.9, "the median of 1.0, 0.8, 0.9")
        #expect(abs((rmse.max ?? 0) - 0.945) < 1e-12, "0.9 + 5 %, stricter than the declared 1.5")
        #expect(rmse.admits(0.94) && !rmse.admits(0.95))
        #expect(
            rmse.condition
                == "<= 0.945 (not above the median by more than 5 % of the last 3 promoted releases: 0.9 of 1, 0.8, 0.9)",
            "\(rmse.condition)")
        let fit = try #require(stage.gate.first { $0.metric == "fit_seconds" })
        // The 90th percentile of 3, 4, 2 is 3.8; half of it may be lost.
        #expect(abs((fit.reference?.value ?? 0) - 3.8) < 1e-12 && abs((fit.min ?? 0) - 1.9) < 1e-12)
        #expect(fit.max == nil)
    }

    @Test func withoutPromotedReleasesOnlyTheDeclaredBoundsHold() async throws {
        let stage = try await planned(records: [Self.release("r1", ["train_rmse": 0.5], outcome: .failed)])
        let rmse = try #require(stage.gate.first { $0.metric == "train_rmse" })
        #expect(rmse.reference == nil && rmse.max == 1.5)
        #expect(rmse.condition.contains("none recorded it yet"), "\(rmse.condition)")
        let fit = try #require(stage.gate.first { $0.metric == "fit_seconds" })
        #expect(fit.admits(0.001), "no bound at all yet")
    }

    @Test func planningReadsBackOnlyAsFarAsTheGatesNeed() async throws {
        let stages = try await withTemporaryDirectory { folder in
            try Self.pipeline.write(toFile: folder + "/p.yml", atomically: true, encoding: .utf8)
            return try PipelineLoader().load(folder + "/p.yml").stages
        }
        var planning = PlanningRecords(stages: stages)
        for id in ["r9", "r8"] { planning.consider(Self.release(id, ["train_rmse": 1])) }
        #expect(!planning.isComplete, "3 promoted releases are wanted, 2 seen")
        planning.consider(Self.release("r7", ["train_rmse": 1], outcome: .rolledBack))
        #expect(!planning.isComplete, "a rolled-back release does not count")
        planning.consider(Self.release("r6", ["train_rmse": 1]))
        #expect(planning.isComplete)
        #expect(planning.records.map(\.releaseID) == ["r6", "r8", "r9"])
    }

    /// A promoted release whose rollout measured the gate `g` with these values over its steps.
    static func measured(_ id: String, _ values: [Double?], outcome: ReleaseOutcome = .succeeded) -> ReleaseRecord {
        var record = release(id, [:], outcome: outcome)
        let measurements = values.map {
            GateMeasurement(outcome: "success", gate: "g", query: "q", value: $0, condition: "", at: Date())
        }
        record.rollout = .init(
            target: "green", mode: "sticky",
            steps: [.init(weight: 25, startedOn: Date(), finishedOn: Date(), passed: true, measurements: measurements)],
            events: [])
        return record
    }

    @Test func aPromQLGateComparesWithEachReleasesMedianMeasurement() async throws {
        let records = [
            Self.measured("r1", [0.010, 0.030, 0.020]), Self.measured("r2", [0.040, nil, 0.040]),
            Self.measured("r3", [0.5], outcome: .rolledBack), Self.measured("r4", []),
        ]
        let pipeline = try await withTemporaryDirectory { folder in
            try Self.pipeline.write(toFile: folder + "/p.yml", atomically: true, encoding: .utf8)
            return try PipelineLoader().load(folder + "/p.yml")
        }
        var gate = PromQLGate(
            name: "g", query: "q", min: nil, max: nil, interval: .seconds(1), count: 1, initialDelay: .seconds(0),
            failureLimit: 0, consecutiveErrorLimit: 1, onNoData: .fail)
        gate.history = HistoryBound(last: 5, maxRise: 0.5)
        let resolved = Planner(pipeline: pipeline, options: RunOptions(), records: records, runtime: nil).resolvedGate(
            gate)
        // r2's median 0.04, r1's 0.02 (r3 rolled back, r4 measured nothing): their median 0.03, + 50 %.
        #expect(resolved.reference?.releases == ["r2", "r1"] && resolved.reference?.values == [0.04, 0.02])
        #expect(abs((resolved.max ?? 0) - 0.045) < 1e-12 && resolved.min == nil)
        let tally = GateTally(gate: resolved, query: "q")
        #expect(tally.condition.admits(0.044) && !tally.condition.admits(0.046))
        #expect(tally.condition.condition.hasPrefix("<= 0.045 (not above the median by more than 50 % of the last 2"))
    }
}
