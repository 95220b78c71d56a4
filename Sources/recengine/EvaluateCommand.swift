import CommandLineSupport
import ArgumentParser
import Foundation
import RecEngine

struct EvaluateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate", abstract: "Evaluate a model on test ratings: RMSE, MAE, precision@k, recall@k.")

    @Option(help: "Model directory.") var model: String
    @OptionGroup var input: RatingsOptions
    @Option(help: "k of precision@k and recall@k.") var k = 10
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            let loaded = try ModelDirectory.load(from: model)
            let test = try input.load()
            let report = try Evaluation.evaluate(loaded, on: test.ratings, k: k)
            if output.output == .json {
                try printJSON(report, metrics: [
                    "rmse": report.model.rmse, "mae": report.model.mae, "precision_at_k": report.model.precisionAtK,
                    "recall_at_k": report.model.recallAtK, "baseline_rmse": report.baseline.rmse, "baseline_mae": report.baseline.mae,
                    "baseline_precision_at_k": report.baseline.precisionAtK, "baseline_recall_at_k": report.baseline.recallAtK,
                    "rmse_improvement": report.baseline.rmse - report.model.rmse,
                ])
            } else {
                print("model \(loaded.manifest.displayVersion) on \(test.ratings.count) ratings (k = \(k))")
                print("             RMSE     MAE  precision@k  recall@k")
                for (name, metrics) in [("model", report.model), ("baseline", report.baseline)] {
                    print(
                        name.padding(toLength: 9, withPad: " ", startingAt: 0)
                            + "  \(format(metrics.rmse))  \(format(metrics.mae))       \(format(metrics.precisionAtK))    \(format(metrics.recallAtK))")
                }
                if report.model.rmse >= report.baseline.rmse {
                    print("warning: the model is no better than the bias-only baseline")
                }
            }
        }
    }
}
