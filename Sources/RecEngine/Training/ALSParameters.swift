public import RecEngineContract

/// Hyper-parameters of implicit alternating least squares (Hu, Koren & Volinsky 2008, solved by
/// conjugate gradient as Takács et al. 2011), with the defaults that rank best on MovieLens 100k
/// under the README's protocol.
public struct ALSParameters: Sendable, Codable, Equatable {
    /// Number of latent factors.
    public var factors: Int
    /// Alternating passes: each solves every user, then every item.
    public var iterations: Int
    /// L2 regularisation λ of every factor row.
    public var regularization: Double
    /// Confidence scale: a pair with `n` events (a rating and each watched minute count one) has
    /// confidence `1 + alpha * ln(1 + n)`; unobserved pairs have confidence 1 and preference 0.
    public var alpha: Double
    /// Conjugate-gradient steps per row and pass (3 is close to an exact solve from a warm start).
    public var cgSteps: Int
    /// Seed of the factor initialisation, N(0, 0.01).
    public var seed: UInt64

    public init(
        factors: Int = 64, iterations: Int = TrainDefaults.alsIterations, regularization: Double = 0.05,
        alpha: Double = TrainDefaults.alsAlpha, cgSteps: Int = 3, seed: UInt64 = 0
    ) {
        self.factors = factors
        self.iterations = iterations
        self.regularization = regularization
        self.alpha = alpha
        self.cgSteps = cgSteps
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case factors, iterations, alpha, seed
        case regularization = "reg"
        case cgSteps = "cg_steps"
    }

    /// - Throws: `RecEngineError` `.invalidArgument` naming the first parameter out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws {
            if !ok { throw RecEngineError(.invalidArgument, message) }
        }
        try check((1...1024).contains(factors), "--factors must be from 1 to 1024 for als, got \(factors)")
        try check((1...1000).contains(iterations), "--epochs must be from 1 to 1000 for als, got \(iterations)")
        try check(
            regularization > 0 && regularization.isFinite, "--reg must be positive for als, got \(regularization)")
        try check(alpha >= 0 && alpha.isFinite && alpha <= 1e6, "--alpha must be from 0 to 1000000, got \(alpha)")
        try check((1...50).contains(cgSteps), "--cg-steps must be from 1 to 50, got \(cgSteps)")
    }
}
