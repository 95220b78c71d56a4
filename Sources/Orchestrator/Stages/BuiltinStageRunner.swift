import Foundation
import RecEngine

/// Runs the built-in stages in process through the RecEngine library.
enum BuiltinStageRunner {
    /// Runs one built-in and returns the metrics it reports.
    static func run(_ kind: BuiltinStage, _ parameters: [String: ParameterValue]) throws -> [String: Double] {
        func path(_ name: String) -> String {
            if case .string(let value)? = parameters[name] { return value }
            return ""
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
        case .ingest:
            let policy = BadRowPolicy(rawValue: path("onBadRow")) ?? .fail
            let file = try RatingsFile.load(path: path("source"), onBadRow: policy)
            try RatingsFile.writeCSV(file.ratings, to: path("output"))
            let rows = file.ratings.count + file.skippedRowCount
            return [
                "ratings": Double(file.ratings.count), "users": Double(file.ratings.userCount),
                "items": Double(file.ratings.itemCount), "skipped_rows": Double(file.skippedRowCount),
                "skipped_share": rows == 0 ? 0 : Double(file.skippedRowCount) / Double(rows),
            ]
        case .split:
            let file = try RatingsFile.load(path: path("ratings"))
            let split = try Split.holdout(count: file.ratings.count, testSize: number("testSize"), seed: UInt64(integer("seed")))
            try RatingsFile.writeCSV(file.ratings.subset(split.train), to: path("train"))
            try RatingsFile.writeCSV(file.ratings.subset(split.test), to: path("test"))
            return ["train_ratings": Double(split.train.count), "test_ratings": Double(split.test.count)]
        case .train:
            let file = try RatingsFile.load(path: path("ratings"))
            let svd = SVDParameters(
                factors: integer("factors"), epochs: integer("epochs"), learningRate: number("lr"), regularization: number("reg"),
                initStd: number("initStd"), seed: UInt64(integer("seed")))
            let version: String? = if case .string(let value)? = parameters["version"] { value } else { nil }
            let model = try RecommenderModel.train(on: file, parameters: svd, version: version)
            let manifest = try ModelDirectory.save(model, to: path("model"))
            return [
                "train_rmse": manifest.metrics.trainRMSE, "train_mae": manifest.metrics.trainMAE,
                "baseline_train_rmse": manifest.metrics.baselineTrainRMSE, "fit_seconds": manifest.metrics.fitSeconds,
            ]
        case .evaluate:
            let model = try ModelDirectory.load(from: path("model"))
            let test = try RatingsFile.load(path: path("ratings"))
            let report = Evaluation.evaluate(model, on: test.ratings, k: integer("k"))
            return [
                "rmse": report.model.rmse, "mae": report.model.mae, "precision_at_k": report.model.precisionAtK,
                "recall_at_k": report.model.recallAtK, "baseline_rmse": report.baseline.rmse, "baseline_mae": report.baseline.mae,
                "baseline_precision_at_k": report.baseline.precisionAtK, "baseline_recall_at_k": report.baseline.recallAtK,
                "rmse_improvement": report.baseline.rmse - report.model.rmse,
            ]
        }
    }
}
