import RecEngine
import RecEngineContract
import Testing

@Suite struct SplitTests {
    @Test func holdoutIsReproducibleAndPartitionsTheRows() throws {
        let first = try Split.holdout(count: 1000, testSize: 0.2, seed: 42)
        let again = try Split.holdout(count: 1000, testSize: 0.2, seed: 42)
        let other = try Split.holdout(count: 1000, testSize: 0.2, seed: 43)
        #expect(first.test.count == 200)
        #expect(first.train.count == 800)
        #expect(first.test == again.test)
        #expect(first.test != other.test)
        #expect(Set(first.train + first.test) == Set(0..<1000))
    }

    @Test func holdoutRoundsTheTestSideUp() throws {
        #expect(try Split.holdout(count: 11, testSize: 0.25, seed: 1).test.count == 3)
    }

    @Test(arguments: [0.0, 1.0, -0.5, 1.5])
    func holdoutRejectsSizesOutsideTheUnitInterval(size: Double) {
        #expect(throws: RecEngineError.self) { try Split.holdout(count: 100, testSize: size, seed: 0) }
    }

    @Test func kFoldCoversEveryRowOnceAsTest() throws {
        let folds = try Split.kFold(count: 103, folds: 5, seed: 0)
        #expect(folds.map(\.test.count) == [21, 21, 21, 20, 20])
        let tested = folds.flatMap(\.test)
        #expect(tested.count == 103)
        #expect(Set(tested) == Set(0..<103))
        for fold in folds {
            #expect(Set(fold.train).isDisjoint(with: fold.test))
            #expect(fold.train.count + fold.test.count == 103)
        }
        #expect(try Split.kFold(count: 103, folds: 5, seed: 0).map(\.test) == folds.map(\.test))
    }

    @Test func kFoldRejectsTooFewFolds() {
        #expect(throws: RecEngineError.self) { try Split.kFold(count: 10, folds: 1, seed: 0) }
        #expect(throws: RecEngineError.self) { try Split.kFold(count: 3, folds: 4, seed: 0) }
    }

    @Test(arguments: [
        ("881250949", 881250949.0), ("2022-03-18T05:53:29", 1647582809.0), ("2022-03-18T05:53:29.250", 1647582809.25),
        ("1970-01-01T00:00:00", 0.0), ("2000-02-29 12:00:00", 951825600.0),
    ])
    func timesAreReadFromUnixSecondsAndISO8601(text: String, seconds: Double) {
        #expect(Split.time(of: text) == seconds)
    }

    @Test(arguments: ["", "yesterday", "2022-13-01T00:00:00", "2022-03-18"])
    func timesThatAreNeitherAreRefused(text: String) {
        #expect(Split.time(of: text) == nil)
    }

    @Test func aTemporalSplitReservesTheNewestAndTestsOnEachUsersLast() throws {
        // 4 users, 10 ratings each, at times user*1 + rating*10 (interleaved).
        var times: [Double] = []
        var users: [Int32] = []
        for rating in 0..<10 {
            for user in 0..<4 {
                times.append(Double(rating * 10 + user))
                users.append(Int32(user))
            }
        }
        let split = try Split.temporal(times: times, users: users, testSize: 0.2, lastN: 2, futureShare: 0.25)
        #expect(split.future.count == 10)
        let newest = split.future.map { times[$0] }.min() ?? 0
        #expect(
            (split.train + split.test).allSatisfy { times[$0] < newest },
            "nothing trained or tested is newer than the future")
        #expect(split.test.count == 8, "2 per user")
        for user in Int32(0)..<4 {
            let trainTimes = split.train.filter { users[$0] == user }.map { times[$0] }
            let testTimes = split.test.filter { users[$0] == user }.map { times[$0] }
            #expect(trainTimes.max() ?? 0 < testTimes.min() ?? 0, "each user's test ratings are their latest")
        }
        #expect(Set(split.train + split.test + split.future) == Set(0..<40))
        let global = try Split.temporal(times: times, users: users, testSize: 0.2, lastN: 0, futureShare: 0)
        #expect(global.test.count == 8 && global.future.isEmpty)
        #expect(global.train.map { times[$0] }.max() ?? 0 < global.test.map { times[$0] }.min() ?? 0, "a global cutoff")
    }
}
