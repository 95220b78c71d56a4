import RecEngineContract

/// Hyper-parameters of EASE (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data"):
/// an item-to-item weight matrix in closed form, `B = I - P diagMat(1 / diag(P))` with
/// `P = (XᵀX + λI)⁻¹` and `diag(B) = 0`, where X is the binary user-item matrix.
public struct EASEParameters: Sendable, Codable, Equatable {
    /// L2 regularisation λ added to the diagonal of the Gram matrix. 500 ranks best on MovieLens
    /// 100k under the Microsoft Recommenders protocol, chosen on a validation split of the training
    /// data (Benchmarks/quality); Steck used 500 on MovieLens 20M too.
    public var regularization: Double

    public init(regularization: Double = 500) {
        self.regularization = regularization
    }

    enum CodingKeys: String, CodingKey {
        case regularization = "reg"
    }

    /// - Throws: `RecEngineError` `.invalidArgument` naming the parameter out of range.
    public func validate() throws {
        guard regularization > 0, regularization.isFinite, regularization <= 1e9 else {
            throw RecEngineError(
                .invalidArgument, "--reg must be positive (and at most 1e9) for ease, got \(regularization)")
        }
    }
}
