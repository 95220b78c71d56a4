import CRecKernels
import RecEngineContract

/// Trains biased matrix factorisation by stochastic gradient descent, step for step as Surprise's
/// `SVD.fit`: ratings grouped by user in order of first appearance, both factor updates from the
/// old values, no shuffling between epochs.
public struct SVDTrainer: Sendable {
    public var parameters: SVDParameters

    public init(parameters: SVDParameters = SVDParameters()) {
        self.parameters = parameters
    }

    /// The instruction set the SGD kernel uses on this CPU.
    public static var instructionSet: String {
        String(cString: rec_kernel_isa())
    }

    /// Fits a model to `ratings` (dense indices as numbered by `Ratings`).
    ///
    /// - Throws: `RecEngineError` `.trainingDiverged` as soon as an epoch leaves a parameter NaN
    ///   or infinite (SGD with too high a learning rate), naming the epoch and how many.
    public func fit(_ ratings: Ratings) throws -> FactorModel {
        var model = FactorModel(
            userCount: ratings.userCount, itemCount: ratings.itemCount,
            globalMean: Float(ratings.mean), parameters: parameters)
        let (users, items, values) = Self.groupedByUser(ratings)
        let learningRate = Float(parameters.learningRate)
        let regularization = Float(parameters.regularization)
        let stride = model.stride
        let globalMean = model.globalMean
        for epoch in 0..<parameters.epochs {
            users.withUnsafeBufferPointer { users in
                items.withUnsafeBufferPointer { items in
                    values.withUnsafeBufferPointer { values in
                        model.userBias.withUnsafeMutableBufferPointer { userBias in
                            model.itemBias.withUnsafeMutableBufferPointer { itemBias in
                                model.userFactors.withUnsafeMutableBufferPointer { userFactors in
                                    model.itemFactors.withUnsafeMutableBufferPointer { itemFactors in
                                        rec_sgd_epoch(
                                            users.baseAddress, items.baseAddress, values.baseAddress, values.count,
                                            globalMean, userBias.baseAddress, itemBias.baseAddress,
                                            userFactors.baseAddress, itemFactors.baseAddress, stride,
                                            learningRate, regularization)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            let nonFinite = model.nonFiniteParameterCount
            guard nonFinite == 0 else {
                throw RecEngineError(
                    .trainingDiverged,
                    "training diverged at epoch \(epoch + 1) of \(parameters.epochs): \(nonFinite) parameters are NaN or infinite (learning rate \(parameters.learningRate), regularisation \(parameters.regularization))",
                    hint:
                        "lower the learning rate (--lr, Surprise's default is 0.005) or raise the regularisation (--reg); no model was written"
                )
            }
        }
        return model
    }

    /// The ratings reordered by user index, keeping each user's ratings in their original order
    /// (a stable counting sort): Surprise's `all_ratings()` order.
    static func groupedByUser(_ ratings: Ratings) -> (users: [Int32], items: [Int32], values: [Float]) {
        var starts = [Int](repeating: 0, count: ratings.userCount + 1)
        for user in ratings.users {
            starts[Int(user) + 1] += 1
        }
        for u in 0..<ratings.userCount {
            starts[u + 1] += starts[u]
        }
        var users = [Int32](repeating: 0, count: ratings.count)
        var items = [Int32](repeating: 0, count: ratings.count)
        var values = [Float](repeating: 0, count: ratings.count)
        for row in 0..<ratings.count {
            let user = Int(ratings.users[row])
            let position = starts[user]
            starts[user] += 1
            users[position] = ratings.users[row]
            items[position] = ratings.items[row]
            values[position] = ratings.values[row]
        }
        return (users, items, values)
    }
}
