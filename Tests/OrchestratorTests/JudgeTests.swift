import Foundation
import StrictYAML
import Testing

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// The judge's statistics against reference values (scipy 1.17: `norm.ppf`; the mSPRT interval
/// evaluated in Python from its definition), its rules, and its always-valid property.
@Suite struct JudgeTests {
    @Test(arguments: [
        (1e-10, -6.361340902404056), (0.001, -3.090232306167813), (0.01, -2.3263478740408408),
        (0.025, -1.9599639845400545),
        (0.05, -1.6448536269514729), (0.3, -0.5244005127080409), (0.5, 0.0), (0.9, 1.2815515655446004),
        (0.975, 1.959963984540054),
        (0.999, 3.090232306167813),
    ])
    func normalQuantileMatchesScipy(p: Double, expected: Double) {
        #expect(abs(Statistics.normalQuantile(p) - expected) < 1e-9)
        #expect(abs(Statistics.normalCDF(expected) - p) < 1e-12 + p * 1e-9)
    }

    @Test func theAlwaysValidIntervalMatchesItsDefinition() {
        // Python: h = sqrt(2V(V+t2)/t2 (log(1/a) + log((V+t2)/V)/2)); the mixture likelihood ratio at
        // a bound equals 1/alpha.
        let first = Statistics.alwaysValidInterval(estimate: 0.01, variance: 0.0004, mixture: 0.0001, alpha: 0.05)
        #expect(abs(first.lower - -0.10148639467147721) < 1e-12 && abs(first.upper - 0.1214863946714772) < 1e-12)
        let second = Statistics.alwaysValidInterval(estimate: -0.02, variance: 1e-6, mixture: 4e-6, alpha: 0.01)
        #expect(abs(second.lower - -0.023677597429778423) < 1e-12 && abs(second.upper - -0.016322402570221578) < 1e-12)
        let ratio = (0.0004 / 0.0005).squareRoot() * exp(0.0001 * pow(0.01 - first.upper, 2) / (2 * 0.0004 * 0.0005))
        #expect(abs(ratio - 20) < 1e-9)
    }

    /// The property that makes looking every few seconds safe: over 400 A/A experiments, each
    /// looked at 100 times, the interval excludes the true difference (0) in at most alpha of them
    /// (a fixed-sample z-test looked at this often would be wrong far more often).
    @Test func anAAExperimentLookedAtOften() {
        var generator = SystemRandomNumberGeneratorSeeded(seed: 7)
        var wrong = 0
        var naiveWrong = 0
        for _ in 0..<400 {
            var new = (0.0, 0.0)
            var live = (0.0, 0.0)
            var excluded = false
            var naive = false
            for _ in 0..<100 {
                for _ in 0..<50 {
                    new.1 += 1
                    if Double.random(in: 0..<1, using: &generator) < 0.1 { new.0 += 1 }
                    live.1 += 1
                    if Double.random(in: 0..<1, using: &generator) < 0.1 { live.0 += 1 }
                }
                let difference = Statistics.difference(
                    newSuccesses: new.0, newTrials: new.1, liveSuccesses: live.0, liveTrials: live.1,
                    mixture: 0.01 * 0.01, alpha: 0.05)
                if difference.lower > 0 || difference.upper < 0 { excluded = true }
                let standardError =
                    ((difference.new * (1 - difference.new) + difference.live * (1 - difference.live)) / new.1)
                    .squareRoot()
                if abs(difference.estimate) > 1.96 * standardError { naive = true }
            }
            if excluded { wrong += 1 }
            if naive { naiveWrong += 1 }
        }
        #expect(Double(wrong) / 400 <= 0.05, "always valid: \(wrong) of 400 A/A experiments ever rejected")
        #expect(Double(naiveWrong) / 400 > 0.2, "the naive repeated z-test rejects often: \(naiveWrong) of 400")
    }

    @Test func theVarianceBetweenGroupsOfUsers() {
        // numpy: g/(g-1) * sum((s - R t)^2) / T^2 for the groups below.
        let variance = Statistics.clusteredVariance([(3, 100), (5, 80), (0, 50), (10, 120)])
        #expect(abs((variance ?? 0) - 0.0002900302651672914) < 1e-15)
        #expect(Statistics.clusteredVariance([(3, 100)]) == nil, "one group has no variance to measure")
        // Users who differ a lot: the grouped interval is wider than the binomial one, so an A/A
        // difference that looks significant per recommendation is not.
        var engagement = Self.metric("engagement", bad: .decrease, effect: 0.1)
        engagement.units = "user_bucket"
        let rules = JudgeRules(spec: Self.spec([engagement]))
        let new: JudgeRules.Counts = .grouped(["0": (100, 1000), "1": (10, 1000), "2": (150, 1000), "3": (20, 1000)])
        let live: JudgeRules.Counts = .grouped(["0": (330, 3000), "1": (30, 3000), "2": (450, 3000), "3": (330, 3000)])
        let grouped = rules.judge(engagement, new: new, live: live).comparisons[0]
        let binomial = rules.judge(
            engagement, new: .proportion(successes: 280, trials: 4000),
            live: .proportion(successes: 1140, trials: 12000)
        ).comparisons[0]
        #expect(grouped.upper - grouped.lower > 2 * (binomial.upper - binomial.lower))
        #expect(binomial.upper < 0 && grouped.upper > 0)
    }

    static func metric(
        _ name: String, bad: JudgeSpec.Metric.Direction, effect: Double, absolute: Bool = false, critical: Bool = false
    ) -> JudgeSpec.Metric {
        JudgeSpec.Metric(
            name: name, kind: .proportion(successes: "s{{color}}", trials: "t{{color}}"), bad: bad, effect: effect,
            absolute: absolute, baseline: nil,
            critical: critical, weight: 1, onNoData: .fail, minTrials: 30)
    }

    static func spec(_ metrics: [JudgeSpec.Metric]) -> JudgeSpec {
        JudgeSpec(
            metrics: metrics, confidence: 0.95, interval: .seconds(2), maxWait: .seconds(60), onInconclusive: .fail,
            marginal: 50, pass: 75, expectedRate: nil)
    }

    @Test func proportionsAreClassifiedByDirectionAndMargin() {
        let engagement = Self.metric("engagement", bad: .decrease, effect: 0.1)
        let rules = JudgeRules(spec: Self.spec([engagement]))
        // 20 % less engagement on plenty of data: Low.
        #expect(
            rules.judge(
                engagement, new: .proportion(successes: 4000, trials: 100_000),
                live: .proportion(successes: 5000, trials: 100_000)
            ).classification == .low)
        // Equal on plenty of data: Pass (not worse than 10 %).
        #expect(
            rules.judge(
                engagement, new: .proportion(successes: 5000, trials: 100_000),
                live: .proportion(successes: 5000, trials: 100_000)
            ).classification == .pass)
        // Equal on little data: undecided.
        #expect(
            rules.judge(
                engagement, new: .proportion(successes: 5, trials: 100), live: .proportion(successes: 5, trials: 100)
            ).classification == .undecided)
        // Better is never a regression of a decrease-is-bad metric.
        #expect(
            rules.judge(
                engagement, new: .proportion(successes: 7000, trials: 100_000),
                live: .proportion(successes: 5000, trials: 100_000)
            ).classification == .pass)
        // Too few trials: NoData.
        #expect(
            rules.judge(
                engagement, new: .proportion(successes: 1, trials: 10), live: .proportion(successes: 1, trials: 10)
            ).classification == .noData)
        #expect(
            rules.judge(engagement, new: nil, live: .proportion(successes: 1, trials: 100)).classification == .noData)

        let errors = Self.metric("errors", bad: .increase, effect: 0.02, absolute: true)
        let errorRules = JudgeRules(spec: Self.spec([errors]))
        // +5 points of errors: High; none on either: Pass once there is enough data.
        #expect(
            errorRules.judge(
                errors, new: .proportion(successes: 300, trials: 5000), live: .proportion(successes: 50, trials: 5000)
            ).classification == .high)
        #expect(
            errorRules.judge(
                errors, new: .proportion(successes: 0, trials: 2000), live: .proportion(successes: 0, trials: 6000)
            ).classification == .pass)
    }

    @Test func aTailRegressionWithTheSameMedianIsHigh() {
        // Cumulative buckets (le in seconds): the same median, but a quarter of the new colour's
        // answers moved from under 25 ms to above 50 ms.
        let latency = JudgeSpec.Metric(
            name: "latency", kind: .histogram(buckets: "b{{color}}", quantiles: [0.5, 0.95]), bad: .increase, effect: 1,
            absolute: false, baseline: nil,
            critical: false, weight: 1, onNoData: .fail, minTrials: 30)
        let rules = JudgeRules(spec: Self.spec([latency]))
        let live: JudgeRules.Counts = .histogram([
            (0.005, 2000), (0.01, 6000), (0.025, 9600), (0.05, 9900), (0.1, 10000), (.infinity, 10000),
        ])
        let slowTail: JudgeRules.Counts = .histogram([
            (0.005, 2000), (0.01, 6000), (0.025, 7500), (0.05, 7600), (0.1, 10000), (.infinity, 10000),
        ])
        let judgement = rules.judge(latency, new: slowTail, live: live)
        #expect(judgement.classification == .high)
        let median = try? #require(judgement.comparisons.first { $0.quantile == 0.5 })
        #expect(median?.classification == .pass, "the median did not move")
        #expect(judgement.comparisons.first { $0.quantile == 0.95 }?.classification == .high)
        #expect(
            judgement.comparisons.first { $0.quantile == 0.95 }?.threshold == 0.025,
            "live's p95 falls in the 25 ms bucket")
        #expect(rules.judge(latency, new: live, live: live).classification == .pass)
    }

    /// The demo's EASE against SVD: live's p95 falls in the 1 ms bucket and 30 % of the new
    /// colour's answers take 1 to 2.5 ms. Without a floor that tail is High (the release was rolled
    /// back for it); with the default 5 ms floor the new colour is counted above 10 ms, where it has
    /// no answer: Pass. A tail that really is slower by more than the floor is still High.
    @Test func aSlowdownBelowTheFloorIsNoRegression() {
        func latency(floor: Double?) -> JudgeSpec.Metric {
            JudgeSpec.Metric(
                name: "latency", kind: .histogram(buckets: "b{{color}}", quantiles: [0.5, 0.95]), bad: .increase,
                effect: 1, absolute: false, baseline: nil,
                critical: false, weight: 1, onNoData: .fail, minTrials: 30, floor: floor)
        }
        let live: JudgeRules.Counts = .histogram([
            (0.00025, 0), (0.0005, 1000), (0.001, 9600), (0.0025, 9950), (0.005, 10000), (0.01, 10000), (0.025, 10000),
            (.infinity, 10000),
        ])
        let submillisecondTail: JudgeRules.Counts = .histogram([
            (0.00025, 0), (0.0005, 200), (0.001, 7000), (0.0025, 9900), (0.005, 10000), (0.01, 10000), (0.025, 10000),
            (.infinity, 10000),
        ])
        let before = JudgeRules(spec: Self.spec([latency(floor: nil)])).judge(
            latency(floor: nil), new: submillisecondTail, live: live)
        #expect(before.classification == .high, "without a floor the 1-2.5 ms tail is a regression: \(before.rule)")
        #expect(before.comparisons.first { $0.quantile == 0.95 }?.newThreshold == nil)

        let floored = latency(floor: JudgeSpec.Metric.defaultFloor)
        let after = JudgeRules(spec: Self.spec([floored])).judge(floored, new: submillisecondTail, live: live)
        #expect(after.classification == .pass, "\(after.rule)")
        let p95 = after.comparisons.first { $0.quantile == 0.95 }
        #expect(p95?.threshold == 0.001)
        #expect(p95?.newThreshold == 0.01, "1 ms + 5 ms, up to the 10 ms bound")
        #expect(p95?.newSuccesses == 0)
        #expect(after.rule.contains("new counted above 0.01 s (floor 0.005 s)"), "\(after.rule)")

        // 30 % of the new colour's answers above 25 ms: slower by far more than the floor.
        let slow: JudgeRules.Counts = .histogram([
            (0.00025, 0), (0.0005, 200), (0.001, 5000), (0.0025, 6000), (0.005, 6500), (0.01, 7000), (0.025, 7000),
            (.infinity, 10000),
        ])
        #expect(JudgeRules(spec: Self.spec([floored])).judge(floored, new: slow, live: live).classification == .high)
        // A floor past the last finite bucket counts the answers slower than every finite bound.
        let wide = latency(floor: 1)
        let beyond = JudgeRules(spec: Self.spec([wide])).judge(wide, new: slow, live: live)
        #expect(beyond.comparisons.first { $0.quantile == 0.95 }?.newThreshold == 0.025)
        #expect(beyond.classification == .high)
    }

    /// Bounds are found within a rounding error: 0.005 + 0.005 is the 10 ms bucket, not the next.
    @Test func theFloorsBoundIsTheFirstBucketAtOrAboveIt() {
        let buckets: [(le: Double, count: Double)] = [(0.001, 1), (0.005, 2), (0.01, 3), (0.025, 4), (.infinity, 5)]
        #expect(JudgeRules.bound(atLeast: 0.005 + 0.005, in: buckets) == 0.01)
        #expect(JudgeRules.bound(atLeast: 0.0011, in: buckets) == 0.005)
        #expect(JudgeRules.bound(atLeast: 3, in: buckets) == 0.025)
        #expect(JudgeRules.bound(atLeast: 3, in: [(.infinity, 5)]) == nil)
    }

    @Test func stepsAreDecidedWithKayentasScore() {
        let a = Self.metric("a", bad: .decrease, effect: 0.1, critical: true)
        let b = Self.metric("b", bad: .decrease, effect: 0.1)
        let c = Self.metric("c", bad: .decrease, effect: 0.1)
        let d = Self.metric("d", bad: .decrease, effect: 0.1)
        let rules = JudgeRules(spec: Self.spec([a, b, c, d]))
        func judgement(_ metric: JudgeSpec.Metric, _ classification: MetricJudgement.Classification) -> MetricJudgement
        {
            MetricJudgement(
                metric: metric.name, classification: classification, comparisons: [], rule: "",
                critical: metric.critical, weight: 1)
        }
        // A critical regression fails at once, whatever else.
        #expect(
            rules.decide(
                [judgement(a, .low), judgement(b, .pass), judgement(c, .pass), judgement(d, .pass)], final: false
            ).decision == .fail)
        // Not everything decided yet: wait.
        #expect(
            rules.decide(
                [judgement(a, .pass), judgement(b, .undecided), judgement(c, .pass), judgement(d, .pass)], final: false
            ).decision == .undecided)
        // 3 of 4 passed: 75, pass.
        let passed = rules.decide(
            [judgement(a, .pass), judgement(b, .low), judgement(c, .pass), judgement(d, .pass)], final: false)
        #expect(passed.decision == .pass && passed.score == 75)
        // 2 of 4 passed, one regression, one undecided at the deadline: between the thresholds.
        #expect(
            rules.decide(
                [judgement(a, .pass), judgement(b, .low), judgement(c, .undecided), judgement(d, .pass)], final: true
            ).decision == .inconclusive)
        // 1 of 4: fail.
        #expect(
            rules.decide(
                [judgement(a, .pass), judgement(b, .low), judgement(c, .low), judgement(d, .low)], final: true
            ).decision == .fail)
        // NoData with onNoData fail counts as not passed; ignored it is not counted.
        var ignored = Self.spec([a, b])
        ignored.metrics[1].onNoData = .ignore
        #expect(
            JudgeRules(spec: ignored).decide([judgement(a, .pass), judgement(b, .noData)], final: true).decision
                == .pass)
        #expect(
            JudgeRules(spec: Self.spec([a, b])).decide([judgement(a, .pass), judgement(b, .noData)], final: true)
                .decision == .inconclusive)
    }

    @Test func thePowerOfAStepGrowsWithItsTraffic() {
        var engagement = Self.metric("engagement", bad: .decrease, effect: 0.1)
        engagement.baseline = 0.05
        engagement.trialsPerRequest = 20
        let rules = JudgeRules(spec: Self.spec([engagement]))
        let small = rules.power(rate: 30, weight: 25, seconds: 8)[0]
        let large = rules.power(rate: 300, weight: 25, seconds: 60)[0]
        #expect(!small.sufficient, "a few dozen requests cannot detect 10 %: \(small.detectable)")
        #expect(large.detectable < small.detectable)
        #expect(large.sufficient, "\(large.detectable)")
        // The interleaving step (0 %) judges no A/B metric: no power figure, so no warning that
        // engagement "can only detect" a regression it is not asked to.
        #expect(rules.power(rate: 300, weight: 0, seconds: 60).isEmpty)
    }
}

/// A small deterministic generator (SplitMix64) for the simulations.
struct SystemRandomNumberGeneratorSeeded: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
