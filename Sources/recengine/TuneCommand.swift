import ArgumentParser
import CommandLineSupport
import Foundation
import RecEngine
import RecEngineContract

struct TuneCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tune",
        abstract:
            "Choose an algorithm's parameters on a validation split of the training ratings (never the test file).",
        discussion: """
            Each candidate of --space (a grid, or --samples of it drawn with --seed) is trained on \
            the fitting side of one validation split of --ratings and scored by --metric on the \
            held-out side; the best is printed (with --output json, as "chosen", the parameters a \
            train stage takes; --out keeps the choice alone for train --tuned). No candidate \
            starts once --time-budget is spent. The same ratings, space and seed choose the same \
            parameters.
            """)

    @OptionGroup var input: RatingsOptions
    @Option(help: "svd, als or ease.") var algorithm = "ease"
    @Option(
        help:
            "Values to try, NAME=V1,V2;NAME=... (svd: factors, epochs, lr, reg; als: factors, epochs, reg, alpha; ease: reg)."
    )
    var space: String
    @Option(
        help:
            "grid (every combination), random (--samples of them) or halving (svd, als: every combination for a few epochs, the best third for three times as many, ... the last for all of epochs=N, by default the algorithm's)."
    ) var strategy = "grid"
    @Option(help: "random: how many combinations to try.") var samples: Int?
    @Option(help: "Validation split of the ratings: random, temporal, stratified-item or stratified-user.")
    var validation = "random"
    @Option(help: "Share of the ratings held out for validation.") var validationShare = 0.25
    @Option(help: "temporal: each user's last N ratings are held out (0: the newest --validation-share).") var lastN = 0
    @Option(help: "Seed of the validation split, of random sampling and of the models.") var seed: UInt64 = 42
    @Option(help: "k of the metric.") var k = 10
    @Option(help: "Metric to maximise: ndcg_at_k, map_at_k, ranking_recall_at_k or ranking_precision_at_k.")
    var metric = "ndcg_at_k"
    @Option(help: "Formulas of the metric: recengine or microsoft-recommenders.") var definitions = RankingDefinitions
        .recengine
    @Option(help: "Seconds after which no new candidate starts (default: no limit).") var timeBudget: Double?
    @Option(help: "Threads for als and ease.") var threads = 1
    @Option(
        help:
            "Also write the choice (the algorithm and its chosen parameters) to this file, replaced atomically: what train --tuned reads."
    ) var out: String?
    @OptionGroup var output: OutputOptions

    func validate() throws {
        guard (1...256).contains(threads) else { throw ValidationError("--threads must be from 1 to 256") }
        if let timeBudget {
            guard timeBudget > 0, timeBudget.isFinite else {
                throw ValidationError("--time-budget must be a positive number of seconds")
            }
        }
    }

    func run() async throws {
        try await reportingErrors {
            let searchSpace = try SearchSpace(
                algorithm: algorithm, parsing: space, strategy: strategy, samples: samples)
            let rankingProtocol = TuningProtocol(
                validation: validation, validationShare: validationShare, lastN: lastN, seed: seed, k: k,
                metric: metric, definitions: definitions)
            try rankingProtocol.validate()
            let file = try input.load()
            let report = try Tuning.run(
                file, space: searchSpace, protocol: rankingProtocol, threads: threads,
                budget: timeBudget.map { .milliseconds(Int64($0 * 1000)) }
            ) { trial in
                printError(
                    "\(Self.describe(trial.parameters)): \(metric) \(format(trial.score)) (fit \(format(trial.fitSeconds, 3)) s)"
                )
            }
            try out.map { try report.choice.write(to: $0) }
            if output.output == .json {
                try printJSON(report, metrics: report.metrics)
            } else {
                print(
                    "\(report.trials.count) trials of \(report.candidates) candidates on \(report.fitRatings) ratings, validated on \(report.validationRatings) (\(validation))\(report.stoppedByBudget ? ", stopped by the time budget" : "")"
                )
                print("chosen: \(algorithm) \(Self.describe(report.chosen)), \(metric) \(format(report.score))")
            }
        }
    }

    static func describe(_ parameters: [String: Double]) -> String {
        parameters.sorted { $0.key < $1.key }.map {
            "\($0.key)=\($0.value == $0.value.rounded() && abs($0.value) < 1e15 ? String(Int($0.value)) : String($0.value))"
        }
        .joined(separator: " ")
    }
}
