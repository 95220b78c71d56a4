import Foundation
import RecEngine
@_exported import TestSupport

/// Ratings with a known low-rank structure: each user and item has a hidden vector, and the rating
/// is 3 + user bias + item bias + their dot product, rounded and clipped to 1...5. A model that
/// learns the structure predicts held-out ratings far better than the biases alone.
func syntheticRatings(users: Int = 200, items: Int = 150, perUser: Int = 40, rank: Int = 3, seed: UInt64 = 7) -> Ratings
{
    var generator = SeededGenerator(seed: seed)
    func vector() -> [Double] { (0..<rank).map { _ in generator.nextNormal(mean: 0, standardDeviation: 0.9) } }
    let userVectors = (0..<users).map { _ in vector() }
    let itemVectors = (0..<items).map { _ in vector() }
    let userBias = (0..<users).map { _ in generator.nextNormal(mean: 0, standardDeviation: 0.3) }
    let itemBias = (0..<items).map { _ in generator.nextNormal(mean: 0, standardDeviation: 0.3) }
    var ratings = Ratings()
    for u in 0..<users {
        var chosen = Set<Int>()
        while chosen.count < perUser {
            chosen.insert(generator.nextIndex(below: items))
        }
        for i in chosen.sorted() {
            let dot = zip(userVectors[u], itemVectors[i]).map(*).reduce(0, +)
            let value = min(5, max(1, (3 + userBias[u] + itemBias[i] + dot).rounded()))
            ratings.append(user: "u\(u)", item: "m\(i)", rating: Float(value))
        }
    }
    return ratings
}

func csv(_ ratings: Ratings) -> String {
    var text = "user_id,movie_id,rating\n"
    for row in 0..<ratings.count {
        text +=
            "\(ratings.userIDs[Int(ratings.users[row])]),\(ratings.itemIDs[Int(ratings.items[row])]),\(Int(ratings.values[row]))\n"
    }
    return text
}
