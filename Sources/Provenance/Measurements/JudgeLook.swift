public import Foundation

/// What the judge saw of one metric at one look, and what it decided: the counts of each colour,
/// the statistic, its always-valid interval, the margin, the classification and the rule.
public struct MetricJudgement: Sendable, Codable, Equatable {
    public enum Classification: String, Sendable, Codable, Equatable {
        /// Not worse than the margin, at the confidence level.
        case pass = "Pass"
        /// Higher than the live colour by more than the margin (a regression when `bad: increase`).
        case high = "High"
        /// Lower than the live colour by more than the margin (a regression when `bad: decrease`).
        case low = "Low"
        /// Not enough data (fewer than `minTrials` for a colour, or no series).
        case noData = "NoData"
        /// The interval still straddles the margin.
        case undecided = "Undecided"
    }

    /// One comparison: the whole metric (a proportion), or one quantile of a histogram.
    public struct Comparison: Sendable, Codable, Equatable {
        /// nil for a proportion; the quantile for a histogram.
        public var quantile: Double?
        /// For a histogram: the live colour's bucket boundary at that quantile (seconds).
        public var threshold: Double?
        public var newSuccesses: Double
        public var newTrials: Double
        public var liveSuccesses: Double
        public var liveTrials: Double
        /// new − live of the adjusted rates, and its always-valid interval.
        public var difference: Double
        public var lower: Double
        public var upper: Double
        /// The regression that matters, in the rate's unit.
        public var margin: Double
        public var classification: Classification

        enum CodingKeys: String, CodingKey {
            case quantile, threshold, difference, lower, upper, margin, classification
            case newSuccesses = "new_successes"
            case newTrials = "new_trials"
            case liveSuccesses = "live_successes"
            case liveTrials = "live_trials"
        }

        package init(quantile: Double? = nil, threshold: Double? = nil, newSuccesses: Double, newTrials: Double, liveSuccesses: Double, liveTrials: Double, difference: Double, lower: Double, upper: Double, margin: Double, classification: Classification) {
            self.quantile = quantile
            self.threshold = threshold
            self.newSuccesses = newSuccesses
            self.newTrials = newTrials
            self.liveSuccesses = liveSuccesses
            self.liveTrials = liveTrials
            self.difference = difference
            self.lower = lower
            self.upper = upper
            self.margin = margin
            self.classification = classification
        }
    }

    public var metric: String
    public var classification: Classification
    public var comparisons: [Comparison]
    /// Why, in words.
    public var rule: String
    public var critical: Bool
    public var weight: Double
    /// Set when a query failed.
    public var error: String?

    package init(metric: String, classification: Classification, comparisons: [Comparison], rule: String, critical: Bool, weight: Double, error: String? = nil) {
        self.metric = metric
        self.classification = classification
        self.comparisons = comparisons
        self.rule = rule
        self.critical = critical
        self.weight = weight
        self.error = error
    }
}

/// One look of the judge at a step.
public struct JudgeLook: Sendable, Codable, Equatable {
    public enum Decision: String, Sendable, Codable, Equatable {
        case pass, fail, inconclusive, undecided
    }

    public var at: Date
    /// Seconds since the step started.
    public var elapsed: Double
    public var metrics: [MetricJudgement]
    /// 100 × passed weight / counted weight, once every metric is decided (or at the deadline).
    public var score: Double?
    public var decision: Decision
    /// The rule that decided, in words.
    public var rule: String

    package init(at: Date, elapsed: Double, metrics: [MetricJudgement], score: Double? = nil, decision: Decision, rule: String) {
        self.at = at
        self.elapsed = elapsed
        self.metrics = metrics
        self.score = score
        self.decision = decision
        self.rule = rule
    }
}
