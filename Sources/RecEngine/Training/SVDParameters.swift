public import RecEngineContract

/// Hyper-parameters of biased matrix factorisation, with Surprise's `SVD` defaults.
public struct SVDParameters: Sendable, Codable, Equatable {
    /// Number of latent factors (Surprise: `n_factors`).
    public var factors: Int
    /// Passes of SGD over the training ratings (`n_epochs`).
    public var epochs: Int
    /// Learning rate for every parameter (`lr_all`).
    public var learningRate: Double
    /// Regularisation for every parameter (`reg_all`).
    public var regularization: Double
    /// Mean of the normal distribution the factors start from (`init_mean`).
    public var initMean: Double
    /// Standard deviation of that distribution (`init_std_dev`).
    public var initStd: Double
    /// Seed of the factor initialisation.
    public var seed: UInt64

    public init(
        factors: Int = 100,
        epochs: Int = TrainDefaults.svdEpochs,
        learningRate: Double = 0.005,
        regularization: Double = 0.02,
        initMean: Double = 0,
        initStd: Double = 0.1,
        seed: UInt64 = 0
    ) {
        self.factors = factors
        self.epochs = epochs
        self.learningRate = learningRate
        self.regularization = regularization
        self.initMean = initMean
        self.initStd = initStd
        self.seed = seed
    }

    enum CodingKeys: String, CodingKey {
        case factors, epochs, seed
        case learningRate = "lr"
        case regularization = "reg"
        case initMean = "init_mean"
        case initStd = "init_std"
    }

    /// The number of latent factors allowed, in training and in a model file.
    public static let factorRange = 0...4096

    /// - Throws: `RecEngineError` `.invalidArgument` naming the first parameter out of range.
    public func validate() throws {
        func check(_ ok: Bool, _ message: String) throws {
            if !ok { throw RecEngineError(.invalidArgument, message) }
        }
        try check(Self.factorRange.contains(factors), "--factors must be from 0 to 4096, got \(factors)")
        try check((1...10_000).contains(epochs), "--epochs must be from 1 to 10000, got \(epochs)")
        try check(learningRate > 0 && learningRate.isFinite, "--lr must be a positive number, got \(learningRate)")
        try check(
            regularization >= 0 && regularization.isFinite, "--reg must be zero or positive, got \(regularization)")
        try check(initMean.isFinite, "--init-mean must be a number, got \(initMean)")
        try check(initStd >= 0 && initStd.isFinite, "--init-std must be zero or positive, got \(initStd)")
    }
}
