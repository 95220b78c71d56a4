import Foundation

// What `recengine tune --output json` reports, and the search space and protocol a pipeline's
// tune stage declares (parsed and checked by `validate` too). The search itself is RecEngine's
// (`Tuning.run`, `SearchSpace.candidates`).

/// The candidates of a hyper-parameter search for one algorithm: each named parameter's values,
/// tried as a full grid, as `samples` combinations drawn from it with a seed, or by successive
/// halving (every combination for a few epochs, the best third for three times as many, and so on
/// until the last ones train for all of `epochs`).
public struct SearchSpace: Sendable, Codable, Equatable {
    /// `svd`, `als` or `ease`.
    public var algorithm: String
    /// Each parameter's values, by the names `train` takes: factors, epochs, reg, lr (svd), alpha (als).
    public var values: [String: [Double]]
    /// `grid` (every combination), `random` (`samples` combinations drawn without replacement) or
    /// `halving` (successive halving over epochs: svd and als; `values["epochs"]` holds the one
    /// number of epochs the last round trains for).
    public var strategy: String
    public var samples: Int?

    /// The parameters each algorithm may search.
    public static let parameterNames: [String: [String]] = [
        "svd": ["factors", "epochs", "lr", "reg"], "als": ["factors", "epochs", "reg", "alpha"], "ease": ["reg"],
    ]
    /// The most combinations a space may hold.
    public static let maximumCandidates = 10_000
    public static let strategies = ["grid", "random", "halving"]
    /// Successive halving keeps the best 1/rate of each round and trains them `rate` times longer.
    public static let halvingRate = 3

    /// Parses `name=v1,v2,...;name=...` (e.g. `reg=100,200,500`).
    ///
    /// - Throws: `RecEngineError` `.invalidArgument` for an unknown algorithm, parameter or
    ///   strategy, a value that is not a finite number (a whole one for factors and epochs), or
    ///   too many combinations.
    public init(algorithm: String, parsing text: String, strategy: String = "grid", samples: Int? = nil) throws {
        guard let names = Self.parameterNames[algorithm] else {
            throw RecEngineError(.invalidArgument, "the algorithm must be one of svd, als, ease, got \(algorithm)")
        }
        var values: [String: [Double]] = [:]
        for part in text.split(separator: ";", omittingEmptySubsequences: true) {
            let pair = part.split(separator: "=", maxSplits: 1)
            let name = pair.first.map { String($0).trimmingCharacters(in: .whitespaces) } ?? ""
            guard pair.count == 2, names.contains(name) else {
                throw RecEngineError(
                    .invalidArgument,
                    "the search space's \"\(part)\" is not NAME=V1,V2,... with NAME one of \(names.joined(separator: ", ")) for \(algorithm)"
                )
            }
            guard values[name] == nil else {
                throw RecEngineError(.invalidArgument, "the search space names \(name) twice")
            }
            let numbers = pair[1].split(separator: ",").map { Double($0.trimmingCharacters(in: .whitespaces)) }
            guard !numbers.isEmpty, numbers.allSatisfy({ $0?.isFinite == true }) else {
                throw RecEngineError(
                    .invalidArgument,
                    "the search space's values of \(name) must be numbers separated by commas, got \"\(pair[1])\"")
            }
            let parsed = numbers.compactMap { $0 }
            if name == "factors" || name == "epochs",
                let bad = parsed.first(where: { $0 != $0.rounded() || $0 < 0 || $0 >= 1e9 })
            {
                throw RecEngineError(.invalidArgument, "the search space's \(name) takes whole numbers, got \(bad)")
            }
            values[name] = parsed
        }
        guard !values.isEmpty else {
            throw RecEngineError(.invalidArgument, "the search space names no parameter (e.g. reg=100,200,500)")
        }
        guard Self.strategies.contains(strategy) else {
            throw RecEngineError(
                .invalidArgument,
                "the strategy must be one of \(Self.strategies.joined(separator: ", ")), got \(strategy)")
        }
        if strategy == "halving" {
            guard algorithm == "svd" || algorithm == "als" else {
                throw RecEngineError(
                    .invalidArgument,
                    "successive halving trains each candidate for more epochs each round: it is for svd and als (\(algorithm) has no epochs)"
                )
            }
            let epochs =
                values["epochs"] ?? [Double(algorithm == "svd" ? TrainDefaults.svdEpochs : TrainDefaults.alsIterations)]
            guard epochs.count == 1, let full = epochs.first, full >= 1 else {
                throw RecEngineError(
                    .invalidArgument,
                    "with successive halving, epochs is the one number of epochs the last round trains for, at least 1 (e.g. epochs=20), got epochs=\(epochs.map { String(Int($0)) }.joined(separator: ","))"
                )
            }
            values["epochs"] = [full]
        }
        let combinations = values.values.reduce(1) { $0.multipliedReportingOverflow(by: $1.count).partialValue }
        guard combinations <= Self.maximumCandidates else {
            throw RecEngineError(
                .invalidArgument,
                "the search space holds \(combinations) combinations, more than \(Self.maximumCandidates)")
        }
        if strategy == "random" {
            guard let samples, samples >= 1 else {
                throw RecEngineError(.invalidArgument, "the random strategy needs a number of samples (at least 1)")
            }
        }
        self.algorithm = algorithm
        self.values = values
        self.strategy = strategy
        self.samples = strategy == "random" ? samples : nil
    }
}

/// How candidates are scored: one validation split of the training ratings (never a test file),
/// the ranking metric, its definitions and k.
public struct TuningProtocol: Sendable, Codable, Equatable {
    /// `random` (a shuffled hold-out), `temporal` (each user's last `lastN` ratings, or the newest
    /// share) or `stratified-item` / `stratified-user` (the share of each item's, or user's,
    /// ratings drawn with the seed, as Microsoft Recommenders' `python_stratified_split`).
    public var validation: String
    /// The share of the ratings held out for validation.
    public var validationShare: Double
    public var lastN: Int
    public var seed: UInt64
    public var k: Int
    /// A ranking metric name as `evaluate` reports it (`ndcg_at_k`, `map_at_k`, ...), maximised.
    public var metric: String
    public var definitions: RankingDefinitions

    public static let validations = ["random", "temporal", "stratified-item", "stratified-user"]
    public static let metrics = ["ndcg_at_k", "map_at_k", "ranking_recall_at_k", "ranking_precision_at_k"]

    public init(
        validation: String = "random", validationShare: Double = 0.25, lastN: Int = 0, seed: UInt64 = 42, k: Int = 10,
        metric: String = "ndcg_at_k",
        definitions: RankingDefinitions = .recengine
    ) {
        self.validation = validation
        self.validationShare = validationShare
        self.lastN = lastN
        self.seed = seed
        self.k = k
        self.metric = metric
        self.definitions = definitions
    }

    enum CodingKeys: String, CodingKey {
        case validation, seed, k, metric, definitions
        case validationShare = "validation_share"
        case lastN = "last_n"
    }

    /// - Throws: `RecEngineError` `.invalidArgument` naming the first setting out of range.
    public func validate() throws {
        guard Self.validations.contains(validation) else {
            throw RecEngineError(
                .invalidArgument,
                "--validation must be one of \(Self.validations.joined(separator: ", ")), got \(validation)")
        }
        guard validationShare > 0, validationShare < 1 else {
            throw RecEngineError(
                .invalidArgument, "--validation-share must be between 0 and 1 (exclusive), got \(validationShare)")
        }
        guard lastN >= 0 else { throw RecEngineError(.invalidArgument, "--last-n must be 0 or more, got \(lastN)") }
        guard (1...1000).contains(k) else {
            throw RecEngineError(.invalidArgument, "--k must be from 1 to 1000, got \(k)")
        }
        guard Self.metrics.contains(metric) else {
            throw RecEngineError(
                .invalidArgument, "--metric must be one of \(Self.metrics.joined(separator: ", ")), got \(metric)")
        }
    }
}

/// What a search tried and what it chose.
public struct TuningReport: Sendable, Codable, Equatable {
    public struct Trial: Sendable, Codable, Equatable {
        public var parameters: [String: Double]
        public var score: Double
        public var fitSeconds: Double

        public init(parameters: [String: Double], score: Double, fitSeconds: Double) {
            self.parameters = parameters
            self.score = score
            self.fitSeconds = fitSeconds
        }

        enum CodingKeys: String, CodingKey {
            case parameters, score
            case fitSeconds = "fit_seconds"
        }

        /// A score that is not a number (a metric the evaluation could not compute) is written
        /// null, which JSON can hold, and read back as NaN.
        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            parameters = try container.decode([String: Double].self, forKey: .parameters)
            score = try container.decodeIfPresent(Double.self, forKey: .score) ?? .nan
            fitSeconds = try container.decode(Double.self, forKey: .fitSeconds)
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(parameters, forKey: .parameters)
            if score.isFinite {
                try container.encode(score, forKey: .score)
            } else {
                try container.encodeNil(forKey: .score)
            }
            try container.encode(fitSeconds, forKey: .fitSeconds)
        }
    }

    public var algorithm: String
    public var space: SearchSpace
    public var `protocol`: TuningProtocol
    /// The best trial's parameters (the first of equal scores, in candidate order).
    public var chosen: [String: Double]
    public var score: Double
    public var trials: [Trial]
    public var candidates: Int
    /// Whether the time budget ran out before every candidate was tried.
    public var stoppedByBudget: Bool
    public var budgetSeconds: Double?
    /// Training and validation ratings.
    public var fitRatings: Int
    public var validationRatings: Int

    public init(
        algorithm: String, space: SearchSpace, protocol rankingProtocol: TuningProtocol, chosen: [String: Double],
        score: Double, trials: [Trial],
        candidates: Int, stoppedByBudget: Bool, budgetSeconds: Double?, fitRatings: Int, validationRatings: Int
    ) {
        self.algorithm = algorithm
        self.space = space
        self.protocol = rankingProtocol
        self.chosen = chosen
        self.score = score
        self.trials = trials
        self.candidates = candidates
        self.stoppedByBudget = stoppedByBudget
        self.budgetSeconds = budgetSeconds
        self.fitRatings = fitRatings
        self.validationRatings = validationRatings
    }

    /// The numbers gates bound: `tune_score` (the choice's score), `tune_trials` (candidates
    /// tried) and `chosen_NAME` for each chosen parameter.
    public var metrics: [String: Double] {
        Dictionary(uniqueKeysWithValues: chosen.map { ("chosen_\($0.key)", $0.value) })
            .merging(["tune_score": score, "tune_trials": Double(trials.count)]) { $1 }
    }

    /// The names `metrics` may hold: a `chosen_` name for every parameter any algorithm searches.
    public static let metricNames =
        ["tune_score", "tune_trials"] + Set(SearchSpace.parameterNames.values.joined()).sorted().map { "chosen_\($0)" }

    enum CodingKeys: String, CodingKey {
        case algorithm, space, `protocol`, chosen, score, trials, candidates
        case stoppedByBudget = "stopped_by_budget"
        case budgetSeconds = "budget_seconds"
        case fitRatings = "fit_ratings"
        case validationRatings = "validation_ratings"
    }
}
