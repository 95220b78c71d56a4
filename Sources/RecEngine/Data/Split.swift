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
            throw RecEngineError(.invalidArgument, "--folds must be from 2 to the number of ratings (\(count)), got \(folds)")
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

    private static func shuffled(count: Int, seed: UInt64) -> [Int] {
        var rows = Array(0..<count)
        var generator = SeededGenerator(seed: seed)
        generator.shuffle(&rows)
        return rows
    }
}
