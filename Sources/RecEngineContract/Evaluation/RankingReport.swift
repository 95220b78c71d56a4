import Foundation

/// Which formulas turn the lists into metrics. Both use binary relevance (every held-out rating is
/// relevant), the same hits and NDCG@k over the ideal of `min(k, relevant)` hits; they differ in
/// MAP's normaliser and in which users each mean is over.
public struct RankingDefinitions: Sendable, Codable, Hashable, CustomStringConvertible {
    public let name: String

    private init(_ name: String) { self.name = name }

    /// RecEngine's: every mean is over the test users the model knows; MAP@k divides each user's
    /// sum of precisions at the hits by `min(k, relevant)`.
    public static let recengine = RankingDefinitions("recengine")
    /// Microsoft Recommenders' `python_evaluation` (`precision_at_k`, `recall_at_k`, `ndcg_at_k`,
    /// `map`, as their MovieLens benchmark calls them): precision, recall and MAP are means over the
    /// test users that got a list, MAP divides by all the user's relevant items (not `min(k, …)`),
    /// and NDCG is a mean over every test user, a user without a list counting 0.
    public static let microsoftRecommenders = RankingDefinitions("microsoft-recommenders")

    public static let all = [recengine, microsoftRecommenders]

    public init?(named name: String) {
        guard let known = Self.all.first(where: { $0.name == name }) else { return nil }
        self = known
    }

    public init(from decoder: any Decoder) throws {
        let name = try decoder.singleValueContainer().decode(String.self)
        guard let known = Self(named: name) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "unknown ranking definitions \"\(name)\""))
        }
        self = known
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(name)
    }

    public var description: String { name }
}

/// How ranking metrics were measured; recorded with them (evaluate's report, the release record).
public struct RankingProtocol: Sendable, Codable, Equatable {
    /// The length of each user's list.
    public var k: Int
    /// What each user's list is chosen from.
    public var candidates = "every item of the model's catalogue the user had no training interaction with"
    /// What counts as a hit.
    public var relevant = "the user's held-out items (every test rating, whatever its value)"
    /// Test users the model knows, each scored once; users it does not know are left out.
    public var users: Int
    public var unknownUsers: Int
    /// Held-out items the model does not know: they count as relevant, and can never be hit.
    public var unknownItemRatings: Int
    /// The test file's digest: with the split stage's parameters it fixes the protocol.
    public var testSHA256: String?
    /// The formulas of the metrics.
    public var definitions: RankingDefinitions = .recengine

    public init(k: Int, users: Int, unknownUsers: Int, unknownItemRatings: Int, testSHA256: String? = nil) {
        self.k = k
        self.users = users
        self.unknownUsers = unknownUsers
        self.unknownItemRatings = unknownItemRatings
        self.testSHA256 = testSHA256
    }

    enum CodingKeys: String, CodingKey {
        case k, candidates, relevant, users, definitions
        case unknownUsers = "unknown_users"
        case unknownItemRatings = "unknown_item_ratings"
        case testSHA256 = "test_sha256"
    }
}

/// Top-k ranking quality of one recommender over the test users, binary relevance.
public struct RankingMetrics: Sendable, Codable, Equatable {
    /// Mean NDCG@k: DCG `Σ 1/log2(rank + 1)` over the hits, over the DCG of `min(k, relevant)` hits.
    public var ndcg: Double
    /// Mean recall@k: hits over relevant items.
    public var recall: Double
    /// Mean precision@k: hits over k.
    public var precision: Double
    /// Mean average precision@k: the sum of precision at each hit's rank over `min(k, relevant)`.
    public var map: Double
    /// Distinct items recommended to any user, over the catalogue.
    public var coverage: Double
    /// Mean popularity of the recommended items: the share of training users who interacted with each.
    public var popularity: Double

    public init(ndcg: Double, recall: Double, precision: Double, map: Double, coverage: Double, popularity: Double) {
        self.ndcg = ndcg
        self.recall = recall
        self.precision = precision
        self.map = map
        self.coverage = coverage
        self.popularity = popularity
    }

    enum CodingKeys: String, CodingKey {
        case ndcg = "ndcg_at_k"
        case recall = "recall_at_k"
        case precision = "precision_at_k"
        case map = "map_at_k"
        case coverage = "catalog_coverage"
        case popularity = "popularity_bias"
    }
}

/// The ranking metrics of a model and of the most-popular baseline, under one protocol.
public struct RankingReport: Sendable, Codable, Equatable {
    public var model: RankingMetrics
    /// The most-interacted training items the user has not interacted with.
    public var popular: RankingMetrics
    public var `protocol`: RankingProtocol

    /// The numbers gates bound: `ndcg_at_k`, …, and `popular_ndcg_at_k`, …. Recall and precision
    /// are `ranking_recall_at_k` and `ranking_precision_at_k`: `recall_at_k` and `precision_at_k`
    /// are SVD's, over the user's test items only.
    public var metrics: [String: Double] {
        var result: [String: Double] = [:]
        for (prefix, metrics) in [("", model), ("popular_", popular)] {
            result[prefix + "ndcg_at_k"] = metrics.ndcg
            result[prefix + "ranking_recall_at_k"] = metrics.recall
            result[prefix + "ranking_precision_at_k"] = metrics.precision
            result[prefix + "map_at_k"] = metrics.map
            result[prefix + "catalog_coverage"] = metrics.coverage
            result[prefix + "popularity_bias"] = metrics.popularity
        }
        if popular.ndcg > 0 {
            result["ndcg_vs_popular"] = model.ndcg / popular.ndcg
        }
        return result
    }

    /// The metric names of `metrics`; `ndcg_vs_popular` (the model's NDCG@k over the most-popular
    /// list's) is left out when the popular list hits nothing.
    public static let metricNames =
        ["", "popular_"].flatMap { prefix in
            [
                "ndcg_at_k", "ranking_recall_at_k", "ranking_precision_at_k", "map_at_k", "catalog_coverage",
                "popularity_bias",
            ].map { prefix + $0 }
        } + ["ndcg_vs_popular"]
    public init(model: RankingMetrics, popular: RankingMetrics, `protocol`: RankingProtocol) {
        self.model = model
        self.popular = popular
        self.protocol = `protocol`
    }
}
