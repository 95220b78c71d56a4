import Foundation
import RecEngineContract

/// A trained recommender: the factor model, a bias-only baseline trained the same way (so that a
/// degenerate model shows), the raw ids, and what each user rated (excluded from recommendations).
public struct RecommenderModel: Sendable {
    public var manifest: ModelManifest
    public var model: FactorModel
    public var baseline: FactorModel
    /// Items rated by user `u` in training: `ratedItems[ratedOffsets[u]..<ratedOffsets[u + 1]]`.
    public var ratedOffsets: [Int32]
    public var ratedItems: [Int32]
    /// EASE's item-to-item weights, `itemCount²` floats (row j: what interacting with item j adds
    /// to every item's score); empty for the factor models.
    public var itemWeights: [Float]
    /// Item indices by number of training ratings, most first; ties by lower index.
    public let popularItems: [Int32]

    private let userIndex: [String: Int32]
    private let itemIndex: [String: Int32]

    public var userIDs: [String] { manifest.userIDs }
    public var itemIDs: [String] { manifest.itemIDs }
    public var scale: RatingScale { manifest.ratingScale }

    init(
        manifest: ModelManifest, model: FactorModel, baseline: FactorModel, ratedOffsets: [Int32], ratedItems: [Int32],
        itemWeights: [Float] = []
    ) {
        self.manifest = manifest
        self.itemWeights = itemWeights
        self.model = model
        self.baseline = baseline
        self.ratedOffsets = ratedOffsets
        self.ratedItems = ratedItems
        // `ModelDirectory.load` refuses a manifest that repeats an id; should one get here anyway,
        // its first row wins rather than the process trapping.
        userIndex = Dictionary(
            manifest.userIDs.enumerated().map { ($1, Int32(truncatingIfNeeded: $0)) },
            uniquingKeysWith: { first, _ in first })
        itemIndex = Dictionary(
            manifest.itemIDs.enumerated().map { ($1, Int32(truncatingIfNeeded: $0)) },
            uniquingKeysWith: { first, _ in first })
        var counts = [Int](repeating: 0, count: manifest.itemIDs.count)
        for item in ratedItems {
            counts[Int(item)] += 1
        }
        popularItems = counts.indices.sorted { counts[$0] != counts[$1] ? counts[$0] > counts[$1] : $0 < $1 }.map {
            Int32($0)
        }
    }

    /// Trains the factor model and the bias-only baseline on `training`.
    public static func train(
        on training: RatingsFile,
        parameters: SVDParameters,
        scale: RatingScale = RatingScale(),
        version: String? = nil
    ) throws -> RecommenderModel {
        try parameters.validate()
        let ratings = training.ratings
        let clock = ContinuousClock()
        let start = clock.now
        let model = try SVDTrainer(parameters: parameters).fit(ratings)
        let fitDuration = clock.now - start
        var baselineParameters = parameters
        baselineParameters.factors = 0
        let baseline = try SVDTrainer(parameters: baselineParameters).fit(ratings)

        let (users, items, _) = SVDTrainer.groupedByUser(ratings)
        var offsets = [Int32](repeating: 0, count: ratings.userCount + 1)
        for user in users {
            offsets[Int(user) + 1] += 1
        }
        for u in 0..<ratings.userCount {
            offsets[u + 1] += offsets[u]
        }
        let trainingMetrics = Evaluation.errors(
            truth: ratings.values, predictions: model.predict(users: ratings.users, items: ratings.items, scale: scale))
        let baselineMetrics = Evaluation.errors(
            truth: ratings.values,
            predictions: baseline.predict(users: ratings.users, items: ratings.items, scale: scale))
        guard trainingMetrics.rmse.isFinite, baselineMetrics.rmse.isFinite else {
            throw RecEngineError(
                .trainingDiverged,
                "training diverged: the training RMSE is \(trainingMetrics.rmse) (baseline \(baselineMetrics.rmse)), not a finite number",
                hint: "lower the learning rate (--lr) or raise the regularisation (--reg); no model was written")
        }
        let manifest = ModelManifest(
            version: version,
            createdAt: Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)),
            modelSHA256: "",
            parameters: parameters,
            ratingScale: scale,
            trainingData: .init(training),
            metrics: .init(
                trainRMSE: trainingMetrics.rmse, trainMAE: trainingMetrics.mae,
                baselineTrainRMSE: baselineMetrics.rmse, baselineTrainMAE: baselineMetrics.mae,
                fitSeconds: fitDuration.seconds, instructionSet: SVDTrainer.instructionSet),
            userIDs: ratings.userIDs,
            itemIDs: ratings.itemIDs
        )
        return RecommenderModel(
            manifest: manifest, model: model, baseline: baseline, ratedOffsets: offsets, ratedItems: items)
    }

    /// Trains an implicit ALS model on the ratings of `training` (each an event) and, if given,
    /// on watch events; what each user interacted with is left out of their recommendations.
    ///
    /// - Parameter threads: threads that solve rows in parallel.
    public static func trainALS(
        on training: RatingsFile,
        watches: WatchEvents? = nil,
        parameters: ALSParameters,
        threads: Int = 1,
        scale: RatingScale = RatingScale(),
        version: String? = nil
    ) throws -> RecommenderModel {
        try parameters.validate()
        let interactions = Interactions(ratings: training.ratings, watches: watches)
        let clock = ContinuousClock()
        let start = clock.now
        let model = try ALSTrainer(parameters: parameters, threads: threads).fit(interactions)
        let fitDuration = clock.now - start
        var manifest = implicitManifest(
            algorithm: "als", training: training, interactions: interactions, watches: watches,
            fitSeconds: fitDuration.seconds,
            scale: scale, version: version)
        manifest.alsParameters = parameters
        return RecommenderModel(
            manifest: manifest, model: model,
            baseline: .empty(users: interactions.userCount, items: interactions.itemCount),
            ratedOffsets: interactions.userOffsets, ratedItems: interactions.userItems)
    }

    /// Trains EASE on the ratings of `training` (each a 1 in the binary user-item matrix) and, if
    /// given, on watch events; what each user interacted with is left out of their recommendations
    /// and is what their scores are summed from.
    ///
    /// - Throws: `RecEngineError` `.tooLarge` before any work when the catalogue's item-item
    ///   matrix does not fit this machine (with the estimate and the limit), `.trainingDiverged`
    ///   when the solve fails.
    public static func trainEASE(
        on training: RatingsFile,
        watches: WatchEvents? = nil,
        parameters: EASEParameters,
        threads: Int = 1,
        scale: RatingScale = RatingScale(),
        version: String? = nil
    ) throws -> RecommenderModel {
        try parameters.validate()
        let interactions = Interactions(ratings: training.ratings, watches: watches)
        try EASEMemory.requireFits(items: interactions.itemCount, location: training.path.isEmpty ? nil : training.path)
        let clock = ContinuousClock()
        let start = clock.now
        let weights = try EASETrainer(parameters: parameters, threads: threads).fit(interactions)
        let fitDuration = clock.now - start
        var manifest = implicitManifest(
            algorithm: "ease", training: training, interactions: interactions, watches: watches,
            fitSeconds: fitDuration.seconds,
            scale: scale, version: version)
        manifest.easeParameters = parameters
        let empty = FactorModel.empty(users: interactions.userCount, items: interactions.itemCount)
        return RecommenderModel(
            manifest: manifest, model: empty, baseline: empty, ratedOffsets: interactions.userOffsets,
            ratedItems: interactions.userItems,
            itemWeights: weights)
    }

    /// The manifest of a model trained on implicit interactions (ALS, EASE): no rating metrics,
    /// the interactions and events it learned from, the watch events if any.
    private static func implicitManifest(
        algorithm: String, training: RatingsFile, interactions: Interactions, watches: WatchEvents?, fitSeconds: Double,
        scale: RatingScale, version: String?
    ) -> ModelManifest {
        var manifest = ModelManifest(
            algorithm: algorithm,
            version: version,
            createdAt: Date(timeIntervalSince1970: Date().timeIntervalSince1970.rounded(.down)),
            modelSHA256: "",
            parameters: nil,
            ratingScale: scale,
            trainingData: .init(training),
            metrics: .init(
                trainRMSE: nil, trainMAE: nil, baselineTrainRMSE: nil, baselineTrainMAE: nil,
                fitSeconds: fitSeconds, instructionSet: SVDTrainer.instructionSet,
                interactions: interactions.pairs, events: interactions.events),
            userIDs: interactions.userIDs,
            itemIDs: interactions.itemIDs
        )
        manifest.watches = watches.map { .init(path: $0.path, sha256: $0.sha256, events: $0.users.count) }
        return manifest
    }

    /// The dense index of a raw user id, if the model knows the user.
    public func userIndex(of id: String) -> Int32? { userIndex[id] }
    /// The dense index of a raw item id, if the model knows the item.
    public func itemIndex(of id: String) -> Int32? { itemIndex[id] }

    /// The items user `user` rated in training.
    public func ratedItems(of user: Int32) -> ArraySlice<Int32> {
        ratedItems[Int(ratedOffsets[Int(user)])..<Int(ratedOffsets[Int(user) + 1])]
    }

    /// Dense (user, item) indices for the rows of `ratings`, -1 where the model does not know the id.
    public func indices(of ratings: Ratings) -> (users: [Int32], items: [Int32]) {
        let userMap = ratings.userIDs.map { userIndex[$0] ?? -1 }
        let itemMap = ratings.itemIDs.map { itemIndex[$0] ?? -1 }
        return (ratings.users.map { userMap[Int($0)] }, ratings.items.map { itemMap[Int($0)] })
    }
}

extension ModelManifest.TrainingData {
    /// What the manifest records of the ratings file a model was trained on.
    init(_ training: RatingsFile) {
        let ratings = training.ratings
        self.init(
            path: training.path, sha256: training.sha256, format: training.format, ratings: ratings.count,
            users: ratings.userCount,
            items: ratings.itemCount, skippedRows: training.skippedRowCount)
    }
}
