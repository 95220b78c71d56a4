import Foundation
import Orchestrator
import OrchestratorSupport
import PipelineSchema
import Provenance
import RecEngine
import RecEngineContract
import Testing

/// The tune stage, run for real: `recengine tune` chooses EASE's λ on a validation split of the
/// training side, the train stage reads the choice, the record keeps both with their digests.
@Suite struct TuneStageTests {
    static let pipeline = """
        version: 1
        name: tuned
        history: releases/history.jsonl
        stages:
          - name: ingest
            uses: ingest
            with: {source: raw.csv, format: ratings, output: data/ratings.csv}
          - name: split
            uses: split
            with: {ratings: data/ratings.csv, train: data/train.csv, test: data/test.csv}
          - name: tune
            uses: tune
            with:
              ratings: data/train.csv
              output: models/tuned.json
              algorithm: ease
              space: reg=0.5,50,5000
              validation: stratified-user
              seed: 7
            gate:
              tune_score: {min: 0}
          - name: train
            uses: train
            with: {ratings: data/train.csv, model: models/m, algorithm: ease, tuned: models/tuned.json}
          - name: evaluate
            uses: evaluate
            with: {model: models/m, ratings: data/test.csv}
        """

    @Test func theTrainStageTrainsWhatTheTuneStageChoseAndTheRecordKeepsIt() async throws {
        try await withTemporaryDirectory { folder in
            try writeRatings(to: folder + "/raw.csv")
            try write(Self.pipeline, to: folder + "/p.yml")
            let (first, progress) = try await runPipeline(folder + "/p.yml")
            let record = try #require(first.record)
            #expect(record.outcome == .succeeded, "\(record.stages.map { "\($0.name): \($0.error ?? "")" })")
            #expect(record.stages.map(\.status) == [.succeeded, .succeeded, .succeeded, .succeeded, .succeeded])
            let (tune, train) = (record.stages[2], record.stages[3])

            // The choice, its score and the protocol that scored it are in the record.
            let tuning = try #require(tune.tuning)
            let reg = try #require(tuning.chosen["reg"])
            #expect([0.5, 50, 5000].contains(reg))
            #expect(
                tuning.algorithm == "ease" && tuning.trials == 3 && tuning.candidates == 3 && !tuning.stoppedByBudget)
            #expect(
                tuning.protocol.validation == "stratified-user" && tuning.protocol.seed == 7
                    && tuning.protocol.metric == "ndcg_at_k")
            #expect(tune.metrics["chosen_reg"] == reg, "\(tune.metrics)")
            // The same number read by two JSON parsers: equal to the last digits or so.
            #expect(abs((tune.metrics["tune_score"] ?? .nan) - tuning.score) < 1e-12, "\(tune.metrics) \(tuning.score)")
            #expect(tune.metrics["tune_trials"] == 3)
            #expect(tune.gates.first?.passed == true)
            #expect(tune.argv?.contains("--out") == true)
            let shown = reg == reg.rounded() ? String(Int(reg)) : String(format: "%.4f", reg)
            #expect(progress.contains { $0.contains("chose ease reg=\(shown): ndcg_at_k") }, "\(progress)")
            #expect(
                tuning.summary.hasPrefix("ease reg=\(shown): ndcg_at_k ")
                    && tuning.summary.hasSuffix("a stratified-user validation split, 3 trials of 3 candidates"))

            // `orchestrate explain` says which parameters the released model was trained with.
            let explain = try await CLITests.orchestrate(
                ["explain", record.releaseID, "--history", "releases/history.jsonl"], in: folder)
            #expect(explain.status == 0, "\(explain.stderr)")
            #expect(
                explain.stdout.contains("tuned by stage tune (succeeded): chose \(tuning.summary)"), "\(explain.stdout)"
            )
            let json = try await CLITests.orchestrate(
                ["explain", record.releaseID, "--history", "releases/history.jsonl", "--output", "json"], in: folder)
            let object = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
            #expect(
                ((object?["tuning"] as? [String: Any])?["tune"] as? [String: Any])?["chosen"] as? [String: Double] == [
                    "reg": reg
                ])

            // The train stage read the tune's output: the same digest, and the model has that λ.
            let choice = try #require(tune.outputs.first)
            #expect(choice.path == folder + "/models/tuned.json" && choice.sha256?.count == 64)
            #expect(train.inputs.contains(choice), "\(train.inputs)")
            #expect(train.argv?.contains("--tuned") == true && train.argv?.contains("--lr") == false)
            let manifest = try ModelDirectory.readManifest(of: folder + "/models/m")
            #expect(manifest.easeParameters?.regularization == reg)

            // Nothing changed: the tune stage is reused with its choice, and so is the training.
            let (second, _) = try await runPipeline(folder + "/p.yml")
            #expect(second.record?.stages.map(\.status) == [.cached, .cached, .cached, .cached, .cached])
            #expect(second.record?.stages[2].tuning == tuning)

            // Another space re-runs the tune stage; the train stage runs again only if the choice changed.
            try write(
                Self.pipeline.replacingOccurrences(of: "reg=0.5,50,5000", with: "reg=\(reg),\(reg * 3)"),
                to: folder + "/p.yml")
            let (third, _) = try await runPipeline(folder + "/p.yml")
            let thirdRecord = try #require(third.record)
            #expect(thirdRecord.stages[2].status == .succeeded)
            let rechosen = try #require(thirdRecord.stages[2].tuning?.chosen["reg"])
            #expect(thirdRecord.stages[3].status == (rechosen == reg ? .cached : .succeeded))
        }
    }

    /// A train stage that reads a tune's choice leaves its learning rate and alpha unset (the
    /// choice or the algorithm's default fills them), not filled with the train stage's defaults.
    @Test func aTunedTrainStageLeavesTheTunedParametersUnset() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/p.yml"
            try write(
                Self.pipeline.replacingOccurrences(of: "algorithm: ease", with: "algorithm: als").replacingOccurrences(
                    of: "reg=0.5,50,5000", with: "alpha=1,10"),
                to: path)
            let pipeline = try PipelineLoader(environment: [:]).load(path)
            guard case .builtin(.train(let parameters)) = pipeline.stages[3].action else {
                Issue.record("not a train stage: \(pipeline.stages[3].action)")
                return
            }
            #expect(parameters.tuned == folder + "/models/tuned.json")
            #expect(parameters.alpha == nil && parameters.lr == nil)
            #expect(parameters.seed == 0, "other defaults stay")
        }
    }
}
