public import RecEngine
import RecEngineContract

/// Ratings whose ids look like the movie log's (numeric users, movie slugs `film+N`), each user
/// rating `perUser` of `movies` movies; ratings follow a learnable pattern unless `rating` fixes them.
public func movieLogRatings(
    users: Range<Int>, movies: Int = 30, perUser: Int = 10, rating: Int? = nil, seed: UInt64 = 1
) -> Ratings {
    var generator = SeededGenerator(seed: seed)
    var ratings = Ratings()
    for user in users {
        var chosen = Set<Int>()
        while chosen.count < perUser { chosen.insert(generator.nextIndex(below: movies)) }
        for movie in chosen.sorted() {
            let value = rating ?? min(5, max(1, 3 + (user % 3) - (movie % 3) + generator.nextIndex(below: 2)))
            ratings.append(user: String(user), item: "film+\(movie)", rating: Float(value))
        }
    }
    return ratings
}

/// The `user,movie` → rating table of ratings, to compare what an ingest wrote with what the log held.
public func ratingTable(_ ratings: Ratings) -> [String: Float] {
    var table: [String: Float] = [:]
    for row in 0..<ratings.count {
        table["\(ratings.userIDs[Int(ratings.users[row])]),\(ratings.itemIDs[Int(ratings.items[row])])"] =
            ratings.values[row]
    }
    return table
}

/// What a correct ingest of `lines` must find: the valid watches, and the rejects per reason.
public func expectedCounts(_ lines: [String]) -> (watches: Int, rejected: [String: Int]) {
    var watches = 0
    var rejected: [String: Int] = [:]
    for line in lines {
        switch MovieLogLine.parse(line[...]) {
        case .success(.watch): watches += 1
        case .failure(let reason): rejected[reason.rawValue, default: 0] += 1
        default: break
        }
    }
    return (watches, rejected)
}

/// The rows of a CSV file with a header.
public func dataRowCount(_ path: String) -> Int {
    read(path).split(separator: "\n").count - 1
}
