import Foundation
import RecEngine
import Synchronization
import Testing

/// The simulator's counts per user (`recordUsers`), which Benchmarks/sensitivity resamples:
/// against an in-memory load balancer whose answers are known.
@Suite struct TrafficSimulatorTests {
    /// One user who liked x (5) and y (4), not z (2): the balancer answers a list from `blue`
    /// alone, then an interleaved one whose teams placed x for green and y for blue, then one where
    /// both teams proposed y first (placed for neither team) and blue placed x.
    static func heldOut() -> Ratings {
        var ratings = Ratings()
        ratings.append(user: "A", item: "x", rating: 5)
        ratings.append(user: "A", item: "y", rating: 4)
        ratings.append(user: "A", item: "z", rating: 2)
        return ratings
    }

    static let answers: [String] = [
        #"{"color":"blue","items":["x","z"]}"#,
        #"{"color":"interleaved","interleaving":{"seed":"A:1","teams":["green","blue","green"]},"#
            + #""items":["x","y","z"]}"#,
        #"{"color":"interleaved","interleaving":{"seed":"A:2","teams":["neutral","blue"]},"items":["y","x"]}"#,
    ]

    func run(recordUsers: Bool) async -> TrafficSimulator.Report {
        let simulator = TrafficSimulator(
            heldOut: Self.heldOut(),
            configuration: .init(
                baseURL: "http://balancer", rate: 1000, count: 3, seed: 1, recordUsers: recordUsers))
        let asked = Atomic<Int>(0)
        return await simulator.run(
            transport: { _, body in
                if body != nil { return (200, Data(#"{"conversions":1}"#.utf8)) }
                let index = asked.add(1, ordering: .relaxed).oldValue
                return (200, Data(Self.answers[min(index, Self.answers.count - 1)].utf8))
            },
            shouldStop: { asked.load(ordering: .relaxed) >= Self.answers.count })
    }

    @Test func countsEachUserPerColourAndCreditsInterleavedTeams() async throws {
        let report = await run(recordUsers: true)
        #expect(report.requests == 3)
        let user = try #require(report.users?["A"])
        // blue alone: 2 recommended, x liked.
        #expect(user.colors["blue"]?.requests == 1)
        #expect(user.colors["blue"]?.recommended == 2)
        #expect(user.colors["blue"]?.events == 1)
        // interleaved: 3 recommended, x (green's pick) and y (blue's) liked, z not; then 2, y (of
        // neither team: events, no credit) and x (blue's).
        #expect(user.colors["interleaved"]?.recommended == 5)
        #expect(user.colors["interleaved"]?.events == 4)
        #expect(user.credits == ["green": 1, "blue": 2])
    }

    @Test func keepsNoUsersUnlessAsked() async {
        let report = await run(recordUsers: false)
        #expect(report.requests == 3)
        #expect(report.users == nil)
        let encoded = String(decoding: (try? JSONEncoder().encode(report)) ?? Data(), as: UTF8.self)
        #expect(!encoded.contains("\"users\""))
    }
}
