import RecEngineContract
import Testing

@testable import RecEngine

@Suite struct TrainingTests {
    @Test func oneEpochOfBiasesMatchesTheHandComputedUpdates() throws {
        var ratings = Ratings()
        ratings.append(user: "a", item: "x", rating: 5)
        ratings.append(user: "a", item: "y", rating: 3)
        // μ = 4. Rating 1: e = 1 → b_a = 0.1, b_x = 0.1. Rating 2: e = 3 - (4 + 0.1) = -1.1
        // → b_a = 0.1 - 0.11 = -0.01, b_y = -0.11.
        let model = try SVDTrainer(parameters: .init(factors: 0, epochs: 1, learningRate: 0.1, regularization: 0)).fit(
            ratings)
        #expect(model.globalMean == 4)
        #expect(abs(model.userBias[0] - -0.01) < 1e-6)
        #expect(abs(model.itemBias[0] - 0.1) < 1e-6)
        #expect(abs(model.itemBias[1] - -0.11) < 1e-6)
    }

    @Test func factorUpdatesUseTheOldValuesInSurpriseOrder() throws {
        var ratings = Ratings()
        ratings.append(user: "a", item: "x", rating: 4)
        ratings.append(user: "b", item: "x", rating: 2)
        ratings.append(user: "a", item: "y", rating: 5)
        let parameters = SVDParameters(
            factors: 2, epochs: 1, learningRate: 0.05, regularization: 0.1, initStd: 0.5, seed: 3)
        let model = try SVDTrainer(parameters: parameters).fit(ratings)

        // The same computation by hand, in Double: users' factors are drawn first, then items',
        // and ratings are visited user by user (a: x, y; then b: x).
        var generator = SeededGenerator(seed: 3)
        var p = (0..<2).map { _ in (0..<2).map { _ in generator.nextNormal(mean: 0, standardDeviation: 0.5) } }
        var q = (0..<2).map { _ in (0..<2).map { _ in generator.nextNormal(mean: 0, standardDeviation: 0.5) } }
        var bu = [0.0, 0.0]
        var bi = [0.0, 0.0]
        let mu = 11.0 / 3.0
        for (u, i, r) in [(0, 0, 4.0), (0, 1, 5.0), (1, 0, 2.0)] {
            let e = r - (mu + bu[u] + bi[i] + p[u][0] * q[i][0] + p[u][1] * q[i][1])
            bu[u] += 0.05 * (e - 0.1 * bu[u])
            bi[i] += 0.05 * (e - 0.1 * bi[i])
            for f in 0..<2 {
                let (puf, qif) = (p[u][f], q[i][f])
                p[u][f] += 0.05 * (e * qif - 0.1 * puf)
                q[i][f] += 0.05 * (e * puf - 0.1 * qif)
            }
        }
        for u in 0..<2 {
            #expect(abs(Double(model.userBias[u]) - bu[u]) < 1e-5)
            for f in 0..<2 {
                #expect(abs(Double(model.userFactors[u * model.stride + f]) - p[u][f]) < 1e-5)
                #expect(abs(Double(model.itemFactors[u * model.stride + f]) - q[u][f]) < 1e-5)
            }
        }
        #expect(model.userFactors[2] == 0, "padding stays zero")
    }

    @Test func learnsTheHiddenStructureOfGeneratedRatings() throws {
        let ratings = syntheticRatings()
        let split = try Split.holdout(count: ratings.count, testSize: 0.2, seed: 1)
        let train = ratings.subset(split.train)
        let test = ratings.subset(split.test)
        func heldOutRMSE(_ parameters: SVDParameters) throws -> Double {
            let model = try SVDTrainer(parameters: parameters).fit(train)
            let users = test.userIDs.map { train.userIndex(of: $0) ?? -1 }
            let items = test.itemIDs.map { train.itemIndex(of: $0) ?? -1 }
            let predictions = model.predict(
                users: test.users.map { users[Int($0)] }, items: test.items.map { items[Int($0)] }, scale: RatingScale()
            )
            return Evaluation.errors(truth: test.values, predictions: predictions).rmse
        }
        let baseline = try heldOutRMSE(.init(factors: 0, epochs: 60, learningRate: 0.01))
        let few = try heldOutRMSE(.init(factors: 8, epochs: 2, learningRate: 0.01))
        let many = try heldOutRMSE(.init(factors: 8, epochs: 60, learningRate: 0.01))
        #expect(many < few, "more epochs converge further: \(many) vs \(few)")
        #expect(many < 0.85 * baseline, "factors capture the structure: \(many) vs baseline \(baseline)")
    }

    @Test func trainingIsReproducibleForASeed() throws {
        let ratings = syntheticRatings(users: 30, items: 20, perUser: 8)
        let a = try SVDTrainer(parameters: .init(factors: 4, epochs: 3, seed: 9)).fit(ratings)
        let b = try SVDTrainer(parameters: .init(factors: 4, epochs: 3, seed: 9)).fit(ratings)
        let c = try SVDTrainer(parameters: .init(factors: 4, epochs: 3, seed: 10)).fit(ratings)
        #expect(a.userFactors == b.userFactors)
        #expect(a.userFactors != c.userFactors)
    }

    @Test(arguments: [
        SVDParameters(factors: -1), SVDParameters(epochs: 0), SVDParameters(learningRate: 0),
        SVDParameters(regularization: -1), SVDParameters(initStd: .nan),
    ])
    func rejectsParametersOutOfRange(parameters: SVDParameters) {
        #expect(throws: RecEngineError.self) { try parameters.validate() }
    }

    @Test func unknownUsersAndItemsDropTheirTerms() throws {
        var ratings = Ratings()
        ratings.append(user: "a", item: "x", rating: 5)
        ratings.append(user: "b", item: "y", rating: 1)
        let model = try SVDTrainer(parameters: .init(factors: 2, epochs: 5)).fit(ratings)
        let predictions = model.predict(users: [-1, 0, -1], items: [-1, -1, 0], scale: RatingScale())
        #expect(predictions[0] == model.globalMean)
        #expect(predictions[1] == model.globalMean + model.userBias[0])
        #expect(predictions[2] == model.globalMean + model.itemBias[0])
    }

    @Test func trainingThatDivergesStopsAtTheEpochItHappens() throws {
        let ratings = syntheticRatings(users: 40, items: 30, perUser: 10)
        let error = #expect(throws: RecEngineError.self) {
            try SVDTrainer(parameters: .init(factors: 5, epochs: 20, learningRate: 50)).fit(ratings)
        }
        #expect(error?.code == .trainingDiverged)
        #expect(error?.message.hasPrefix("training diverged at epoch ") == true, "\(String(describing: error))")
        #expect(error?.message.contains(" of 20: ") == true)
        #expect(error?.hint?.contains("--lr") == true)
        // The defaults converge: the check does not refuse a sound training.
        #expect(throws: Never.self) { try SVDTrainer(parameters: .init(factors: 5, epochs: 20)).fit(ratings) }
    }
}
