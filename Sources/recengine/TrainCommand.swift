import ArgumentParser
import CommandLineSupport
import RecEngine
import RecEngineContract

struct TrainCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train", abstract: "Train an SVD, implicit ALS or EASE model and write a model directory.")

    @OptionGroup var input: RatingsOptions
    @Option(help: "Model directory to write (model.safetensors + manifest.json).") var out: String
    @Option(help: "Version name for the model (default: the first 12 hex digits of its digest).") var modelVersion:
        String?
    @Option(help: "als, ease: watch events to learn from besides the ratings (the CSV `ingest --watches` writes).")
    var watches: String?
    @Option(
        help:
            "The parameters recengine tune chose (the file of its --out) for this --algorithm: each fills a parameter left unset here; one also set here is refused."
    )
    var tuned: String?
    @OptionGroup var options: TrainingOptions
    @OptionGroup var output: OutputOptions

    func run() async throws {
        try await reportingErrors {
            let training = try tuned.map { try options.tuned(by: TuningChoice.load(path: $0), file: $0) } ?? options
            let file = try input.load()
            let model: RecommenderModel
            if let als = training.alsParameters {
                let events = try watches.map { try WatchEvents.load(path: $0) }
                model = try RecommenderModel.trainALS(
                    on: file, watches: events, parameters: als, threads: training.threads, version: modelVersion)
            } else if let ease = training.easeParameters {
                let events = try watches.map { try WatchEvents.load(path: $0) }
                model = try RecommenderModel.trainEASE(
                    on: file, watches: events, parameters: ease, threads: training.threads, version: modelVersion)
            } else {
                guard watches == nil else {
                    throw RecEngineError(
                        .invalidArgument, "--watches goes with --algorithm als or ease: SVD learns from ratings only")
                }
                model = try RecommenderModel.train(on: file, parameters: training.parameters, version: modelVersion)
            }
            let manifest = try ModelDirectory.save(model, to: out)
            if output.output == .json {
                var summary = manifest
                summary.userIDs = []
                summary.itemIDs = []
                let metrics = [
                    TrainMetric.trainRMSE.rawValue: manifest.metrics.trainRMSE,
                    TrainMetric.trainMAE.rawValue: manifest.metrics.trainMAE,
                    TrainMetric.baselineTrainRMSE.rawValue: manifest.metrics.baselineTrainRMSE,
                    TrainMetric.fitSeconds.rawValue: manifest.metrics.fitSeconds,
                ].compactMapValues { $0 }
                try printJSON(Summary(manifest: summary, skippedRows: file.skippedRows), metrics: metrics)
            } else {
                print(
                    "trained on \(file.ratings.count) ratings, \(file.ratings.userCount) users, \(file.ratings.itemCount) items"
                )
                if let rmse = manifest.metrics.trainRMSE, let baseline = manifest.metrics.baselineTrainRMSE {
                    print(
                        "fit \(format(manifest.metrics.fitSeconds, 3)) s (\(manifest.metrics.instructionSet)); train RMSE \(format(rmse)) (baseline \(format(baseline)))"
                    )
                } else {
                    print(
                        "fit \(format(manifest.metrics.fitSeconds, 3)) s (\(manifest.metrics.instructionSet), \(training.threads) threads); \(manifest.metrics.interactions ?? 0) user-item pairs from \(manifest.metrics.events ?? 0) events"
                    )
                }
                if file.skippedRowCount > 0 {
                    print("skipped \(file.skippedRowCount) malformed rows")
                }
                print("model \(manifest.displayVersion) -> \(out) (sha256 \(manifest.modelSHA256))")
            }
        }
    }

    struct Summary: Encodable {
        var manifest: ModelManifest
        var skippedRows: [SkippedRow]

        enum CodingKeys: String, CodingKey {
            case manifest
            case skippedRows = "skipped_rows"
        }
    }
}
