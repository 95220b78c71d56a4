import Foundation
public import RecEngineContract

public enum RankingEvaluation {
    /// Ranks the catalogue for every test user the model knows, with the model and with the
    /// most-popular baseline, and scores both lists against the user's held-out items.
    ///
    /// - Parameter definitions: the formulas of the metrics (RecEngine's, or Microsoft
    ///   Recommenders', which also count the test users the model does not know in NDCG's mean).
    public static func evaluate(
        _ model: RecommenderModel, on test: Ratings, k: Int, testSHA256: String? = nil,
        definitions: RankingDefinitions = .recengine
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
                lists: lists, relevant: held.relevant, relevantCounts: held.counts, popularity: popularity, k: k,
                definitions: definitions,
                unlistedUsers: held.unknownUsers)
        }
        var rankingProtocol = RankingProtocol(
            k: k, users: held.users.count, unknownUsers: held.unknownUsers, unknownItemRatings: held.unknownItemRatings,
            testSHA256: testSHA256)
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
            users, users.map { relevantByUser[Int($0)] }, users.map { relevantCounts[Int($0)] }, unknownUsers.count,
            unknownItemRatings
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
