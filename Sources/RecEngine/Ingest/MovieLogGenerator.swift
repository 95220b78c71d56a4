/// Writes a realistic movie log from ratings, for tests and demos of the ingest: for every rating,
/// a few watched minutes, now and then the recommendation request before them, then the rating
/// itself; plus, at the given share, extra malformed lines of the kinds real streams contain.
/// Every rating appears exactly once as a valid `GET /rate/` line, so an ingest can be checked
/// for loss and duplicates.
public struct MovieLogGenerator: Sendable {
    public var malformedShare: Double
    public var seed: UInt64

    public init(malformedShare: Double = 0.05, seed: UInt64 = 1) {
        self.malformedShare = malformedShare
        self.seed = seed
    }

    /// The log lines for `ratings`, in time order (ratings keep their order).
    public func lines(for ratings: Ratings) -> [String] {
        var generator = SeededGenerator(seed: seed)
        var lines: [String] = []
        lines.reserveCapacity(ratings.count * 4)
        var second = 0
        func time() -> String {
            second += 1 + generator.nextIndex(below: 3)
            let (minutes, seconds) = (second / 60, second % 60)
            let (hours, minute) = (minutes / 60, minutes % 60)
            let (days, hour) = (hours / 24, hours % 24)
            return "2022-03-\(pad(18 + days % 10))T\(pad(hour)):\(pad(minute)):\(pad(seconds))"
        }
        for row in 0..<ratings.count {
            let user = ratings.userIDs[Int(ratings.users[row])]
            let movie = ratings.itemIDs[Int(ratings.items[row])]
            if generator.nextIndex(below: 4) == 0 {
                let others = (0..<3).map { _ in ratings.itemIDs[generator.nextIndex(below: ratings.itemCount)] }
                lines.append(
                    "\(time()),\(user),recommendation request recengine:8080, status 200, result: \(movie), \(others.joined(separator: ", ")), \(5 + generator.nextIndex(below: 40)) ms"
                )
            }
            for minute in 0..<(1 + generator.nextIndex(below: 3)) {
                lines.append("\(time()),\(user),GET /data/m/\(movie)/\(minute).mpg")
            }
            lines.append("\(time()),\(user),GET /rate/\(movie)=\(Int(ratings.values[row]))")
            if generator.nextUnit() < malformedShare * 3 {
                lines.append(malformed(user: user, movie: movie, time: time(), generator: &generator))
            }
        }
        return lines
    }

    private func malformed(user: String, movie: String, time: String, generator: inout SeededGenerator) -> String {
        switch generator.nextIndex(below: 6) {
        case 0: return String("\(time),\(user),GET /rate/\(movie)=4".prefix(24))  // truncated
        case 1: return "\(time),\(user),GET /rate/\(movie)=\(6 + generator.nextIndex(below: 4))"  // out of range
        case 2: return "\(time), \(user),GET /rate/\(movie)=3"  // stray space
        case 3: return "\(time),user\(user),GET /rate/\(movie)=3"  // bad user id
        case 4: return "\(time),\(user),GET /rate/\(movie)=three"  // bad number
        default: return "\(time),\(user),POST /login"  // unknown kind
        }
    }

    private func pad(_ value: Int) -> String {
        value < 10 ? "0\(value)" : String(value)
    }
}
