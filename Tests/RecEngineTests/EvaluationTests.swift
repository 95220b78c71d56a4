import RecEngine
import RecEngineContract
import Testing

@Suite struct EvaluationTests {
    @Test func metricsMatchHandComputedValues() {
        var test = Ratings()
        for (item, rating) in [("w", 5), ("x", 4), ("y", 2), ("z", 1)] {
            test.append(user: "A", item: item, rating: Float(rating))
        }
        test.append(user: "B", item: "w", rating: 3)
        test.append(user: "B", item: "x", rating: 5)
        let predictions: [Float] = [4.5, 3.0, 4.2, 1.0, 3.5, 3.9]
        let metrics = Evaluation.metrics(test: test, predictions: predictions, k: 2)
        // Errors 0.5, 1, -2.2, 0, -0.5, 1.1: squares sum to 7.55, absolutes to 5.3.
        #expect(abs(metrics.rmse - (7.55 / 6).squareRoot()) < 1e-6)
        #expect(abs(metrics.mae - 5.3 / 6) < 1e-6)
        // A: top 2 by prediction are w (4.5, true 5) and y (4.2, true 2): both recommended, one
        // relevant of the two relevant items → precision 1/2, recall 1/2. B: nothing predicted
        // >= 4 → precision 0; one relevant item, not hit → recall 0.
        #expect(abs(metrics.precisionAtK - 0.25) < 1e-9)
        #expect(abs(metrics.recallAtK - 0.25) < 1e-9)
        #expect(metrics.ratings == 6)
    }

    @Test func aPerfectPredictorScoresFullMarks() {
        var test = Ratings()
        test.append(user: "A", item: "x", rating: 5)
        test.append(user: "A", item: "y", rating: 4)
        test.append(user: "A", item: "z", rating: 2)
        let metrics = Evaluation.metrics(test: test, predictions: test.values, k: 10)
        #expect(metrics.rmse == 0)
        #expect(metrics.mae == 0)
        #expect(metrics.precisionAtK == 1)
        #expect(metrics.recallAtK == 1)
    }

    @Test func crossValidationReportsEveryFoldAndTheBaseline() throws {
        let ratings = syntheticRatings(users: 80, items: 60, perUser: 20)
        let report = try CrossValidation.run(
            ratings, folds: 3, seed: 0, parameters: .init(factors: 8, epochs: 40, learningRate: 0.01))
        #expect(report.folds.count == 3)
        #expect(report.folds.allSatisfy { $0.fitSeconds > 0 && ($0.rmse ?? 0) > 0 })
        let foldRMSE = report.folds.compactMap(\.rmse)
        #expect(foldRMSE.count == 3)
        #expect(abs((report.mean.rmse ?? 0) - foldRMSE.reduce(0, +) / 3) < 1e-12)
        #expect((report.mean.rmse ?? .infinity) < (report.baseline?.rmse ?? 0))
        #expect(report.folds.allSatisfy { $0.ranking.ndcg > 0 && $0.ranking.ndcg <= 1 })
    }
}
