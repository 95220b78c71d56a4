public import Foundation
import RecEngineContract

/// `manifest.json` of a model directory: where the model came from and how good it was.
public struct ModelManifest: Sendable, Codable, Equatable {
    public static let currentFormatVersion = ModelIdentity.formatVersion

    public struct TrainingData: Sendable, Codable, Equatable {
        public var path: String
        public var sha256: String
        public var format: RatingsFormat
        public var ratings: Int
        public var users: Int
        public var items: Int
        public var skippedRows: Int

        enum CodingKeys: String, CodingKey {
            case path, sha256, format, ratings, users, items
            case skippedRows = "skipped_rows"
        }
    }

    /// The watch events an implicit model also learnt from.
    public struct WatchesData: Sendable, Codable, Equatable {
        public var path: String
        public var sha256: String
        public var events: Int
    }

    public struct Metrics: Sendable, Codable, Equatable {
        /// Rating errors on the training ratings: SVD only (an implicit model scores a ranking).
        public var trainRMSE: Double?
        public var trainMAE: Double?
        public var baselineTrainRMSE: Double?
        public var baselineTrainMAE: Double?
        public var fitSeconds: Double
        public var instructionSet: String
        /// Implicit models: distinct (user, item) pairs and events (ratings plus watched minutes) trained on.
        public var interactions: Int? = nil
        public var events: Int? = nil

        enum CodingKeys: String, CodingKey {
            case trainRMSE = "train_rmse"
            case trainMAE = "train_mae"
            case baselineTrainRMSE = "baseline_train_rmse"
            case baselineTrainMAE = "baseline_train_mae"
            case fitSeconds = "fit_seconds"
            case instructionSet = "instruction_set"
            case interactions, events
        }
    }

    /// The algorithms a model directory may hold.
    public static let algorithms = ["svd", "als", "ease"]

    public var formatVersion: Int = currentFormatVersion
    /// `svd` (explicit ratings, predicts a rating), `als` or `ease` (implicit feedback, score a ranking).
    public var algorithm: String = "svd"
    /// A name for this model in logs and headers; the digest's first 12 hex digits unless given.
    public var version: String?
    public var createdAt: Date
    /// SHA-256 of `model.safetensors`; checked on every load.
    public var modelSHA256: String
    /// SVD's parameters (`algorithm` `svd`).
    public var parameters: SVDParameters?
    /// Implicit ALS's parameters (`algorithm` `als`).
    public var alsParameters: ALSParameters? = nil
    /// EASE's parameters (`algorithm` `ease`).
    public var easeParameters: EASEParameters? = nil
    /// The watch events an `als` or `ease` model learnt from besides the ratings, if any.
    public var watches: WatchesData? = nil
    public var ratingScale: RatingScale
    public var trainingData: TrainingData
    public var metrics: Metrics
    public var userIDs: [String]
    public var itemIDs: [String]

    /// The number of latent factors, whichever the algorithm (0 for EASE, which has none); nil
    /// when the algorithm's parameters are missing.
    public var factors: Int? {
        switch algorithm {
        case "als": alsParameters?.factors
        case "ease": easeParameters.map { _ in 0 }
        default: parameters?.factors
        }
    }

    /// The key of the algorithm's parameters in `manifest.json`.
    var parametersKey: String {
        switch algorithm {
        case "als": CodingKeys.alsParameters.rawValue
        case "ease": CodingKeys.easeParameters.rawValue
        default: CodingKeys.parameters.rawValue
        }
    }

    /// Whether scores rank items rather than predict ratings (they are then not clipped to the scale).
    public var isImplicit: Bool { algorithm != "svd" }

    /// The version shown to clients: the given one, else the digest's first 12 hex digits.
    public var displayVersion: String {
        version ?? String(modelSHA256.prefix(12))
    }

    enum CodingKeys: String, CodingKey {
        case formatVersion = "format_version"
        case algorithm, version, parameters, metrics, watches
        case alsParameters = "als_parameters"
        case easeParameters = "ease_parameters"
        case createdAt = "created_at"
        case modelSHA256 = "model_sha256"
        case ratingScale = "rating_scale"
        case trainingData = "training_data"
        case userIDs = "user_ids"
        case itemIDs = "item_ids"
    }
}
