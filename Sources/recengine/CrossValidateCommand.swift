import ArgumentParser
import CommandLineSupport
import Foundation
import RecEngine
import RecEngineContract

struct CrossValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cv",
        abstract:
            "K-fold cross-validation: RMSE and MAE (SVD), NDCG@k, recall@k, MAP@k, coverage, popularity bias and fit time per fold and on average."
    )

    @OptionGroup var input: RatingsOptions
    @Option(help: "Number of folds.") var folds = 5
    @Option(name: .customLong("cv-seed"), help: "Seed of the fold shuffle.") var cvSeed: UInt64 = 0
    @Option(help: "k of the ranking metrics.") var k = 10
    @OptionGroup var training: TrainingOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await reportingErrors {
            let file = try input.load()
            let report = try CrossValidation.run(
                file.ratings, folds: folds, seed: cvSeed, parameters: training.parameters, als: training.alsParameters,
                ease: training.easeParameters, threads: training.threads,
                k: k
            ) { number, fold in
                printError(
                    "fold \(number)/\(folds): \(fold.rmse.map { "RMSE \(format($0)) MAE \(format(fold.mae ?? 0)) " } ?? "")NDCG@\(k) \(format(fold.ranking.ndcg)) fit \(format(fold.fitSeconds, 3)) s"
                )
            }
            if output.output == .json {
                try printJSON(report)
            } else {
                print(
                    "\(folds)-fold cross-validation of \(report.algorithm) on \(file.ratings.count) ratings (\(report.instructionSet), k = \(k))"
                )
                print("          RMSE     MAE  NDCG@k  recall@k   MAP@k  coverage  popularity  fit s")
                func row(_ name: String, rmse: Double?, mae: Double?, fit: Double?, _ ranking: RankingMetrics) -> String
                {
                    name.padding(toLength: 8, withPad: " ", startingAt: 0)
                        + "  \(rmse.map { format($0) } ?? "     -")  \(mae.map { format($0) } ?? "     -")"
                        + "  \(format(ranking.ndcg))    \(format(ranking.recall))  \(format(ranking.map))    \(format(ranking.coverage))      \(format(ranking.popularity))  \(fit.map { format($0, 3) } ?? "-")"
                }
                for (number, fold) in report.folds.enumerated() {
                    print(row("fold \(number + 1)", rmse: fold.rmse, mae: fold.mae, fit: fold.fitSeconds, fold.ranking))
                }
                print(
                    row(
                        "mean", rmse: report.mean.rmse, mae: report.mean.mae, fit: report.mean.fitSeconds,
                        report.mean.ranking))
                if let baseline = report.baseline {
                    print("baseline  \(format(baseline.rmse ?? 0))  \(format(baseline.mae ?? 0))  (bias only)")
                }
                print(row("popular", rmse: nil, mae: nil, fit: nil, report.mean.popular))
            }
        }
    }
}
