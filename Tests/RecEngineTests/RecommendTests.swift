import Testing

@testable import RecEngine

@Suite struct RecommendTests {
    static let model: RecommenderModel = {
        var ratings = syntheticRatings(users: 50, items: 40, perUser: 12)
        // A very popular item, so that the popular-items fallback is predictable.
        for u in 0..<50
        where !(0..<ratings.count).contains(where: {
            ratings.userIDs[Int(ratings.users[$0])] == "u\(u)" && ratings.itemIDs[Int(ratings.items[$0])] == "m39"
        }) {
            ratings.append(user: "u\(u)", item: "m39", rating: 4)
        }
        let file = RatingsFile(
            path: "synthetic", ratings: ratings, format: .csv, sha256: "", skippedRowCount: 0, skippedRows: [])
        return try! RecommenderModel.train(on: file, parameters: .init(factors: 6, epochs: 15))
    }()

    @Test func excludesRatedItemsAndRanksByScore() throws {
        let model = Self.model
        let user = try #require(model.userIndex(of: "u7"))
        let result = model.recommend(user: "u7", count: 10)
        #expect(result.personalised)
        #expect(result.items.count == 10)
        #expect(Set(result.items).isDisjoint(with: model.ratedItems(of: user)))
        #expect(zip(result.scores, result.scores.dropFirst()).allSatisfy { $0 >= $1 })
        // Nothing left out scores higher than the last one kept.
        let users = [Int32](repeating: user, count: model.itemIDs.count)
        let all = model.model.predict(
            users: users, items: (0..<Int32(model.itemIDs.count)).map { $0 }, scale: model.scale)
        let rated = Set(model.ratedItems(of: user))
        for item in 0..<Int32(model.itemIDs.count) where !rated.contains(item) && !result.items.contains(item) {
            #expect(all[Int(item)] <= result.scores.last!)
        }
    }

    @Test func unknownUsersGetTheMostPopularItems() {
        let result = Self.model.recommend(user: "nobody", count: 3)
        #expect(!result.personalised)
        #expect(result.items.count == 3)
        #expect(Self.model.itemIDs[Int(result.items[0])] == "m39")
    }

    @Test func aUserWhoRatedNearlyEverythingGetsWhatIsLeft() {
        var ratings = Ratings()
        for item in 0..<5 {
            ratings.append(user: "a", item: "m\(item)", rating: 3)
        }
        ratings.append(user: "b", item: "m5", rating: 4)
        let file = RatingsFile(
            path: "tiny", ratings: ratings, format: .csv, sha256: "", skippedRowCount: 0, skippedRows: [])
        let model = try? RecommenderModel.train(on: file, parameters: .init(factors: 2, epochs: 2))
        #expect(model?.recommend(user: "a", count: 20).items.map { model?.itemIDs[Int($0)] } == ["m5"])
    }

    @Test func topKBreaksTiesTowardsTheLowerIndex() {
        let scores: [Float] = [5, 3, 5, -.infinity, 5, 4, 5]
        #expect(TopK.select(3, from: scores) == [0, 2, 4])
        #expect(TopK.select(10, from: scores) == [0, 2, 4, 6, 5, 1])
        #expect(TopK.select(0, from: scores) == [])
    }

    @Test(arguments: [1, 5, 20, 100])
    func topKAgreesWithAFullSort(k: Int) {
        var generator = SeededGenerator(seed: UInt64(k))
        let scores = (0..<500).map { _ in Float(generator.nextIndex(below: 40)) / 8 }
        let expected = scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 }.prefix(k)
            .map { Int32($0) }
        #expect(TopK.select(k, from: scores) == expected)
    }
}
