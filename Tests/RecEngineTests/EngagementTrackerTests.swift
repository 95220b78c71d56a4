import RecEngine
import Testing

@testable import RecEngineServer

@Suite struct EngagementTrackerTests {
    @Test func aRecommendedMovieWatchedOrRatedHighConvertsOnce() {
        let tracker = EngagementTracker()
        let start = ContinuousClock.now
        #expect(tracker.recommended(["a", "b", "c"], to: "u1", at: start))
        #expect(!tracker.recommended(["d"], to: "u1", at: start + .seconds(1)), "u1 already has open recommendations")
        #expect(tracker.record(.init(user: "u1", movie: "a", kind: .watch), at: start + .seconds(2)) == .conversion)
        #expect(
            tracker.record(.init(user: "u1", movie: "a", kind: .watch), at: start + .seconds(3)) == .noMatch,
            "once per pair")
        #expect(
            tracker.record(.init(user: "u1", movie: "b", kind: .rate, rating: 3), at: start + .seconds(3)) == .lowRating
        )
        #expect(
            tracker.record(.init(user: "u1", movie: "b", kind: .rate, rating: 5), at: start + .seconds(4))
                == .conversion)
        #expect(
            tracker.record(.init(user: "u2", movie: "c", kind: .watch), at: start + .seconds(4)) == .noMatch,
            "another user")
        #expect(
            tracker.record(.init(user: "u1", movie: "z", kind: .watch), at: start + .seconds(4)) == .noMatch,
            "not recommended")
    }

    @Test func recommendationsExpireAfterTheWindow() {
        let tracker = EngagementTracker(limits: .init(window: .seconds(10)))
        let start = ContinuousClock.now
        tracker.recommended(["a"], to: "u1", at: start)
        #expect(tracker.record(.init(user: "u1", movie: "a", kind: .watch), at: start + .seconds(11)) == .noMatch)
        #expect(
            tracker.recommended(["b"], to: "u1", at: start + .seconds(12)), "nothing open any more: a new user again")
    }

    @Test func memoryStaysWithinTheBounds() {
        let tracker = EngagementTracker(limits: .init(window: .seconds(600), maximumUsers: 100, maximumItemsPerUser: 5))
        let start = ContinuousClock.now
        for user in 0..<1000 {
            tracker.recommended((0..<20).map { "m\($0)" }, to: "u\(user)", at: start + .milliseconds(user))
        }
        #expect(tracker.rememberedUsers <= 100)
        // The most recent user is remembered, with only their last 5 movies.
        #expect(tracker.record(.init(user: "u999", movie: "m19", kind: .watch), at: start + .seconds(1)) == .conversion)
        #expect(tracker.record(.init(user: "u999", movie: "m0", kind: .watch), at: start + .seconds(1)) == .noMatch)
        #expect(
            tracker.record(.init(user: "u0", movie: "m19", kind: .watch), at: start + .seconds(1)) == .noMatch,
            "the oldest user was forgotten")
    }
}
