public import Prometheus
import RecEngine

/// The inference server's Prometheus series. Every series carries the server's colour so that
/// PromQL gates can compare the blue deployment with the green one.
public struct ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let color: String
    let modelVersion: String
    private let recommendationsServed: [Counter]
    private let personalisedAnswers: Counter
    private let popularAnswers: Counter
    private let interleavedAnswers: Counter
    private let usersRecommended: Counter
    private let conversions: [EngagementTracker.Event.Kind: [Counter]]
    private let events: [EngagementTracker.Outcome: Counter]

    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1),
    ]

    public init(
        color: String, modelVersion: String, modelDigest: String, registry: PrometheusCollectorRegistry = .init()
    ) {
        self.registry = registry
        self.color = color
        self.modelVersion = modelVersion
        let labels = [("color", color), ("model_version", modelVersion)]
        let servedDescriptor = MetricNameDescriptor(
            namespace: "recengine", metricName: "recommendations_served", unitName: "total",
            helpText: "Recommended items returned to clients, by user bucket.")
        recommendationsServed = (0..<Self.userBuckets).map {
            registry.makeCounter(descriptor: servedDescriptor, labels: labels + [("user_bucket", String($0))])
        }
        let answers = MetricNameDescriptor(
            namespace: "recengine", metricName: "recommendation_answers", unitName: "total",
            helpText: "Recommendation answers, personalised or popular-items fallback for unknown users.")
        personalisedAnswers = registry.makeCounter(descriptor: answers, labels: labels + [("kind", "personalised")])
        popularAnswers = registry.makeCounter(descriptor: answers, labels: labels + [("kind", "popular")])
        interleavedAnswers = registry.makeCounter(descriptor: answers, labels: labels + [("kind", "interleaved")])
        usersRecommended = registry.makeCounter(
            descriptor: .init(
                namespace: "recengine", metricName: "users_recommended", unitName: "total",
                helpText: "Users given recommendations with none still open from the engagement window."),
            labels: labels)
        let conversionDescriptor = MetricNameDescriptor(
            namespace: "recengine", metricName: "conversions", unitName: "total",
            helpText: "Recommended movies the user then watched, or rated 4 or more, within the engagement window.")
        conversions = Dictionary(
            uniqueKeysWithValues: [EngagementTracker.Event.Kind.watch, .rate].map { kind in
                (
                    kind,
                    (0..<Self.userBuckets).map {
                        registry.makeCounter(
                            descriptor: conversionDescriptor,
                            labels: labels + [("kind", kind.rawValue), ("user_bucket", String($0))])
                    }
                )
            })
        let eventDescriptor = MetricNameDescriptor(
            namespace: "recengine", metricName: "events", unitName: "total",
            helpText: "User events received, by what they did.")
        events = Dictionary(
            uniqueKeysWithValues: EngagementTracker.Outcome.allCases.map {
                ($0, registry.makeCounter(descriptor: eventDescriptor, labels: labels + [("outcome", $0.rawValue)]))
            })
        registry.makeGauge(
            descriptor: .init(
                namespace: "recengine", metricName: "model", unitName: "info",
                helpText: "The model this server answers with (always 1)."),
            labels: labels + [("model_digest", modelDigest)]
        ).set(to: 1.0)
    }

    func recordRequest(route: String, status: Int, duration: Duration) {
        registry.makeCounter(
            descriptor: .init(
                namespace: "recengine", subsystem: "http", metricName: "requests", unitName: "total",
                helpText: "HTTP requests by route and status."),
            labels: [("route", route), ("status", String(status)), ("color", color)]
        ).increment()
        registry.makeDurationHistogram(
            descriptor: .init(
                namespace: "recengine", subsystem: "http", metricName: "request_duration", unitName: "seconds",
                helpText: "HTTP request latency by route."),
            labels: [("route", route), ("color", color)],
            buckets: Self.latencyBuckets
        ).record(duration)
    }

    /// Users fall into this many buckets by a hash of their id, so that the judge can measure
    /// how much engagement varies between groups of users (users, not recommendations, are the
    /// independent units of a sticky split).
    static let userBuckets = 16

    /// A user's bucket: FNV-1a of the id, independent of the hash nginx splits traffic with.
    static func userBucket(_ user: String) -> Int {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in user.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return Int(hash % UInt64(userBuckets))
    }

    func recordRecommendations(_ recommendations: Recommendations, user: String, newUser: Bool) {
        recommendationsServed[Self.userBucket(user)].increment(by: Int64(recommendations.items.count))
        (recommendations.personalised ? personalisedAnswers : popularAnswers).increment()
        if newUser { usersRecommended.increment() }
    }

    /// A list nginx merged into an interleaved one: not served by this colour alone, so not
    /// counted in `recommendations_served`.
    func recordInterleavedAnswer() {
        interleavedAnswers.increment()
    }

    func recordEvent(_ event: EngagementTracker.Event, outcome: EngagementTracker.Outcome) {
        events[outcome]?.increment()
        if outcome == .conversion { conversions[event.kind]?[Self.userBucket(event.user)].increment() }
    }
}
