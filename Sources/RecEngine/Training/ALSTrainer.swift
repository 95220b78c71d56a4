import CRecKernels
import Dispatch
import Foundation
import RecEngineContract

/// Trains implicit-feedback matrix factorisation by alternating least squares with conjugate
/// gradient: every observed pair is a preference of 1 with confidence `1 + alpha ln(1 + events)`,
/// every other pair a preference of 0 with confidence 1. Scores are `q_iᵀ p_u`, a ranking, not a
/// rating.
///
/// ALS rather than BPR: each pass is a few dense solves per row, which vectorise and spread over
/// cores with no locking (users are independent given the items, and the reverse), it needs no
/// learning rate or negative sampling, and it accounts for every unobserved pair through `YᵀY`
/// instead of sampling a few.
public struct ALSTrainer: Sendable {
    public var parameters: ALSParameters
    /// Threads that solve rows in parallel (each row's solve is independent).
    public var threads: Int

    public init(parameters: ALSParameters = ALSParameters(), threads: Int = 1) {
        self.parameters = parameters
        self.threads = max(1, threads)
    }

    /// Fits user and item factors; biases stay zero and the global mean is 0.
    ///
    /// - Throws: `RecEngineError` `.trainingDiverged` when a pass leaves a factor NaN or infinite.
    public func fit(_ interactions: Interactions) throws -> FactorModel {
        var model = FactorModel(
            userCount: interactions.userCount, itemCount: interactions.itemCount, globalMean: 0,
            parameters: SVDParameters(factors: parameters.factors, initStd: 0.01, seed: parameters.seed))
        let alpha = Float(parameters.alpha)
        let userConfidence = interactions.userEvents.map { 1 + alpha * log1pf($0) }
        let itemConfidence = interactions.itemEvents.map { 1 + alpha * log1pf($0) }
        let stride = model.stride
        var gram = [Float](repeating: 0, count: stride * stride)
        for iteration in 0..<parameters.iterations {
            solve(
                &model.userFactors, rows: interactions.userCount, other: model.itemFactors,
                otherRows: interactions.itemCount,
                offsets: interactions.userOffsets, columns: interactions.userItems, confidence: userConfidence,
                stride: stride, gram: &gram)
            solve(
                &model.itemFactors, rows: interactions.itemCount, other: model.userFactors,
                otherRows: interactions.userCount,
                offsets: interactions.itemOffsets, columns: interactions.itemUsers, confidence: itemConfidence,
                stride: stride, gram: &gram)
            let nonFinite = model.nonFiniteParameterCount
            guard nonFinite == 0 else {
                throw RecEngineError(
                    .trainingDiverged,
                    "ALS diverged at iteration \(iteration + 1) of \(parameters.iterations): \(nonFinite) parameters are NaN or infinite",
                    hint: "raise the regularisation (--reg) or lower --alpha; no model was written")
            }
        }
        return model
    }

    /// One half-pass: every row of `factors` solved against the fixed `other` side.
    private func solve(
        _ factors: inout [Float], rows: Int, other: [Float], otherRows: Int, offsets: [Int32], columns: [Int32],
        confidence: [Float],
        stride: Int, gram: inout [Float]
    ) {
        other.withUnsafeBufferPointer { other in
            gram.withUnsafeMutableBufferPointer { gram in
                rec_gram(other.baseAddress, otherRows, stride, gram.baseAddress)
            }
        }
        let chunks = min(threads * 8, max(rows, 1))
        let regularization = Float(parameters.regularization)
        let cgSteps = Int32(parameters.cgSteps)
        offsets.withUnsafeBufferPointer { offsets in
            columns.withUnsafeBufferPointer { columns in
                confidence.withUnsafeBufferPointer { confidence in
                    other.withUnsafeBufferPointer { other in
                        gram.withUnsafeBufferPointer { gram in
                            factors.withUnsafeMutableBufferPointer { factors in
                                let shared = SolveArguments(
                                    offsets: offsets.baseAddress, columns: columns.baseAddress,
                                    confidence: confidence.baseAddress,
                                    x: factors.baseAddress, y: other.baseAddress, gram: gram.baseAddress)
                                let run: @Sendable (Int) -> Void = { chunk in
                                    let begin = rows * chunk / chunks
                                    let end = rows * (chunk + 1) / chunks
                                    rec_als_solve_rows(
                                        shared.offsets, shared.columns, shared.confidence, begin, end, shared.x,
                                        shared.y, stride,
                                        shared.gram, regularization, cgSteps)
                                }
                                if threads == 1 {
                                    for chunk in 0..<chunks { run(chunk) }
                                } else {
                                    DispatchQueue.concurrentPerform(iterations: chunks, execute: run)
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The buffers of one half-pass, shared by the threads that solve disjoint row ranges.
// @unchecked: the pointers outlive `concurrentPerform` (it returns before the buffers are
// released); every thread only reads `offsets`, `columns`, `confidence`, `y` and `gram`, and
// writes rows of `x` in its own range.
private struct SolveArguments: @unchecked Sendable {
    var offsets: UnsafePointer<Int32>?
    var columns: UnsafePointer<Int32>?
    var confidence: UnsafePointer<Float>?
    var x: UnsafeMutablePointer<Float>?
    var y: UnsafePointer<Float>?
    var gram: UnsafePointer<Float>?
}
