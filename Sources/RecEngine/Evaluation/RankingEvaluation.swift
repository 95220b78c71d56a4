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
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "unknown ranking definitions \"\(name)\""))
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
            ["ndcg_at_k", "ranking_recall_at_k", "ranking_precision_at_k", "map_at_k", "catalog_coverage", "popularity_bias"].map { prefix + $0 }
        } + ["ndcg_vs_popular"]
}

public enum RankingEvaluation {
    /// Ranks the catalogue for every test user the model knows, with the model and with the
    /// most-popular baseline, and scores both lists against the user's held-out items.
    ///
    /// - Parameter definitions: the formulas of the metrics (RecEngine's, or Microsoft
    ///   Recommenders', which also count the test users the model does not know in NDCG's mean).
    public static func evaluate(
        _ model: RecommenderModel, on test: Ratings, k: Int, testSHA256: String? = nil, definitions: RankingDefinitions = .recengine
    ) -> RankingReport {
        let held = heldOut(model, test)
        var modelLists: [[Int32]] = []
        var popularLists: [[Int32]] = []
        for user in held.users {
            modelLists.append(model.recommend(user: model.userIDs[Int(user)], count: k).items)
            let seen = Set(model.ratedItems(of: user))
            var list: [Int32] = []
            for item in model.popularItems where !seen.contains(item) {
                list.append(item)
                if list.count == k { break }
            }
            popularLists.append(list)
        }
        let popularity = itemPopularity(model)
        func score(_ lists: [[Int32]]) -> RankingMetrics {
            metrics(
                lists: lists, relevant: held.relevant, relevantCounts: held.counts, popularity: popularity, k: k, definitions: definitions,
                unlistedUsers: held.unknownUsers)
        }
        var rankingProtocol = RankingProtocol(
            k: k, users: held.users.count, unknownUsers: held.unknownUsers, unknownItemRatings: held.unknownItemRatings, testSHA256: testSHA256)
        rankingProtocol.definitions = definitions
        return RankingReport(model: score(modelLists), popular: score(popularLists), protocol: rankingProtocol)
    }

    /// The model's top-k list of every test user it knows, as raw ids, best first: the lists
    /// `evaluate` scores, for a peer's metric code to score too.
    public static func lists(_ model: RecommenderModel, on test: Ratings, k: Int) -> [(user: String, items: [String])] {
        heldOut(model, test).users.map { user in
            let id = model.userIDs[Int(user)]
            return (id, model.recommend(user: id, count: k).items.map { model.itemIDs[Int($0)] })
        }
    }

    /// The test users the model knows (ascending index), each one's held-out items the model knows
    /// and how many held-out items they have in all; how many test users and ratings it does not know.
    private static func heldOut(
        _ model: RecommenderModel, _ test: Ratings
    ) -> (users: [Int32], relevant: [[Int32]], counts: [Int], unknownUsers: Int, unknownItemRatings: Int) {
        var relevantByUser = [[Int32]](repeating: [], count: model.userIDs.count)
        var relevantCounts = [Int](repeating: 0, count: model.userIDs.count)
        var heldOut = [Set<String>](repeating: [], count: test.userCount)
        var unknownUsers = Set<Int32>()
        var unknownItemRatings = 0
        for row in 0..<test.count {
            let testUser = test.users[row]
            guard let user = model.userIndex(of: test.userIDs[Int(testUser)]) else {
                unknownUsers.insert(testUser)
                continue
            }
            let itemID = test.itemIDs[Int(test.items[row])]
            guard heldOut[Int(testUser)].insert(itemID).inserted else { continue }
            relevantCounts[Int(user)] += 1
            if let item = model.itemIndex(of: itemID) {
                relevantByUser[Int(user)].append(item)
            } else {
                unknownItemRatings += 1
            }
        }
        let users = (0..<model.userIDs.count).filter { relevantCounts[$0] > 0 }.map { Int32($0) }
        return (
            users, users.map { relevantByUser[Int($0)] }, users.map { relevantCounts[Int($0)] }, unknownUsers.count, unknownItemRatings
        )
    }

    /// The share of the model's training users who interacted with each item.
    static func itemPopularity(_ model: RecommenderModel) -> [Double] {
        var counts = [Double](repeating: 0, count: model.itemIDs.count)
        for item in model.ratedItems { counts[Int(item)] += 1 }
        let users = Double(max(model.userIDs.count, 1))
        return counts.map { $0 / users }
    }

    /// The metrics of one list per user against that user's relevant items.
    ///
    /// - Parameters:
    ///   - lists: each user's recommended items, best first (at most `k` are read).
    ///   - relevant: each user's relevant items that can be recommended.
    ///   - relevantCounts: each user's number of relevant items, including ones that cannot be.
    ///   - popularity: each item's popularity, the average of which over all listed items is
    ///     `popularity`; its count is the catalogue size of `coverage`.
    ///   - definitions: the formulas (see `RankingDefinitions`).
    ///   - unlistedUsers: test users with no list (the model does not know them): Microsoft
    ///     Recommenders' NDCG counts each as 0; RecEngine's metrics leave them out.
    public static func metrics(
        lists: [[Int32]], relevant: [[Int32]], relevantCounts: [Int], popularity: [Double], k: Int,
        definitions: RankingDefinitions = .recengine, unlistedUsers: Int = 0
    ) -> RankingMetrics {
        let microsoft = definitions == .microsoftRecommenders
        var ndcg = 0.0
        var recall = 0.0
        var precision = 0.0
        var map = 0.0
        var popularitySum = 0.0
        var listed = 0
        var covered = Set<Int32>()
        var listedUsers = 0
        for (index, list) in lists.enumerated() {
            let relevantSet = Set(relevant[index])
            let relevantCount = relevantCounts[index]
            var dcg = 0.0
            var hits = 0
            var precisionSum = 0.0
            for (rank, item) in list.prefix(k).enumerated() {
                covered.insert(item)
                popularitySum += popularity[Int(item)]
                listed += 1
                if relevantSet.contains(item) {
                    hits += 1
                    dcg += 1 / log2(Double(rank + 2))
                    precisionSum += Double(hits) / Double(rank + 1)
                }
            }
            // Microsoft Recommenders' means are over the users that have a list.
            if microsoft && list.isEmpty { continue }
            listedUsers += 1
            let ideal = (0..<min(k, relevantCount)).reduce(0.0) { $0 + 1 / log2(Double($1 + 2)) }
            ndcg += ideal > 0 ? dcg / ideal : 0
            recall += relevantCount > 0 ? Double(hits) / Double(relevantCount) : 0
            precision += Double(hits) / Double(k)
            map += relevantCount > 0 ? precisionSum / Double(microsoft ? relevantCount : min(k, relevantCount)) : 0
        }
        let users = Double(max(microsoft ? listedUsers : lists.count, 1))
        let ndcgUsers = Double(max(microsoft ? lists.count + unlistedUsers : lists.count, 1))
        return RankingMetrics(
            ndcg: ndcg / ndcgUsers, recall: recall / users, precision: precision / users, map: map / users,
            coverage: popularity.isEmpty ? 0 : Double(covered.count) / Double(popularity.count),
            popularity: listed == 0 ? 0 : popularitySum / Double(listed))
    }
}
