import RecEngineContract

/// Reproducible train/test splits of row indices, shaped like Surprise's `train_test_split` and
/// `KFold`: the rows are shuffled once with the seed, then cut.
public enum Split {
    /// A random hold-out: `ceil(testSize * count)` shuffled rows for testing, the rest for training.
    ///
    /// - Throws: `RecEngineError` `.invalidArgument` when `testSize` is not in (0, 1) or leaves
    ///   either side empty.
    public static func holdout(count: Int, testSize: Double, seed: UInt64) throws -> (train: [Int], test: [Int]) {
        guard testSize > 0, testSize < 1 else {
            throw RecEngineError(.invalidArgument, "--test-size must be between 0 and 1 (exclusive), got \(testSize)")
        }
        let testCount = Int((testSize * Double(count)).rounded(.up))
        guard testCount > 0, testCount < count else {
            throw RecEngineError(
                .invalidArgument, "a test size of \(testSize) leaves an empty side with \(count) ratings")
        }
        let rows = shuffled(count: count, seed: seed)
        return (Array(rows[testCount...]), Array(rows[..<testCount]))
    }

    /// K folds: the shuffled rows cut into `folds` consecutive parts (the first `count % folds` one
    /// row larger); fold `f` tests on part `f` and trains on the others, in shuffled order.
    ///
    /// - Throws: `RecEngineError` `.invalidArgument` when `folds` is below 2 or above `count`.
    public static func kFold(count: Int, folds: Int, seed: UInt64) throws -> [(train: [Int], test: [Int])] {
        guard folds >= 2, folds <= count else {
            throw RecEngineError(
                .invalidArgument, "--folds must be from 2 to the number of ratings (\(count)), got \(folds)")
        }
        let rows = shuffled(count: count, seed: seed)
        var result: [(train: [Int], test: [Int])] = []
        var start = 0
        for fold in 0..<folds {
            let size = count / folds + (fold < count % folds ? 1 : 0)
            let stop = start + size
            result.append((Array(rows[..<start] + rows[stop...]), Array(rows[start..<stop])))
            start = stop
        }
        return result
    }

    /// A stratified hold-out, shaped like Microsoft Recommenders' `python_stratified_split`: the
    /// rows of each group (an item's or a user's ratings) in an order shuffled with the seed, the
    /// first `round((1 - testSize) * count)` (halves to even, as Python rounds) for training and
    /// the rest for testing; both sides in the rows' original order.
    ///
    /// - Throws: `RecEngineError` `.invalidArgument` when `testSize` is not in (0, 1) or a side is empty.
    public static func stratified(groups: [Int32], testSize: Double, seed: UInt64) throws -> (train: [Int], test: [Int])
    {
        guard testSize > 0, testSize < 1 else {
            throw RecEngineError(
                .invalidArgument, "the test share must be between 0 and 1 (exclusive), got \(testSize)")
        }
        var rowsByGroup = [[Int]](repeating: [], count: Int(groups.max() ?? -1) + 1)
        for row in shuffled(count: groups.count, seed: seed) {
            rowsByGroup[Int(groups[row])].append(row)
        }
        var train: [Int] = []
        var test: [Int] = []
        for rows in rowsByGroup {
            let kept = Int((Double(rows.count) * (1 - testSize)).rounded(.toNearestOrEven))
            train += rows.prefix(kept)
            test += rows.dropFirst(kept)
        }
        guard !train.isEmpty, !test.isEmpty else {
            throw RecEngineError(
                .invalidArgument,
                "a stratified split of \(groups.count) ratings leaves an empty side (train \(train.count), test \(test.count))"
            )
        }
        return (train.sorted(), test.sorted())
    }

    private static func shuffled(count: Int, seed: UInt64) -> [Int] {
        var rows = Array(0..<count)
        var generator = SeededGenerator(seed: seed)
        generator.shuffle(&rows)
        return rows
    }
}

extension Split {
    /// A split by time, for an online experiment no model has seen and an offline test that looks
    /// like tomorrow: the newest `futureShare` of all ratings is reserved (the "future", replayed
    /// online, trained on by no release while it is the newest), then of the rest either each
    /// user's last `lastN` ratings (users keep at least one rating for training) or, with `lastN`
    /// 0, the newest `testSize` go to the test side. Ties in time keep the file's order.
    ///
    /// - Parameter times: seconds of each row (see `Split.time(of:)`).
    /// - Throws: `RecEngineError` `.invalidArgument` for shares outside their range or a side left empty.
    public static func temporal(
        times: [Double], users: [Int32], testSize: Double, lastN: Int, futureShare: Double
    ) throws -> (train: [Int], test: [Int], future: [Int]) {
        guard futureShare >= 0, futureShare < 1 else {
            throw RecEngineError(.invalidArgument, "--future-share must be from 0 to below 1, got \(futureShare)")
        }
        guard lastN >= 0 else { throw RecEngineError(.invalidArgument, "--last-n must be 0 or more, got \(lastN)") }
        let order = times.indices.sorted { times[$0] < times[$1] || (times[$0] == times[$1] && $0 < $1) }
        let futureCount = Int((futureShare * Double(order.count)).rounded(.up))
        let future = Array(order.suffix(futureCount))
        let rest = Array(order.prefix(order.count - futureCount))
        var train: [Int] = []
        var test: [Int] = []
        if lastN > 0 {
            var byUser: [Int32: [Int]] = [:]
            for row in rest { byUser[users[row], default: []].append(row) }
            for rows in byUser.values {
                let held = min(lastN, rows.count - 1)
                train += rows.prefix(rows.count - held)
                test += rows.suffix(held)
            }
            train.sort { times[$0] < times[$1] || (times[$0] == times[$1] && $0 < $1) }
            test.sort { times[$0] < times[$1] || (times[$0] == times[$1] && $0 < $1) }
        } else {
            guard testSize > 0, testSize < 1 else {
                throw RecEngineError(
                    .invalidArgument, "--test-size must be between 0 and 1 (exclusive), got \(testSize)")
            }
            let testCount = Int((testSize * Double(rest.count)).rounded(.up))
            train = Array(rest.prefix(rest.count - testCount))
            test = Array(rest.suffix(testCount))
        }
        guard !train.isEmpty, !test.isEmpty else {
            throw RecEngineError(
                .invalidArgument,
                "a temporal split of \(times.count) ratings leaves an empty side (train \(train.count), test \(test.count))"
            )
        }
        return (train, test, future)
    }

    /// The time of a rating, in seconds: a Unix time (MovieLens `u.data`) or an ISO 8601 date and
    /// time as the movie log writes it (`2022-03-18T05:53:29`, fractions and a `Z` allowed), read
    /// as UTC. nil when it is neither.
    public static func time(of text: String) -> Double? {
        if let seconds = Double(text), seconds.isFinite { return seconds }
        let bytes = Array(text.utf8)
        func number(_ range: Range<Int>) -> Int? {
            guard range.upperBound <= bytes.count else { return nil }
            var value = 0
            for byte in bytes[range] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            return value
        }
        guard bytes.count >= 19, bytes[4] == 45, bytes[7] == 45, bytes[10] == 84 || bytes[10] == 32, bytes[13] == 58,
            bytes[16] == 58,
            let year = number(0..<4), let month = number(5..<7), let day = number(8..<10), let hour = number(11..<13),
            let minute = number(14..<16),
            let second = number(17..<19), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60,
            second < 61
        else { return nil }
        var fraction = 0.0
        if bytes.count > 19 && bytes[19] == 46 {
            var scale = 0.1
            for byte in bytes[20...] where byte >= 48 && byte <= 57 {
                fraction += Double(byte - 48) * scale
                scale /= 10
            }
        }
        // Days from the civil date (Howard Hinnant's algorithm), UTC.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        let days = era * 146_097 + dayOfEra - 719_468
        return Double(days * 86_400 + hour * 3600 + minute * 60 + second) + fraction
    }
}
