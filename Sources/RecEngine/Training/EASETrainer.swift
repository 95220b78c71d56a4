import CRecKernels
import Dispatch
import Foundation
import RecEngineContract

/// Trains EASE in closed form on implicit feedback (every observed user-item pair is a 1): the
/// Gram matrix `XᵀX + λI` in double precision, its Cholesky factor, the inverse `P` from the factor
/// (symmetric positive definite: no pivoting, and a pivot that is not positive is reported rather
/// than divided by), then `B[i][j] = -P[i][j] / P[j][j]` with a zero diagonal, stored as floats.
/// A user's scores are the sum of the rows of B of the items they interacted with.
///
/// Memory and time grow with the square and the cube of the catalogue: `EASEMemory.estimate(items:)`
/// tells how much before any work, and `fit` refuses a catalogue whose estimate is above
/// `EASEMemory.limit`.
public struct EASETrainer: Sendable {
    public var parameters: EASEParameters
    /// Threads for the Gram matrix, the factorisation and the inverse.
    public var threads: Int

    public init(parameters: EASEParameters = EASEParameters(), threads: Int = 1) {
        self.parameters = parameters
        self.threads = max(1, threads)
    }

    /// The item-item weights B, `itemCount²` floats, row-major.
    ///
    /// - Throws: `RecEngineError` `.tooLarge` before any work when the catalogue does not fit;
    ///   `.trainingDiverged` when the Gram matrix is not positive definite in floating point or a
    ///   weight comes out NaN or infinite (λ far too small for the data).
    public func fit(_ interactions: Interactions) throws -> [Float] {
        try parameters.validate()
        let n = interactions.itemCount
        try EASEMemory.requireFits(items: n)
        guard n > 0 else { return [] }
        var matrix = [Double](repeating: 0, count: n * n)
        var diagonal = [Double](repeating: 0, count: n)
        let threads = threads
        let failedRow: Int = matrix.withUnsafeMutableBufferPointer { matrix in
            let a = SharedMatrix(pointer: matrix.baseAddress)
            let users = interactions.userCount
            interactions.userOffsets.withUnsafeBufferPointer { offsets in
                interactions.userItems.withUnsafeBufferPointer { items in
                    let input = SharedRows(offsets: offsets.baseAddress, items: items.baseAddress)
                    Self.parallel(rows: n, chunks: threads * 8, threads: threads) { begin, end in
                        rec_ease_gram_rows(input.offsets, input.items, users, n, begin, end, a.pointer)
                    }
                }
            }
            let lambda = parameters.regularization
            for i in 0..<n {
                matrix[i * n + i] += lambda
            }
            // Cholesky by blocks of rows: the rows of a block in parallel against every row before
            // it, then the block's own triangle.
            let block = 32 * threads
            var start = 0
            while start < n {
                let end = min(n, start + block)
                let first = start
                Self.parallel(rows: end - start, chunks: threads, threads: threads) { begin, stop in
                    rec_cholesky_panel(a.pointer, n, first, first + begin, first + stop)
                }
                let failed = rec_cholesky_diagonal(a.pointer, n, start, end)
                if failed != 0 { return Int(failed) }
                start = end
            }
            diagonal.withUnsafeMutableBufferPointer { diagonal in
                let d = SharedMatrix(pointer: diagonal.baseAddress)
                // Small chunks: a row's cost falls with its index (n - row)².
                Self.parallel(rows: n, chunks: max(1, n / 8), threads: threads) { begin, end in
                    rec_cholesky_inverse_rows(a.pointer, n, begin, end, d.pointer)
                }
            }
            return 0
        }
        guard failedRow == 0 else {
            throw RecEngineError(
                .trainingDiverged,
                "EASE: the Gram matrix plus λ = \(parameters.regularization) is not positive definite in floating point (pivot of item row \(failedRow))",
                hint: "raise the regularisation (--reg); no model was written")
        }
        var weights = [Float](repeating: 0, count: n * n)
        matrix.withUnsafeBufferPointer { matrix in
            diagonal.withUnsafeBufferPointer { diagonal in
                weights.withUnsafeMutableBufferPointer { weights in
                    let shared = SharedWeights(
                        a: matrix.baseAddress, diagonal: diagonal.baseAddress, weights: weights.baseAddress)
                    Self.parallel(rows: n, chunks: threads * 8, threads: threads) { begin, end in
                        rec_ease_weights_rows(shared.a, shared.diagonal, n, begin, end, shared.weights)
                    }
                }
            }
        }
        let nonFinite = weights.withUnsafeBytes { Int(rec_count_nonfinite($0.baseAddress, weights.count)) }
        guard nonFinite == 0 else {
            throw RecEngineError(
                .trainingDiverged,
                "EASE: \(nonFinite) item weights are NaN or infinite (λ = \(parameters.regularization))",
                hint: "raise the regularisation (--reg); no model was written")
        }
        return weights
    }

    /// Runs `body(begin, end)` over `chunks` consecutive parts of `0..<rows`, on `threads` threads.
    private static func parallel(rows: Int, chunks: Int, threads: Int, _ body: @escaping @Sendable (Int, Int) -> Void) {
        let chunks = max(1, min(chunks, rows))
        let run: @Sendable (Int) -> Void = { chunk in
            body(rows * chunk / chunks, rows * (chunk + 1) / chunks)
        }
        if threads == 1 {
            for chunk in 0..<chunks { run(chunk) }
        } else {
            DispatchQueue.concurrentPerform(iterations: chunks, execute: run)
        }
    }
}

// @unchecked: the pointers outlive `concurrentPerform` (it returns before the buffers are
// released), and the threads write disjoint rows (each kernel's contract).
private struct SharedMatrix: @unchecked Sendable {
    var pointer: UnsafeMutablePointer<Double>?
}

// @unchecked: read only, by every thread, while the buffers are alive (as above).
private struct SharedRows: @unchecked Sendable {
    var offsets: UnsafePointer<Int32>?
    var items: UnsafePointer<Int32>?
}

// @unchecked: `a` and `diagonal` are only read; each thread writes its own rows of `weights`.
private struct SharedWeights: @unchecked Sendable {
    var a: UnsafePointer<Double>?
    var diagonal: UnsafePointer<Double>?
    var weights: UnsafeMutablePointer<Float>?
}
