/// Offline metrics of a model on held-out ratings.
public struct EvaluationMetrics: Sendable, Codable, Equatable {
    public var rmse: Double
    public var mae: Double
    /// Mean over test users of precision at `k` (Surprise FAQ definition).
    public var precisionAtK: Double
    /// Mean over test users of recall at `k`.
    public var recallAtK: Double
    public var k: Int
    public var ratings: Int

    public init(rmse: Double, mae: Double, precisionAtK: Double, recallAtK: Double, k: Int, ratings: Int) {
        self.rmse = rmse
        self.mae = mae
        self.precisionAtK = precisionAtK
        self.recallAtK = recallAtK
        self.k = k
        self.ratings = ratings
    }

    enum CodingKeys: String, CodingKey {
        case rmse, mae, k, ratings
        case precisionAtK = "precision_at_k"
        case recallAtK = "recall_at_k"
    }
}

/// The metrics of a model and of its bias-only baseline on the same test ratings, and the ranking
/// metrics of the model and of the most-popular baseline.
public struct EvaluationReport: Sendable, Codable, Equatable {
    /// Rating errors and precision/recall of predicted ratings: nil for an implicit model, whose
    /// scores are not ratings.
    public var model: EvaluationMetrics?
    public var baseline: EvaluationMetrics?
    public var ranking: RankingReport
    /// Test ratings whose user, or item, the model has not seen in training.
    public var unknownUsers: Int
    public var unknownItems: Int

    public init(
        model: EvaluationMetrics? = nil, baseline: EvaluationMetrics? = nil, ranking: RankingReport, unknownUsers: Int,
        unknownItems: Int
    ) {
        self.model = model
        self.baseline = baseline
        self.ranking = ranking
        self.unknownUsers = unknownUsers
        self.unknownItems = unknownItems
    }

    enum CodingKeys: String, CodingKey {
        case model, baseline, ranking
        case unknownUsers = "unknown_user_ratings"
        case unknownItems = "unknown_item_ratings"
    }

    /// Every number a gate may bound, by name.
    public var metrics: [String: Double] {
        var result = ranking.metrics
        if let model, let baseline {
            result.merge([
                "rmse": model.rmse, "mae": model.mae, "precision_at_k": model.precisionAtK,
                "recall_at_k": model.recallAtK,
                "baseline_rmse": baseline.rmse, "baseline_mae": baseline.mae,
                "baseline_precision_at_k": baseline.precisionAtK, "baseline_recall_at_k": baseline.recallAtK,
                "rmse_improvement": baseline.rmse - model.rmse,
            ]) { first, _ in first }
        }
        return result
    }

    /// The names `metrics` may hold: an SVD model's rating errors and its baseline's, then the
    /// ranking metrics (`RankingReport.metricNames`).
    public static let metricNames =
        [
            "rmse", "mae", "precision_at_k", "recall_at_k", "baseline_rmse", "baseline_mae",
            "baseline_precision_at_k", "baseline_recall_at_k", "rmse_improvement",
        ] + RankingReport.metricNames
}
