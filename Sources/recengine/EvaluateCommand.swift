import ArgumentParser
import CommandLineSupport
import DurableFiles
import Foundation
import RecEngine
import RecEngineContract

struct EvaluateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract:
            "Evaluate a model on test ratings: RMSE, MAE, precision@k, recall@k (SVD); NDCG@k, recall@k, MAP@k, coverage, popularity bias (every model, and the most-popular baseline).",
        discussion: """
            Ranking protocol: every test user the model knows gets a list of k items from the \
            catalogue, leaving out what the user interacted with in training; each of the user's \
            held-out items is relevant. Give a test file from `split --mode temporal --last-n N` \
            for the per-user leave-last-N protocol. `--definitions microsoft-recommenders` computes \
            precision, recall, NDCG and MAP as Microsoft Recommenders' python_evaluation does (MAP \
            over all the user's relevant items; NDCG's mean also over test users the model does not \
            know, each 0).
            """)

    @Option(help: "Model directory.") var model: String
    @OptionGroup var input: RatingsOptions
    @Option(help: "k of every @k metric.") var k = 10
    @Option(help: "Formulas of the ranking metrics: recengine or microsoft-recommenders.") var definitions =
        RankingDefinitions.recengine
    @Option(help: "Also write the model's top-k list of every test user it knows to this CSV (user_id,movie_id,rank).")
    var lists: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard k >= 1 else { throw ValidationError("--k must be at least 1") }
    }

    func run() async throws {
        try await reportingErrors {
            let loaded = try ModelDirectory.load(from: model)
            let test = try input.load()
            let report = try Evaluation.evaluate(
                loaded, on: test.ratings, k: k, testSHA256: test.sha256, definitions: definitions)
            if let lists {
                var text = "user_id,movie_id,rank\n"
                for list in RankingEvaluation.lists(loaded, on: test.ratings, k: k) {
                    for (rank, item) in list.items.enumerated() {
                        text += "\(list.user),\(item),\(rank + 1)\n"
                    }
                }
                try AtomicFile.write(Data(text.utf8), to: lists)
            }
            if output.output == .json {
                try printJSON(report, metrics: report.metrics)
            } else {
                print(
                    "model \(loaded.manifest.displayVersion) (\(loaded.manifest.algorithm)) on \(test.ratings.count) ratings (k = \(k))"
                )
                if let model = report.model, let baseline = report.baseline {
                    print("             RMSE     MAE  precision@k  recall@k")
                    for (name, metrics) in [("model", model), ("baseline", baseline)] {
                        print(
                            name.padding(toLength: 9, withPad: " ", startingAt: 0)
                                + "  \(format(metrics.rmse))  \(format(metrics.mae))       \(format(metrics.precisionAtK))    \(format(metrics.recallAtK))"
                        )
                    }
                    if model.rmse >= baseline.rmse {
                        print("warning: the model is no better than the bias-only baseline")
                    }
                }
                let ranking = report.ranking
                print(
                    "ranking over \(ranking.protocol.users) users (\(ranking.protocol.unknownUsers) unknown users left out), \(definitions) definitions"
                )
                print("             NDCG@k  precision@k  recall@k   MAP@k  coverage  popularity")
                for (name, metrics) in [("model", ranking.model), ("popular", ranking.popular)] {
                    print(
                        name.padding(toLength: 9, withPad: " ", startingAt: 0)
                            + "    \(format(metrics.ndcg))       \(format(metrics.precision))    \(format(metrics.recall))  \(format(metrics.map))    \(format(metrics.coverage))      \(format(metrics.popularity))"
                    )
                }
            }
        }
    }
}
