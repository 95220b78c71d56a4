import CRecKernels

/// Biased matrix factorisation parameters: `r̂ = μ + b_u + b_i + q_iᵀ p_u`, clipped to the scale.
///
/// Factor rows are stored contiguously with a stride rounded up to 8 floats (zero padding), which
/// lets the C kernels use whole vector registers.
public struct FactorModel: Sendable {
    public var factors: Int
    public var stride: Int
    public var globalMean: Float
    public var userBias: [Float]
    public var itemBias: [Float]
    /// `userCount * stride` floats.
    public var userFactors: [Float]
    /// `itemCount * stride` floats.
    public var itemFactors: [Float]

    public var userCount: Int { userBias.count }
    public var itemCount: Int { itemBias.count }

    public static func stride(for factors: Int) -> Int {
        (factors + 7) / 8 * 8
    }

    /// A model with zero biases and factors drawn from N(mean, std): users first, then items, as
    /// Surprise draws them.
    init(userCount: Int, itemCount: Int, globalMean: Float, parameters: SVDParameters) {
        factors = parameters.factors
        stride = Self.stride(for: parameters.factors)
        self.globalMean = globalMean
        userBias = [Float](repeating: 0, count: userCount)
        itemBias = [Float](repeating: 0, count: itemCount)
        var generator = SeededGenerator(seed: parameters.seed)
        let factors = parameters.factors
        func draw(rows: Int, stride: Int) -> [Float] {
            // At least one vector's worth, so that the kernels never see a null pointer.
            var values = [Float](repeating: 0, count: max(rows * stride, 8))
            for row in 0..<rows {
                for f in 0..<factors {
                    values[row * stride + f] = Float(
                        generator.nextNormal(mean: parameters.initMean, standardDeviation: parameters.initStd))
                }
            }
            return values
        }
        userFactors = draw(rows: userCount, stride: stride)
        itemFactors = draw(rows: itemCount, stride: stride)
    }

    /// A model that predicts 0 for everyone: the baseline of models trained on implicit
    /// interactions (ALS, EASE), which have no rating biases.
    static func empty(users: Int, items: Int) -> FactorModel {
        FactorModel(
            globalMean: 0, userBias: [Float](repeating: 0, count: users), itemBias: [Float](repeating: 0, count: items),
            userFactors: [], itemFactors: [], factors: 0)
    }

    /// A model from stored parameters; factor rows are `factors` floats wide and get padded here.
    init(
        globalMean: Float, userBias: [Float], itemBias: [Float], userFactors: [Float], itemFactors: [Float],
        factors: Int
    ) {
        self.factors = factors
        stride = Self.stride(for: factors)
        self.globalMean = globalMean
        self.userBias = userBias
        self.itemBias = itemBias
        self.userFactors = Self.pad(userFactors, rows: userBias.count, factors: factors, stride: stride)
        self.itemFactors = Self.pad(itemFactors, rows: itemBias.count, factors: factors, stride: stride)
    }

    /// Predictions for pairs of dense indices (below zero: unknown), clipped to `scale`.
    public func predict(users: [Int32], items: [Int32], scale: RatingScale) -> [Float] {
        precondition(users.count == items.count)
        var predictions = [Float](repeating: 0, count: users.count)
        users.withUnsafeBufferPointer { users in
            items.withUnsafeBufferPointer { items in
                userBias.withUnsafeBufferPointer { userBias in
                    itemBias.withUnsafeBufferPointer { itemBias in
                        userFactors.withUnsafeBufferPointer { userFactors in
                            itemFactors.withUnsafeBufferPointer { itemFactors in
                                predictions.withUnsafeMutableBufferPointer { out in
                                    rec_predict_pairs(
                                        users.baseAddress, items.baseAddress, users.count, globalMean,
                                        userBias.baseAddress, itemBias.baseAddress,
                                        userFactors.baseAddress, itemFactors.baseAddress, stride,
                                        scale.low, scale.high, out.baseAddress)
                                }
                            }
                        }
                    }
                }
            }
        }
        return predictions
    }

    /// How many biases and factors are NaN or infinite (padding is zero and counts as finite).
    var nonFiniteParameterCount: Int {
        func count(_ values: [Float]) -> Int {
            values.withUnsafeBytes { Int(rec_count_nonfinite($0.baseAddress, values.count)) }
        }
        return (globalMean.isFinite ? 0 : 1) + count(userBias) + count(itemBias) + count(userFactors)
            + count(itemFactors)
    }

    /// The factor rows without padding, `rows * factors` floats, as stored on disk.
    func unpadded(_ values: [Float], rows: Int) -> [Float] {
        var result = [Float]()
        result.reserveCapacity(rows * factors)
        for row in 0..<rows {
            result.append(contentsOf: values[(row * stride)..<(row * stride + factors)])
        }
        return result
    }

    private static func pad(_ values: [Float], rows: Int, factors: Int, stride: Int) -> [Float] {
        var result = [Float](repeating: 0, count: max(rows * stride, 8))
        for row in 0..<rows {
            for f in 0..<factors {
                result[row * stride + f] = values[row * factors + f]
            }
        }
        return result
    }
}
