public import Foundation
import PipelineSchema

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
        /// For a histogram with a floor: the bound above which the new colour's answers were
        /// counted (live's threshold plus the floor, rounded up to a bucket bound); nil without one.
        public var newThreshold: Double? = nil
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

        package init(
            quantile: Double? = nil, threshold: Double? = nil, newThreshold: Double? = nil, newSuccesses: Double,
            newTrials: Double,
            liveSuccesses: Double, liveTrials: Double, difference: Double, lower: Double, upper: Double, margin: Double,
            classification: Classification
        ) {
            self.quantile = quantile
            self.threshold = threshold
            self.newThreshold = newThreshold
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

        enum CodingKeys: String, CodingKey {
            case quantile, threshold, difference, lower, upper, margin, classification
            case newThreshold = "new_threshold"
            case newSuccesses = "new_successes"
            case newTrials = "new_trials"
            case liveSuccesses = "live_successes"
            case liveTrials = "live_trials"
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
    /// What CUPED did (a grouped metric with `cuped`, once it had a covariate).
    public var cuped: CovariateAdjustment? = nil

    package init(
        metric: String, classification: Classification, comparisons: [Comparison], rule: String, critical: Bool,
        weight: Double,
        error: String? = nil, cuped: CovariateAdjustment? = nil
    ) {
        self.metric = metric
        self.classification = classification
        self.comparisons = comparisons
        self.rule = rule
        self.critical = critical
        self.weight = weight
        self.error = error
        self.cuped = cuped
    }
}

/// One look of the judge at a step.
public struct JudgeLook: Sendable, Codable, Equatable {
    public enum Decision: String, Sendable, Codable, Equatable {
        case pass, fail, inconclusive, undecided
        /// The split did not send each colour its share (sample ratio mismatch): the comparison
        /// is biased, so the step ends without a verdict on the model.
        case invalid = "invalid experiment"
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
    /// The sample ratio check of each count at this look (nil without `sampleRatio`).
    public var sampleRatio: [SampleRatioCheck]? = nil

    package init(
        at: Date, elapsed: Double, metrics: [MetricJudgement], score: Double? = nil, decision: Decision, rule: String,
        sampleRatio: [SampleRatioCheck]? = nil
    ) {
        self.at = at
        self.elapsed = elapsed
        self.metrics = metrics
        self.score = score
        self.decision = decision
        self.rule = rule
        self.sampleRatio = sampleRatio
    }

    enum CodingKeys: String, CodingKey {
        case at, elapsed, metrics, score, decision, rule
        case sampleRatio = "sample_ratio"
    }
}

/// What CUPED did to one grouped metric at one look (Deng, Xu, Kohavi, Walker, "Improving the
/// sensitivity of online controlled experiments by utilizing pre-experiment data", WSDM 2013).
public struct CovariateAdjustment: Sendable, Codable, Equatable {
    /// The window before the step whose engagement (on the live colour) is the covariate.
    public var window: String
    /// The regression coefficient of the step's rate on the covariate, pooled over both colours.
    public var theta: Double
    /// What the adjustment moved each colour's rate by (−θ (X̄ colour − X̄ both)).
    public var newShift: Double
    public var liveShift: Double
    /// 1 − the variance of the difference with the covariate / without it, as the interval uses
    /// them (never below independent trials'): 0.4 is 40 % less variance.
    public var varianceReduction: Double

    package init(window: String, theta: Double, newShift: Double, liveShift: Double, varianceReduction: Double) {
        self.window = window
        self.theta = theta
        self.newShift = newShift
        self.liveShift = liveShift
        self.varianceReduction = varianceReduction
    }

    enum CodingKeys: String, CodingKey {
        case window, theta
        case newShift = "new_shift"
        case liveShift = "live_shift"
        case varianceReduction = "variance_reduction"
    }
}

/// One look's sample ratio check of one count (users or requests): the share of it the new
/// colour got since the step started against the share the step gives it.
public struct SampleRatioCheck: Sendable, Codable, Equatable {
    /// `users` or `requests`.
    public var count: String
    /// The new colour's intended share (the step's weight) and its observed share, from 0 to 1.
    public var expectedShare: Double
    public var observedShare: Double
    /// What each colour counted since the step started.
    public var new: Double
    public var live: Double
    /// The groups of units the variance was measured between (nil: each count independent).
    public var groups: Int?
    /// The statistic and its p-value: chi-squared with one degree of freedom, or, measured between
    /// `groups` groups, z² with F(1, groups − 1) as its reference.
    public var statistic: Double
    public var pValue: Double
    /// Below the judge's `sampleRatio.pValue`: the split does not send what it should.
    public var mismatch: Bool

    package init(
        count: String, expectedShare: Double, observedShare: Double, new: Double, live: Double, groups: Int?,
        statistic: Double, pValue: Double,
        mismatch: Bool
    ) {
        self.count = count
        self.expectedShare = expectedShare
        self.observedShare = observedShare
        self.new = new
        self.live = live
        self.groups = groups
        self.statistic = statistic
        self.pValue = pValue
        self.mismatch = mismatch
    }

    enum CodingKeys: String, CodingKey {
        case count, new, live, groups, statistic, mismatch
        case expectedShare = "expected_share"
        case observedShare = "observed_share"
        case pValue = "p_value"
    }

    /// "users: new 40.0 % of 1000 (400 new, 600 live), expected 50.0 %: chi-squared 40.00, p 2.5e-10".
    public var summary: String {
        func percent(_ share: Double) -> String { String(format: "%.1f %%", share * 100) }
        let grouped = groups.map { ", variance between \($0) groups of users" } ?? ""
        let test = groups.map { "z² (F(1, \($0 - 1)))" } ?? "chi-squared"
        return
            "\(count): new \(percent(observedShare)) of \(formatNumber(new + live)) (\(formatNumber(new)) new, \(formatNumber(live)) live), "
            + "expected \(percent(expectedShare)): \(test) \(String(format: "%.2f", statistic))\(grouped), p \(String(format: "%.2g", pValue))"
    }
}
