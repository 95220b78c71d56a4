public import Prometheus

/// The inference server's Prometheus series. Every series carries the server's colour so that
/// PromQL gates can compare the blue deployment with the green one.
public struct ServerMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let color: String
    let modelVersion: String
    private let recommendationsServed: Counter
    private let personalisedAnswers: Counter
    private let popularAnswers: Counter

    static let latencyBuckets: [Duration] = [
        .microseconds(250), .microseconds(500), .milliseconds(1), .microseconds(2500), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
        .milliseconds(500), .seconds(1),
    ]

    public init(color: String, modelVersion: String, modelDigest: String, registry: PrometheusCollectorRegistry = .init()) {
        self.registry = registry
        self.color = color
        self.modelVersion = modelVersion
        let labels = [("color", color), ("model_version", modelVersion)]
        recommendationsServed = registry.makeCounter(
            descriptor: .init(
                namespace: "recengine", metricName: "recommendations_served", unitName: "total",
                helpText: "Recommended items returned to clients."),
            labels: labels)
        let answers = MetricNameDescriptor(
            namespace: "recengine", metricName: "recommendation_answers", unitName: "total",
            helpText: "Recommendation answers, personalised or popular-items fallback for unknown users.")
        personalisedAnswers = registry.makeCounter(descriptor: answers, labels: labels + [("kind", "personalised")])
        popularAnswers = registry.makeCounter(descriptor: answers, labels: labels + [("kind", "popular")])
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

    func recordRecommendations(_ recommendations: Recommendations) {
        recommendationsServed.increment(by: Int64(recommendations.items.count))
        (recommendations.personalised ? personalisedAnswers : popularAnswers).increment()
    }
}
