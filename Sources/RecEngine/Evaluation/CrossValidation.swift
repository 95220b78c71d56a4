public import RecEngineContract

/// K-fold cross-validation, as Surprise's `cross_validate(algo, data, cv=KFold(...))`, with the
/// ranking metrics of each fold's model and of the most-popular baseline.
public struct CrossValidationReport: Sendable, Codable, Equatable {
    public struct Fold: Sendable, Codable, Equatable {
        /// Rating errors: SVD only.
        public var rmse: Double?
        public var mae: Double?
        public var fitSeconds: Double
        public var ranking: RankingMetrics
        /// The most-popular baseline's ranking metrics on the same fold.
        public var popular: RankingMetrics

        enum CodingKeys: String, CodingKey {
            case rmse, mae, ranking, popular
            case fitSeconds = "fit_seconds"
        }
    }

    public var algorithm: String
    public var folds: [Fold]
    public var mean: Fold
    /// The bias-only baseline's mean rating errors over the same folds (SVD only).
    public var baseline: Fold?
    public var parameters: SVDParameters?
    public var alsParameters: ALSParameters?
    public var easeParameters: EASEParameters?
    /// The k of the ranking metrics; each fold's held-out ratings are the relevant items.
    public var k: Int
    public var instructionSet: String

    enum CodingKeys: String, CodingKey {
        case algorithm, folds, mean, baseline, parameters, k
        case alsParameters = "als_parameters"
        case easeParameters = "ease_parameters"
        case instructionSet = "instruction_set"
    }
}

public enum CrossValidation {
    /// Runs `folds`-fold cross-validation of SVD with `parameters`, or of implicit ALS when `als`
    /// is given, or of EASE when `ease` is; `progress` is called after each fold.
    public static func run(
        _ ratings: Ratings,
        folds: Int,
        seed: UInt64,
        parameters: SVDParameters,
        als: ALSParameters? = nil,
        ease: EASEParameters? = nil,
        threads: Int = 1,
        k: Int = 10,
        scale: RatingScale = RatingScale(),
        progress: (Int, CrossValidationReport.Fold) -> Void = { _, _ in }
    ) throws -> CrossValidationReport {
        try parameters.validate()
        try als?.validate()
        try ease?.validate()
        var results: [CrossValidationReport.Fold] = []
        var baselineResults: [CrossValidationReport.Fold] = []
        for (number, split) in try Split.kFold(count: ratings.count, folds: folds, seed: seed).enumerated() {
            let train = RatingsFile(path: "", ratings: ratings.subset(split.train), format: .csv, sha256: "")
            let test = ratings.subset(split.test)
            let model =
                if let als {
                    try RecommenderModel.trainALS(on: train, parameters: als, threads: threads, scale: scale)
                } else if let ease {
                    try RecommenderModel.trainEASE(on: train, parameters: ease, threads: threads, scale: scale)
                } else {
                    try RecommenderModel.train(on: train, parameters: parameters, scale: scale)
                }
            let report = try Evaluation.evaluate(model, on: test, k: k)
            let fold = CrossValidationReport.Fold(
                rmse: report.model?.rmse, mae: report.model?.mae, fitSeconds: model.manifest.metrics.fitSeconds,
                ranking: report.ranking.model, popular: report.ranking.popular)
            results.append(fold)
            if let baseline = report.baseline {
                baselineResults.append(
                    .init(
                        rmse: baseline.rmse, mae: baseline.mae, fitSeconds: 0, ranking: fold.popular,
                        popular: fold.popular))
            }
            progress(number + 1, fold)
        }
        return CrossValidationReport(
            algorithm: als != nil ? "als" : ease != nil ? "ease" : "svd", folds: results, mean: mean(results),
            baseline: baselineResults.isEmpty ? nil : mean(baselineResults),
            parameters: als == nil && ease == nil ? parameters : nil, alsParameters: als, easeParameters: ease, k: k,
            instructionSet: SVDTrainer.instructionSet)
    }

    private static func mean(_ folds: [CrossValidationReport.Fold]) -> CrossValidationReport.Fold {
        let count = Double(folds.count)
        func average(_ value: (CrossValidationReport.Fold) -> Double?) -> Double? {
            let values = folds.compactMap(value)
            return values.count == folds.count ? values.reduce(0, +) / count : nil
        }
        func average(_ metrics: [RankingMetrics]) -> RankingMetrics {
            RankingMetrics(
                ndcg: metrics.map(\.ndcg).reduce(0, +) / count, recall: metrics.map(\.recall).reduce(0, +) / count,
                precision: metrics.map(\.precision).reduce(0, +) / count,
                map: metrics.map(\.map).reduce(0, +) / count, coverage: metrics.map(\.coverage).reduce(0, +) / count,
                popularity: metrics.map(\.popularity).reduce(0, +) / count)
        }
        return .init(
            rmse: average(\.rmse), mae: average(\.mae), fitSeconds: folds.map(\.fitSeconds).reduce(0, +) / count,
            ranking: average(folds.map(\.ranking)), popular: average(folds.map(\.popular)))
    }
}
