import RecEngineContract

/// The stages built into the orchestrator. Each runs as a child process of `recengine` (the
/// command a person would type, with `--output json`), so that a timeout or a signal stops its
/// work at once, and a retry starts clean.
public enum BuiltinStage: String, Sendable, CaseIterable, Codable {
    /// Consumes the movie log (a file, a folder, gzip, standard input or Kafka) exactly once into
    /// the ratings CSV the train stage reads; or, with `format: ratings`, copies and checks a ratings
    /// file (CSV or MovieLens u.data).
    case ingest
    /// A reproducible random hold-out split into training and test ratings.
    case split
    /// Chooses an algorithm's parameters from a declared search space, each candidate scored on a
    /// validation split of the training ratings (never the test file), within a time budget; the
    /// choice is a file (`output`) a train stage reads (`tuned`).
    case tune
    /// Trains a model directory: SVD on ratings, or implicit ALS or EASE on ratings and watches.
    case train
    /// Evaluates a model on test ratings (RMSE, MAE, precision@k, recall@k, and the baseline's, for
    /// SVD; NDCG@k, recall@k, MAP@k, coverage and popularity bias of the model and of the
    /// most-popular baseline, for every model).
    case evaluate

    /// How a parameter is read and what role a path plays.
    public enum Kind: Sendable, Equatable {
        case inputPath
        case outputPath
        /// A folder the stage keeps state in: a path, neither digested nor cached.
        case statePath
        /// A path, `-` (standard input) or `kafka://HOST:PORT/TOPIC`.
        case source
        case integer(ClosedRange<Int>)
        case number(ClosedRange<Double>)
        case choice([String])
        case text
    }

    public struct Parameter: Sendable {
        public var name: String
        public var kind: Kind
        /// nil: required.
        public var defaultValue: ParameterValue?
    }

    public var parameters: [Parameter] {
        switch self {
        case .ingest:
            [
                .init(name: "source", kind: .source, defaultValue: nil),
                .init(
                    name: "format", kind: .choice(IngestParameters.Format.allCases.map(\.rawValue)),
                    defaultValue: .string("movielog")),
                .init(name: "output", kind: .outputPath, defaultValue: nil),
                .init(name: "watches", kind: .outputPath, defaultValue: nil),
                .init(name: "rejects", kind: .outputPath, defaultValue: nil),
                .init(name: "store", kind: .statePath, defaultValue: nil),
                .init(
                    name: "mode", kind: .choice(IngestMode.allCases.map(\.rawValue)), defaultValue: .string("stream")),
                .init(name: "group", kind: .text, defaultValue: .string("orchestrate-ingest")),
                .init(name: "maxRecords", kind: .integer(0...Int.max), defaultValue: .integer(0)),
                .init(name: "maxSeconds", kind: .number(0.001...86_400), defaultValue: .number(300)),
                .init(
                    name: "onBadRow", kind: .choice(IngestParameters.BadRow.allCases.map(\.rawValue)),
                    defaultValue: .string("skip")),
            ]
        case .split:
            [
                .init(name: "ratings", kind: .inputPath, defaultValue: nil),
                .init(name: "train", kind: .outputPath, defaultValue: nil),
                .init(name: "test", kind: .outputPath, defaultValue: nil),
                .init(name: "testSize", kind: .number(0.0001...0.9999), defaultValue: .number(0.2)),
                .init(name: "seed", kind: .integer(0...Int.max), defaultValue: .integer(42)),
                .init(
                    name: "mode", kind: .choice(SplitParameters.Mode.allCases.map(\.rawValue)),
                    defaultValue: .string("random")),
                .init(name: "lastN", kind: .integer(0...1_000_000), defaultValue: .integer(0)),
                .init(name: "futureShare", kind: .number(0...0.9), defaultValue: .number(0)),
                .init(name: "future", kind: .outputPath, defaultValue: nil),
            ]
        case .train:
            [
                .init(name: "ratings", kind: .inputPath, defaultValue: nil),
                .init(name: "model", kind: .outputPath, defaultValue: nil),
                .init(
                    name: "algorithm", kind: .choice(TrainingAlgorithm.allCases.map(\.rawValue)),
                    defaultValue: .string("svd")),
                // Left out: the algorithm's own default (svd 100, 20, 0.02; als 64, 15, 0.05; ease λ 500).
                .init(name: "factors", kind: .integer(0...4096), defaultValue: nil),
                .init(name: "epochs", kind: .integer(1...10_000), defaultValue: nil),
                .init(name: "lr", kind: .number(1e-9...10), defaultValue: .number(0.005)),
                .init(name: "reg", kind: .number(0...100), defaultValue: nil),
                .init(name: "initStd", kind: .number(0...10), defaultValue: .number(0.1)),
                .init(name: "alpha", kind: .number(0...1_000_000), defaultValue: .number(TrainDefaults.alsAlpha)),
                .init(name: "threads", kind: .integer(1...256), defaultValue: .integer(1)),
                .init(name: "watches", kind: .inputPath, defaultValue: nil),
                .init(name: "seed", kind: .integer(0...Int.max), defaultValue: .integer(0)),
                .init(name: "version", kind: .text, defaultValue: nil),
                // The parameters a tune stage chose (its output): each fills one left unset here.
                .init(name: "tuned", kind: .inputPath, defaultValue: nil),
            ]
        case .tune:
            [
                .init(name: "ratings", kind: .inputPath, defaultValue: nil),
                .init(name: "output", kind: .outputPath, defaultValue: nil),
                .init(name: "algorithm", kind: .choice(TrainingAlgorithm.allCases.map(\.rawValue)), defaultValue: nil),
                // NAME=V1,V2;NAME=... with the names train takes (e.g. reg=100,200,500).
                .init(name: "space", kind: .text, defaultValue: nil),
                .init(name: "strategy", kind: .choice(SearchSpace.strategies), defaultValue: .string("grid")),
                .init(name: "samples", kind: .integer(1...SearchSpace.maximumCandidates), defaultValue: nil),
                .init(name: "validation", kind: .choice(TuningProtocol.validations), defaultValue: .string("random")),
                .init(name: "validationShare", kind: .number(0.0001...0.9999), defaultValue: .number(0.25)),
                .init(name: "lastN", kind: .integer(0...1_000_000), defaultValue: .integer(0)),
                .init(name: "seed", kind: .integer(0...Int.max), defaultValue: .integer(42)),
                .init(name: "k", kind: .integer(1...1000), defaultValue: .integer(10)),
                .init(name: "metric", kind: .choice(TuningProtocol.metrics), defaultValue: .string("ndcg_at_k")),
                .init(
                    name: "definitions", kind: .choice(RankingDefinitions.all.map(\.name)),
                    defaultValue: .string("recengine")),
                .init(name: "timeBudget", kind: .number(0.001...604_800), defaultValue: nil),
                .init(name: "threads", kind: .integer(1...256), defaultValue: .integer(1)),
            ]
        case .evaluate:
            [
                .init(name: "model", kind: .inputPath, defaultValue: nil),
                .init(name: "ratings", kind: .inputPath, defaultValue: nil),
                .init(name: "k", kind: .integer(1...1000), defaultValue: .integer(10)),
            ]
        }
    }

    /// Parameters that may be left out without a default.
    var optionalParameters: Set<String> {
        switch self {
        case .train: ["version", "factors", "epochs", "reg", "watches", "tuned"]
        case .tune: ["samples", "timeBudget"]
        case .split: ["future"]
        case .ingest: ["watches", "rejects", "store"]
        default: []
        }
    }

    /// The metrics the stage reports, which gates may bound.
    public var metrics: [String] {
        switch self {
        case .ingest: IngestReport.metricNames + [RatingsImportMetric.skippedRows, .skippedShare].map(\.rawValue)
        case .split: SplitMetric.allCases.map(\.rawValue)
        case .tune: TuningReport.metricNames
        case .train: TrainMetric.allCases.map(\.rawValue)
        case .evaluate: EvaluationReport.metricNames
        }
    }
}
