import RecEngine
import RecEngineContract
import Testing

/// RecEngine's ranking metrics against Microsoft Recommenders' `python_evaluation`, on the lists of
/// Benchmarks/quality.d/metrics_fixture.py, whose numbers the `recommenders` package (1.2.1)
/// computed once: they are committed here, so the test needs no Python.
@Suite struct RankingFixtureTests {
    // k = 3. Items are numbered as in the fixture; the model knows them all.
    static let lists: [[Int32]] = [[10, 99, 12], [21, 22, 20], [33, 34, 35], [59, 50, 51]]  // users 1, 2, 3, 5
    static let relevant: [[Int32]] = [[10, 11, 12, 13], [20], [30, 31], [50, 51, 52]]
    /// User 4 has test ratings and no list; user 6 has a list and no test rating (left out, as
    /// RecEngine never lists a user without held-out items).
    static let unlistedUsers = 1
    static let popularity = [Double](repeating: 0, count: 100)

    static let recommenders = (
        precision: 0.41666666666666663, recall: 0.5416666666666666, ndcg: 0.3469278726022756, map: 0.2847222222222222,
        mapAtK: 0.3194444444444444
    )

    @Test func microsoftDefinitionsEqualTheRecommendersPackage() {
        let metrics = RankingEvaluation.metrics(
            lists: Self.lists, relevant: Self.relevant, relevantCounts: Self.relevant.map(\.count),
            popularity: Self.popularity, k: 3,
            definitions: .microsoftRecommenders, unlistedUsers: Self.unlistedUsers)
        #expect(abs(metrics.precision - Self.recommenders.precision) < 1e-12)
        #expect(abs(metrics.recall - Self.recommenders.recall) < 1e-12)
        #expect(abs(metrics.ndcg - Self.recommenders.ndcg) < 1e-12, "NDCG's mean counts user 4 as 0")
        #expect(abs(metrics.map - Self.recommenders.map) < 1e-12, "MAP over every relevant item")
    }

    /// RecEngine's own definitions leave the unknown user out of NDCG and divide MAP by
    /// `min(k, relevant)`: that is the package's `map_at_k`.
    @Test func recengineDefinitionsDifferWhereDocumented() {
        let metrics = RankingEvaluation.metrics(
            lists: Self.lists, relevant: Self.relevant, relevantCounts: Self.relevant.map(\.count),
            popularity: Self.popularity, k: 3,
            unlistedUsers: Self.unlistedUsers)
        #expect(abs(metrics.map - Self.recommenders.mapAtK) < 1e-12)
        #expect(abs(metrics.ndcg - Self.recommenders.ndcg * 5 / 4) < 1e-12, "a mean over the 4 users with a list")
        #expect(abs(metrics.precision - Self.recommenders.precision) < 1e-12)
        #expect(abs(metrics.recall - Self.recommenders.recall) < 1e-12)
    }

    /// A known test user whose list is empty (every item seen in training) has no rows in a
    /// prediction frame: Microsoft's precision, recall and MAP leave them out, NDCG counts a 0.
    @Test func aUserWithAnEmptyListCountsOnlyInNDCG() {
        let withEmpty = RankingEvaluation.metrics(
            lists: Self.lists + [[]], relevant: Self.relevant + [[7]], relevantCounts: Self.relevant.map(\.count) + [1],
            popularity: Self.popularity, k: 3, definitions: .microsoftRecommenders, unlistedUsers: 0)
        #expect(abs(withEmpty.precision - Self.recommenders.precision) < 1e-12)
        #expect(abs(withEmpty.ndcg - Self.recommenders.ndcg) < 1e-12)
    }
}
