import Foundation
import EngineAPI
import StrictYAML
import RecEngine

/// Runs the built-in stages in process through the RecEngine library.
enum BuiltinStageRunner {
    /// What a built-in reports: its metrics, and for a movie log ingest what it read.
    struct Outcome: Sendable {
        var metrics: [String: Double]
        var ingest: IngestReport?
    }

    /// Runs one built-in. `baselineShares` are the rating shares of the last promoted release's
    /// ingest, the reference for the ingest's distribution shift.
    static func run(_ kind: BuiltinStage, _ parameters: [String: ParameterValue], baselineShares: [Double]? = nil) throws -> Outcome {
        func optionalPath(_ name: String) -> String? {
            if case .string(let value)? = parameters[name] { return value }
            return nil
        }
        func path(_ name: String) -> String {
            optionalPath(name) ?? ""
        }
        func integer(_ name: String) -> Int {
            if case .integer(let value)? = parameters[name] { return value }
            return 0
        }
        func number(_ name: String) -> Double {
            switch parameters[name] {
            case .number(let value)?: return value
            case .integer(let value)?: return Double(value)
            default: return 0
            }
        }
        switch kind {
        case .ingest where path("format") == "movielog":
            let ingest = MovieLogIngest(
                source: try MovieLogSource(parsing: path("source")), store: path("store"), output: path("output"),
                watches: optionalPath("watches"), rejects: optionalPath("rejects"), mode: IngestMode(rawValue: path("mode")) ?? .stream,
                group: path("group"), maxRecords: integer("maxRecords"), maxDuration: .milliseconds(Int64(number("maxSeconds") * 1000)),
                baselineShares: baselineShares)
            let report = try ingest.run()
            return Outcome(metrics: report.metrics, ingest: report)
        case .ingest:
            let policy = BadRowPolicy(rawValue: path("onBadRow")) ?? .fail
            let file = try RatingsFile.load(path: path("source"), onBadRow: policy)
            try RatingsFile.writeCSV(file.ratings, to: path("output"))
            let rows = file.ratings.count + file.skippedRowCount
            return Outcome(metrics: [
                "ratings": Double(file.ratings.count), "users": Double(file.ratings.userCount),
                "items": Double(file.ratings.itemCount), "skipped_rows": Double(file.skippedRowCount),
                "skipped_share": rows == 0 ? 0 : Double(file.skippedRowCount) / Double(rows),
            ])
        case .split:
            let file = try RatingsFile.load(path: path("ratings"))
            let split = try Split.holdout(count: file.ratings.count, testSize: number("testSize"), seed: UInt64(integer("seed")))
            try RatingsFile.writeCSV(file.ratings.subset(split.train), to: path("train"))
            try RatingsFile.writeCSV(file.ratings.subset(split.test), to: path("test"))
            return Outcome(metrics: ["train_ratings": Double(split.train.count), "test_ratings": Double(split.test.count)])
        case .train:
            let file = try RatingsFile.load(path: path("ratings"))
            let svd = SVDParameters(
                factors: integer("factors"), epochs: integer("epochs"), learningRate: number("lr"), regularization: number("reg"),
                initStd: number("initStd"), seed: UInt64(integer("seed")))
            let model = try RecommenderModel.train(on: file, parameters: svd, version: optionalPath("version"))
            let manifest = try ModelDirectory.save(model, to: path("model"))
            return Outcome(metrics: [
                "train_rmse": manifest.metrics.trainRMSE, "train_mae": manifest.metrics.trainMAE,
                "baseline_train_rmse": manifest.metrics.baselineTrainRMSE, "fit_seconds": manifest.metrics.fitSeconds,
            ])
        case .evaluate:
            let model = try ModelDirectory.load(from: path("model"))
            let test = try RatingsFile.load(path: path("ratings"))
            let report = Evaluation.evaluate(model, on: test.ratings, k: integer("k"))
            return Outcome(metrics: [
                "rmse": report.model.rmse, "mae": report.model.mae, "precision_at_k": report.model.precisionAtK,
                "recall_at_k": report.model.recallAtK, "baseline_rmse": report.baseline.rmse, "baseline_mae": report.baseline.mae,
                "baseline_precision_at_k": report.baseline.precisionAtK, "baseline_recall_at_k": report.baseline.recallAtK,
                "rmse_improvement": report.baseline.rmse - report.model.rmse,
            ])
        }
    }
}
