public import Foundation
import RecEngineContract

/// Replays users from held-out ratings against the load balancer: asks for recommendations and,
/// for every recommended movie the user really rated 4 or more in the held-out data, sends a rate
/// event for that user (`POST /events/{user}`, which nginx routes to the colour that served the
/// user). A model that recommends what users like therefore earns a higher engagement rate.
public struct TrafficSimulator: Sendable {
    public struct Configuration: Sendable {
        /// The load balancer, e.g. http://127.0.0.1:8080.
        public var baseURL: String
        /// Recommendation requests per second.
        public var rate: Double
        /// How long to run; nil: until stopped.
        public var duration: Duration?
        public var count: Int
        public var seed: UInt64
        /// Keep each user's counts (`Report.users`), for an analysis by user (Benchmarks/sensitivity).
        public var recordUsers: Bool

        public init(
            baseURL: String, rate: Double = 20, duration: Duration? = nil, count: Int = 20, seed: UInt64 = 1,
            recordUsers: Bool = false
        ) {
            self.baseURL = baseURL
            self.rate = rate
            self.duration = duration
            self.count = count
            self.seed = seed
            self.recordUsers = recordUsers
        }
    }

    /// Counts per colour (from the answers' `color`).
    public struct ColorCounts: Sendable, Codable, Equatable {
        public var requests = 0
        public var recommended = 0
        /// Recommended movies the user rated 4+ in the held-out data: the events sent.
        public var events = 0
        /// Events the colour counted as conversions.
        public var conversions = 0
    }

    /// One user's counts: per colour that answered alone, and, for interleaved answers (colour
    /// `interleaved`, with the team of each movie), the movies the user acted on per team.
    public struct UserCounts: Sendable, Codable, Equatable {
        public var colors: [String: ColorCounts] = [:]
        /// Per colour, the events on movies its team placed in an interleaved list (none for a
        /// movie placed for neither team).
        public var credits: [String: Int] = [:]
    }

    public struct Report: Sendable, Codable, Equatable {
        public var requests = 0
        public var errors = 0
        public var seconds = 0.0
        public var colors: [String: ColorCounts] = [:]
        /// Per user, with `recordUsers` (nil without).
        public var users: [String: UserCounts]?
    }

    public typealias Transport = @Sendable (_ url: String, _ body: Data?) async throws -> (status: Int, body: Data)

    let configuration: Configuration
    let users: [String]
    /// Per user, the movies rated 4 or more in the held-out data, with their rating.
    let liked: [String: [String: Int]]

    public init(heldOut: Ratings, configuration: Configuration) {
        self.configuration = configuration
        var liked: [String: [String: Int]] = [:]
        for row in 0..<heldOut.count where heldOut.values[row] >= 4 {
            liked[heldOut.userIDs[Int(heldOut.users[row])], default: [:]][heldOut.itemIDs[Int(heldOut.items[row])]] =
                Int(heldOut.values[row])
        }
        self.liked = liked
        users = heldOut.userIDs
    }

    /// Runs until the duration passes or `shouldStop` says so; `transport` makes the HTTP calls
    /// (GET when the body is nil, else POST).
    public func run(transport: Transport, shouldStop: @Sendable () -> Bool = { false }) async -> Report {
        var report = Report()
        if configuration.recordUsers { report.users = [:] }
        guard !users.isEmpty, configuration.rate > 0 else { return report }
        var generator = SeededGenerator(seed: configuration.seed)
        let clock = ContinuousClock()
        let start = clock.now
        let interval = Duration.seconds(1 / configuration.rate)
        var next = start
        while !shouldStop() && !Task.isCancelled {
            if let duration = configuration.duration, clock.now - start >= duration { break }
            let user = users[generator.nextIndex(below: users.count)]
            report.requests += 1
            do {
                let answer = try await transport(
                    "\(configuration.baseURL)/recommend/\(user)?k=\(configuration.count)", nil)
                guard answer.status == 200,
                    let body = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any],
                    let items = body["items"] as? [String], let color = body["color"] as? String
                else {
                    report.errors += 1
                    continue
                }
                var counts = report.colors[color] ?? ColorCounts()
                counts.requests += 1
                counts.recommended += items.count
                let hits = items.compactMap { item in liked[user]?[item].map { (item, $0) } }
                if !hits.isEmpty {
                    let events = hits.map { ["movie": $0.0, "kind": "rate", "rating": $0.1] as [String: Any] }
                    let payload = try JSONSerialization.data(withJSONObject: ["events": events])
                    let sent = try await transport("\(configuration.baseURL)/events/\(user)", payload)
                    if sent.status == 200,
                        let result = try JSONSerialization.jsonObject(with: sent.body) as? [String: Int]
                    {
                        counts.events += hits.count
                        counts.conversions += result["conversions"] ?? 0
                    } else {
                        report.errors += 1
                    }
                }
                report.colors[color] = counts
                if report.users != nil {
                    var userCounts = report.users?[user] ?? UserCounts()
                    var own = userCounts.colors[color] ?? ColorCounts()
                    own.requests += 1
                    own.recommended += items.count
                    own.events += hits.count
                    userCounts.colors[color] = own
                    // An interleaved list names the colour whose team placed each movie
                    // (`neutral`: both teams proposed it, which credits neither).
                    if let teams = (body["interleaving"] as? [String: Any])?["teams"] as? [String],
                        teams.count == items.count
                    {
                        for (index, item) in items.enumerated()
                        where liked[user]?[item] != nil && teams[index] != "neutral" {
                            userCounts.credits[teams[index], default: 0] += 1
                        }
                    }
                    report.users?[user] = userCounts
                }
            } catch {
                report.errors += 1
            }
            next += interval
            if next > clock.now {
                try? await Task.sleep(until: next, clock: clock)
            } else {
                next = clock.now
            }
        }
        report.seconds = (clock.now - start).seconds
        return report
    }
}
