import EngineAPI
import Foundation
import PipelineSchema
import StrictYAML
import TestSupport
import Testing

@Suite struct OverrideTests {
    static let pipeline = """
        version: 1
        name: demo
        stages:
          - name: train
            uses: train
            with: {ratings: r.csv, model: m}
          - name: evaluate
            uses: evaluate
            with: {model: m, ratings: t.csv}
            gate:
              rmse: {max: 0.99}
        deploy: {}
        traffic: {wait: 1h}

        """

    func load(_ overrides: [String]) async throws -> Pipeline {
        try await withTemporaryDirectory { folder in
            try write(Self.pipeline, to: folder + "/p.yml")
            return try PipelineLoader(environment: [:]).load(folder + "/p.yml", overrides: overrides)
        }
    }

    func issues(_ overrides: [String]) async throws -> [ValidationIssue] {
        do {
            _ = try await load(overrides)
            return []
        } catch let error as PipelineValidationError {
            return error.issues
        }
    }

    @Test func overridesReachNestedValuesAndStagesByName() async throws {
        let pipeline = try await load([
            "stages.evaluate.gate.rmse.max=0.95", "traffic.wait=60s", "stages.train.with.epochs=3",
            "traffic.steps=[10, 100]",
        ])
        #expect(pipeline.stages[1].gate == [MetricThreshold(metric: "rmse", min: nil, max: 0.95)])
        #expect(pipeline.traffic?.wait == .seconds(60))
        #expect(pipeline.traffic?.steps == [10, 100])
        guard case .builtin(.train(let parameters)) = pipeline.stages[0].action else {
            Issue.record("not a train stage: \(pipeline.stages[0].action)")
            return
        }
        #expect(parameters.epochs == 3)
    }

    @Test func overridesCanAddSections() async throws {
        let pipeline = try await load(["rollback.automatic=false", "stages.train.timeout=2m"])
        #expect(pipeline.rollback.automatic == false)
        #expect(pipeline.stages[0].timeout == .seconds(120))
    }

    @Test func overridesAreValidatedLikeTheFile() async throws {
        let found = try await issues(["stages.evaluate.gate.rmse.max=low", "traffic.wiat=5m", "traffic.steps=[50, 10]"])
        #expect(found.count == 3)
        #expect(found.allSatisfy { $0.file == "--set" })
        #expect(
            found.contains { $0.path == "stages.evaluate.gate.rmse.max" && $0.message.contains("expected a number") })
        #expect(found.contains { $0.message.contains("did you mean \"wait\"?") })
        #expect(found.contains { $0.message.contains("weights must increase") })
    }

    @Test func aTagInAnOverrideIsRefusedLikeOneInTheFile() async throws {
        let found = try await issues(["traffic.wait=!!str 5s", "stages.train.with.epochs=!custom 3"])
        #expect(found.count == 2)
        #expect(found.allSatisfy { $0.file == "--set" && $0.message.contains("is not read") })
        #expect(found.contains { $0.path == "traffic.wait" && $0.message.contains("!!str") })
        #expect(found.contains { $0.path == "stages.train.with.epochs" && $0.message.contains("!custom") })
    }

    @Test func badOverrideKeysAreReported() async throws {
        #expect(
            try await issues(["stages.deploy.timeout=1m"]).first?.message.contains("no entry named \"deploy\"") == true)
        #expect(try await issues(["name"]).first?.message.contains("expected KEY=VALUE") == true)
        #expect(try await issues(["name.first=x"]).first?.message.contains("is a single value") == true)
    }
}
