import CommandLineSupport
import ArgumentParser
import RecEngine

struct CrossValidateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cv", abstract: "K-fold cross-validation: RMSE, MAE and fit time per fold and on average.")

    @OptionGroup var input: RatingsOptions
    @Option(help: "Number of folds.") var folds = 5
    @Option(name: .customLong("cv-seed"), help: "Seed of the fold shuffle.") var cvSeed: UInt64 = 0
    @OptionGroup var training: TrainingOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await reportingErrors {
            let file = try input.load()
            let report = try CrossValidation.run(
                file.ratings, folds: folds, seed: cvSeed, parameters: training.parameters
            ) { number, fold in
                printError("fold \(number)/\(folds): RMSE \(format(fold.rmse)) MAE \(format(fold.mae)) fit \(format(fold.fitSeconds, 3)) s")
            }
            if output.output == .json {
                try printJSON(report)
            } else {
                print("\(folds)-fold cross-validation on \(file.ratings.count) ratings (\(report.instructionSet))")
                print("          RMSE     MAE  fit s")
                for (number, fold) in report.folds.enumerated() {
                    print("fold \(number + 1)  \(format(fold.rmse))  \(format(fold.mae))  \(format(fold.fitSeconds, 3))")
                }
                print("mean    \(format(report.mean.rmse))  \(format(report.mean.mae))  \(format(report.mean.fitSeconds, 3))")
                print("baseline \(format(report.baseline.rmse))  \(format(report.baseline.mae))  (bias only)")
            }
        }
    }
}
