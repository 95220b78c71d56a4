import RecEngine

/// The stages built into the orchestrator; each calls the RecEngine library in process.
public enum BuiltinStage: String, Sendable, CaseIterable, Codable {
    /// Consumes the movie log (a file, a folder, gzip, standard input or Kafka) exactly once into
    /// the ratings CSV the train stage reads; or, with `format: ratings`, copies and checks a ratings
    /// file (CSV or MovieLens u.data).
    case ingest
    /// A reproducible random hold-out split into training and test ratings.
    case split
    /// Trains an SVD model directory.
    case train
    /// Evaluates a model on test ratings (RMSE, MAE, precision@k, recall@k, and the baseline's).
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
                .init(name: "format", kind: .choice(["movielog", "ratings"]), defaultValue: .string("movielog")),
                .init(name: "output", kind: .outputPath, defaultValue: nil),
                .init(name: "watches", kind: .outputPath, defaultValue: nil),
                .init(name: "rejects", kind: .outputPath, defaultValue: nil),
                .init(name: "store", kind: .statePath, defaultValue: nil),
                .init(name: "mode", kind: .choice(IngestMode.allCases.map(\.rawValue)), defaultValue: .string("stream")),
                .init(name: "group", kind: .text, defaultValue: .string("orchestrate-ingest")),
                .init(name: "maxRecords", kind: .integer(0...Int.max), defaultValue: .integer(0)),
                .init(name: "maxSeconds", kind: .number(0.001...86_400), defaultValue: .number(300)),
                .init(name: "onBadRow", kind: .choice(["fail", "skip"]), defaultValue: .string("skip")),
            ]
        case .split:
            [
                .init(name: "ratings", kind: .inputPath, defaultValue: nil),
                .init(name: "train", kind: .outputPath, defaultValue: nil),
                .init(name: "test", kind: .outputPath, defaultValue: nil),
                .init(name: "testSize", kind: .number(0.0001...0.9999), defaultValue: .number(0.2)),
                .init(name: "seed", kind: .integer(0...Int.max), defaultValue: .integer(42)),
            ]
        case .train:
            [
                .init(name: "ratings", kind: .inputPath, defaultValue: nil),
                .init(name: "model", kind: .outputPath, defaultValue: nil),
                .init(name: "factors", kind: .integer(0...4096), defaultValue: .integer(100)),
                .init(name: "epochs", kind: .integer(1...10_000), defaultValue: .integer(20)),
                .init(name: "lr", kind: .number(1e-9...10), defaultValue: .number(0.005)),
                .init(name: "reg", kind: .number(0...100), defaultValue: .number(0.02)),
                .init(name: "initStd", kind: .number(0...10), defaultValue: .number(0.1)),
                .init(name: "seed", kind: .integer(0...Int.max), defaultValue: .integer(0)),
                .init(name: "version", kind: .text, defaultValue: nil),
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
        case .train: ["version"]
        case .ingest: ["watches", "rejects", "store"]
        default: []
        }
    }

    /// The metrics the stage reports, which gates may bound.
    public var metrics: [String] {
        switch self {
        case .ingest: IngestReport.metricNames + ["skipped_rows", "skipped_share"]
        case .split: ["train_ratings", "test_ratings"]
        case .train: ["train_rmse", "train_mae", "baseline_train_rmse", "fit_seconds"]
        case .evaluate:
            [
                "rmse", "mae", "precision_at_k", "recall_at_k", "baseline_rmse", "baseline_mae",
                "baseline_precision_at_k", "baseline_recall_at_k", "rmse_improvement",
            ]
        }
    }
}
