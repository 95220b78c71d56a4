import Foundation
import Testing

@testable import Traffic

/// The shadow line of a split and nginx's shadow counts, as text.
@Suite struct ShadowSplitTests {
    static func split(shadow: TrafficSplit.Shadow?, green: Int = 0) -> TrafficSplit {
        TrafficSplit(
            mode: .sticky,
            backends: [
                .init(color: "blue", address: "127.0.0.1:9001", weight: 100 - green),
                .init(color: "green", address: "127.0.0.1:9002", weight: green),
            ], shadow: shadow)
    }

    @Test func aShadowSplitHasItsOwnLineAndReadsBack() throws {
        let state = TrafficState(
            generation: 4, split: Self.split(shadow: .init(color: "green", percent: 10, experiment: "rel-2-shadow")))
        let text = try state.text()
        #expect(text.hasSuffix("backend green 127.0.0.1:9002 0\nshadow green 10 rel-2-shadow\n"))
        #expect(try TrafficState(parsing: text) == state)
    }

    @Test(arguments: [
        (split(shadow: .init(color: "green", percent: 10, experiment: "e"), green: 25), "at weight 0"),
        (split(shadow: .init(color: "red", percent: 10, experiment: "e")), "must be a backend of the split"),
        (split(shadow: .init(color: "green", percent: 0, experiment: "e")), "outside 1...100"),
        (split(shadow: .init(color: "green", percent: 10, experiment: "a b")), "letters, digits"),
        (
            TrafficSplit(
                mode: .sticky,
                backends: [
                    .init(color: "blue", address: "127.0.0.1:9001", weight: 100),
                    .init(color: "green", address: "127.0.0.1:9002", weight: 0),
                ], interleave: .init(percent: 10, window: 60, seed: "s", experiment: "e"),
                shadow: .init(color: "green", percent: 10, experiment: "e")), "shadows or interleaves"
        ),
    ])
    func aShadowNginxWouldRefuseIsRefusedFirst(split: TrafficSplit, message: String) {
        let error = #expect(throws: TrafficError.self) { try split.validate() }
        #expect(error?.message.contains(message) == true, "\(String(describing: error))")
    }

    @Test func nginxsCountsAreRead() throws {
        let text = """
            experiment rel-2-shadow
            colour green
            sampled 12
            compared 10
            errors 1
            timeouts 1
            dropped 0
            live_errors 1
            full 0
            rbo_sum 7.250000
            overlap_sum 6.500000
            rbo 0 2
            rbo 9 8
            latency live 25 10
            latency new 30 10
            items live 200 40 60
            items new 200 120 25
            sample u7 0.1234 0.2000 3.0 12.5 m1,m2,m%2C3 m9,m8

            """
        let counts = try #require(try ShadowCounts(parsing: text))
        #expect(counts.color == "green" && counts.sampled == 12 && counts.compared == 10 && counts.errors == 1)
        #expect(counts.rboSum == 7.25 && counts.overlapSum == 6.5)
        #expect(counts.rboHistogram == [2, 0, 0, 0, 0, 0, 0, 0, 0, 8])
        #expect(counts.liveLatency == [25: 10] && counts.newLatency == [30: 10])
        #expect(counts.newItems == .init(total: 200, distinct: 120, top10: 25))
        #expect(
            counts.samples == [
                .init(
                    user: "u7", rbo: 0.1234, overlap: 0.2, liveMilliseconds: 3, newMilliseconds: 12.5,
                    live: ["m1", "m2", "m,3"], new: ["m9", "m8"])
            ])
    }

    @Test func noExperimentIsNoCounts() throws {
        #expect(try ShadowCounts(parsing: "experiment none\n") == nil)
    }

    @Test(arguments: ["compared many", "rbo 12 3", "latency blue 3 4", "colour", "sample u1 x 0 0 0 a b"])
    func aLineThatIsNotUnderstoodIsAnError(line: String) {
        #expect(throws: TrafficError.self) {
            try ShadowCounts(parsing: "experiment e\ncolour green\n\(line)\n")
        }
    }
}
