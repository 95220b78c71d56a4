import Foundation
public import RecEngineContract

public enum RankingEvaluation {
    /// Ranks the catalogue for every test user the model knows, with the model and with the
    /// most-popular baseline, and scores both lists against the user's held-out items.
    public static func evaluate(_ model: RecommenderModel, on test: Ratings, k: Int, testSHA256: String? = nil) -> RankingReport {
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
        var users: [Int32] = []
        var modelLists: [[Int32]] = []
        var popularLists: [[Int32]] = []
        for user in 0..<model.userIDs.count where relevantCounts[user] > 0 {
            users.append(Int32(user))
            modelLists.append(model.recommend(user: model.userIDs[user], count: k).items)
            let seen = Set(model.ratedItems(of: Int32(user)))
            var list: [Int32] = []
            for item in model.popularItems where !seen.contains(item) {
                list.append(item)
                if list.count == k { break }
            }
            popularLists.append(list)
        }
        let relevant = users.map { relevantByUser[Int($0)] }
        let counts = users.map { relevantCounts[Int($0)] }
        let popularity = itemPopularity(model)
        return RankingReport(
            model: metrics(lists: modelLists, relevant: relevant, relevantCounts: counts, popularity: popularity, k: k),
            popular: metrics(lists: popularLists, relevant: relevant, relevantCounts: counts, popularity: popularity, k: k),
            protocol: RankingProtocol(
                k: k, users: users.count, unknownUsers: unknownUsers.count, unknownItemRatings: unknownItemRatings, testSHA256: testSHA256))
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
    public static func metrics(lists: [[Int32]], relevant: [[Int32]], relevantCounts: [Int], popularity: [Double], k: Int) -> RankingMetrics {
        var ndcg = 0.0
        var recall = 0.0
        var map = 0.0
        var popularitySum = 0.0
        var listed = 0
        var covered = Set<Int32>()
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
            let ideal = (0..<min(k, relevantCount)).reduce(0.0) { $0 + 1 / log2(Double($1 + 2)) }
            ndcg += ideal > 0 ? dcg / ideal : 0
            recall += relevantCount > 0 ? Double(hits) / Double(relevantCount) : 0
            map += relevantCount > 0 ? precisionSum / Double(min(k, relevantCount)) : 0
        }
        let users = Double(max(lists.count, 1))
        return RankingMetrics(
            ndcg: ndcg / users, recall: recall / users, map: map / users,
            coverage: popularity.isEmpty ? 0 : Double(covered.count) / Double(popularity.count),
            popularity: listed == 0 ? 0 : popularitySum / Double(listed))
    }
}
