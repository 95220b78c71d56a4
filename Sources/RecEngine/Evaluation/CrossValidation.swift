/// K-fold cross-validation of SVD, as Surprise's `cross_validate(algo, data, cv=KFold(...))`.
public struct CrossValidationReport: Sendable, Codable, Equatable {
    public struct Fold: Sendable, Codable, Equatable {
        public var rmse: Double
        public var mae: Double
        public var fitSeconds: Double

        enum CodingKeys: String, CodingKey {
            case rmse, mae
            case fitSeconds = "fit_seconds"
        }
    }

    public var folds: [Fold]
    public var mean: Fold
    /// The bias-only baseline's mean over the same folds.
    public var baseline: Fold
    public var parameters: SVDParameters
    public var instructionSet: String

    enum CodingKeys: String, CodingKey {
        case folds, mean, baseline, parameters
        case instructionSet = "instruction_set"
    }
}

public enum CrossValidation {
    /// Runs `folds`-fold cross-validation; `progress` is called after each fold.
    public static func run(
        _ ratings: Ratings,
        folds: Int,
        seed: UInt64,
        parameters: SVDParameters,
        scale: RatingScale = RatingScale(),
        progress: (Int, CrossValidationReport.Fold) -> Void = { _, _ in }
    ) throws -> CrossValidationReport {
        try parameters.validate()
        let clock = ContinuousClock()
        var results: [CrossValidationReport.Fold] = []
        var baselineResults: [CrossValidationReport.Fold] = []
        var baselineParameters = parameters
        baselineParameters.factors = 0
        for (number, split) in try Split.kFold(count: ratings.count, folds: folds, seed: seed).enumerated() {
            let train = ratings.subset(split.train)
            let test = ratings.subset(split.test)
            let fold = try evaluateFold(train: train, test: test, parameters: parameters, scale: scale, clock: clock)
            results.append(fold)
            baselineResults.append(try evaluateFold(train: train, test: test, parameters: baselineParameters, scale: scale, clock: clock))
            progress(number + 1, fold)
        }
        let report = CrossValidationReport(
            folds: results, mean: mean(results), baseline: mean(baselineResults),
            parameters: parameters, instructionSet: SVDTrainer.instructionSet)
        try Evaluation.requireFinite([
            "rmse": report.mean.rmse, "mae": report.mean.mae, "baseline_rmse": report.baseline.rmse, "baseline_mae": report.baseline.mae,
        ])
        return report
    }

    private static func evaluateFold(
        train: Ratings, test: Ratings, parameters: SVDParameters, scale: RatingScale, clock: ContinuousClock
    ) throws -> CrossValidationReport.Fold {
        let start = clock.now
        let model = try SVDTrainer(parameters: parameters).fit(train)
        let duration = clock.now - start
        let users = test.userIDs.map { train.userIndex(of: $0) ?? -1 }
        let items = test.itemIDs.map { train.itemIndex(of: $0) ?? -1 }
        let predictions = model.predict(
            users: test.users.map { users[Int($0)] }, items: test.items.map { items[Int($0)] }, scale: scale)
        let (rmse, mae) = Evaluation.errors(truth: test.values, predictions: predictions)
        return .init(rmse: rmse, mae: mae, fitSeconds: duration.seconds)
    }

    private static func mean(_ folds: [CrossValidationReport.Fold]) -> CrossValidationReport.Fold {
        let count = Double(folds.count)
        return .init(
            rmse: folds.map(\.rmse).reduce(0, +) / count,
            mae: folds.map(\.mae).reduce(0, +) / count,
            fitSeconds: folds.map(\.fitSeconds).reduce(0, +) / count)
    }
}
