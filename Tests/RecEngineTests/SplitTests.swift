import RecEngine
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
}
