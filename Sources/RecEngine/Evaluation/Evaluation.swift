public import RecEngineContract

public enum Evaluation {
    /// Ratings at or above this are relevant, and predictions at or above it count as recommended.
    public static let relevanceThreshold: Float = 4

    /// Evaluates a model and its baselines on test ratings.
    ///
    /// - Parameters:
    ///   - testSHA256: the test file's digest, recorded in the ranking protocol.
    ///   - definitions: the formulas of the ranking metrics.
    /// - Throws: `RecEngineError` `.nonFiniteMetric` when a metric is NaN or infinite, rather than
    ///   a report a gate would read as a number.
    public static func evaluate(
        _ model: RecommenderModel, on test: Ratings, k: Int = 10, testSHA256: String? = nil,
        definitions: RankingDefinitions = .recengine
    ) throws -> EvaluationReport {
        let (users, items) = model.indices(of: test)
        let implicit = model.manifest.isImplicit
        let report = EvaluationReport(
            model: implicit
                ? nil
                : metrics(
                    test: test, predictions: model.model.predict(users: users, items: items, scale: model.scale), k: k),
            baseline: implicit
                ? nil
                : metrics(
                    test: test, predictions: model.baseline.predict(users: users, items: items, scale: model.scale),
                    k: k),
            ranking: RankingEvaluation.evaluate(
                model, on: test, k: k, testSHA256: testSHA256, definitions: definitions),
            unknownUsers: users.count { $0 < 0 },
            unknownItems: items.count { $0 < 0 })
        try requireFinite(report.metrics)
        return report
    }

    /// - Throws: `RecEngineError` `.nonFiniteMetric` naming the metrics that are NaN or infinite.
    public static func requireFinite(_ metrics: [String: Double]) throws {
        let nonFinite = metrics.filter { !$0.value.isFinite }.sorted { $0.key < $1.key }
        guard nonFinite.isEmpty else {
            throw RecEngineError(
                .nonFiniteMetric,
                "the evaluation computed " + nonFinite.map { "\($0.key) = \($0.value)" }.joined(separator: ", ")
                    + ": not a finite number",
                hint: "the model's predictions are not numbers: train the model again")
        }
    }

    /// RMSE and MAE of predictions against the truth.
    public static func errors(truth: [Float], predictions: [Float]) -> (rmse: Double, mae: Double) {
        precondition(truth.count == predictions.count)
        guard !truth.isEmpty else { return (0, 0) }
        var squared = 0.0
        var absolute = 0.0
        for (r, p) in zip(truth, predictions) {
            let error = Double(r) - Double(p)
            squared += error * error
            absolute += abs(error)
        }
        return ((squared / Double(truth.count)).squareRoot(), absolute / Double(truth.count))
    }

    /// All metrics for predictions of `test`'s rows.
    ///
    /// Precision and recall at k follow Surprise's FAQ: per user, the test items sorted by
    /// prediction (ties keep test order); relevant = true rating >= 4; recommended = among the
    /// first k, predicted >= 4. Precision is relevant-and-recommended / recommended (0 when none is
    /// recommended), recall is relevant-and-recommended / relevant (0 when none is relevant); both
    /// are averaged over users.
    public static func metrics(test: Ratings, predictions: [Float], k: Int) -> EvaluationMetrics {
        let (rmse, mae) = errors(truth: test.values, predictions: predictions)
        var rowsByUser = [[Int]](repeating: [], count: test.userCount)
        for row in 0..<test.count {
            rowsByUser[Int(test.users[row])].append(row)
        }
        var precisionSum = 0.0
        var recallSum = 0.0
        var userCount = 0
        for rows in rowsByUser where !rows.isEmpty {
            userCount += 1
            let ranked = rows.enumerated().sorted {
                predictions[$0.element] != predictions[$1.element]
                    ? predictions[$0.element] > predictions[$1.element] : $0.offset < $1.offset
            }.map(\.element)
            let relevant = rows.count { test.values[$0] >= relevanceThreshold }
            let top = ranked.prefix(k)
            let recommended = top.count { predictions[$0] >= relevanceThreshold }
            let hits = top.count { predictions[$0] >= relevanceThreshold && test.values[$0] >= relevanceThreshold }
            precisionSum += recommended == 0 ? 0 : Double(hits) / Double(recommended)
            recallSum += relevant == 0 ? 0 : Double(hits) / Double(relevant)
        }
        return EvaluationMetrics(
            rmse: rmse, mae: mae,
            precisionAtK: userCount == 0 ? 0 : precisionSum / Double(userCount),
            recallAtK: userCount == 0 ? 0 : recallSum / Double(userCount),
            k: k, ratings: test.count)
    }
}
