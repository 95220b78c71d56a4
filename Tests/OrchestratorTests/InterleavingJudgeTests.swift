import Foundation
import StrictYAML
import Testing

@testable import Orchestrator
@testable import PipelineSchema
@testable import Provenance

/// The interleaving metric of the judge: the sign test's always-valid interval against scipy,
/// its always-valid property, its verdicts, and the pipeline keys that turn it on.
@Suite struct InterleavingJudgeTests {
    /// scipy 1.17: the roots of `w log p + l log(1 − p) = betaln(w + a, l + a) − betaln(a, a) + log(alpha)`
    /// on either side of w / (w + l) (`brentq`, xtol 1e-15), with a = max(0.5, (1 / (4 m²) − 1) / 2).
    @Test(arguments: [
        (60.0, 40.0, 0.05, 0.05, 0.45291664560458406, 0.7357888770313078),
        (30, 70, 0.05, 0.05, 0.14746748718314293, 0.49075986294810653),
        (0, 12, 0.1, 0.05, 0.0, 0.5439131599831849),
        (500, 480, 0.05, 0.05, 0.4639036604952271, 0.5563878825650626),
        (7, 3, 0.25, 0.01, 0.2092240414024763, 0.9783743751780882),
        (0, 0, 0.05, 0.05, 0.0, 1.0),
    ])
    func theSignTestsIntervalMatchesScipy(
        wins: Double, losses: Double, margin: Double, alpha: Double, lower: Double, upper: Double
    ) {
        let interval = Statistics.preferenceInterval(
            wins: wins, losses: losses, prior: Statistics.preferencePrior(margin: margin), alpha: alpha)
        #expect(abs(interval.lower - lower) < 1e-9 && abs(interval.upper - upper) < 1e-9, "\(interval)")
    }

    /// Over 400 A/A experiments of 2,000 users each, looked at after every 20 users, the interval
    /// excludes 1/2 in at most alpha of them; a fixed-sample sign test looked at as often is
    /// wrong far more often.
    @Test func anAAInterleavingLookedAtOftenIsRarelyWrong() {
        var generator = SystemRandomNumberGeneratorSeeded(seed: 22)
        var wrong = 0
        var naiveWrong = 0
        let prior = Statistics.preferencePrior(margin: 0.05)
        for _ in 0..<400 {
            var wins = 0.0
            var losses = 0.0
            var excluded = false
            var naive = false
            for _ in 0..<100 {
                for _ in 0..<20 {
                    if Bool.random(using: &generator) { wins += 1 } else { losses += 1 }
                }
                let interval = Statistics.preferenceInterval(wins: wins, losses: losses, prior: prior, alpha: 0.05)
                if interval.lower > 0.5 || interval.upper < 0.5 { excluded = true }
                if abs(wins - losses) / (wins + losses).squareRoot() > 1.96 { naive = true }
            }
            if excluded { wrong += 1 }
            if naive { naiveWrong += 1 }
        }
        #expect(Double(wrong) / 400 <= 0.05, "always valid: \(wrong) of 400 A/A experiments ever rejected")
        #expect(Double(naiveWrong) / 400 > 0.2, "the naive repeated sign test rejects often: \(naiveWrong) of 400")
    }

    static func metric(
        critical: Bool = true, effect: Double = 0.05, absolute: Bool = true, minTrials: Int = 30
    ) -> JudgeSpec.Metric {
        JudgeSpec.Metric(
            name: "preference", kind: .interleaving, bad: .decrease, effect: effect, absolute: absolute, baseline: nil,
            critical: critical, weight: 1,
            onNoData: .fail, minTrials: minTrials)
    }

    static let rules = JudgeRules(
        spec: JudgeSpec(
            metrics: [metric()], confidence: 0.95, interval: .seconds(1), maxWait: .seconds(60), onInconclusive: .fail,
            marginal: 50, pass: 75, expectedRate: nil))

    @Test(arguments: [
        // A worse candidate: 35 % of 400 users with a preference chose it.
        (140.0, 260.0, MetricJudgement.Classification.low),
        // Equal: 1,000 users split evenly, the interval within ±5 points.
        (1000, 1000, .pass),
        (12, 8, .noData),
        (28, 32, .undecided),
        // A better candidate passes (the question is only whether it is worse).
        (300, 100, .pass),
    ])
    func preferencesAreClassifiedAgainstAHalf(wins: Double, losses: Double, expected: MetricJudgement.Classification) {
        let judgement = Self.rules.judge(
            Self.metric(), new: .preferences(wins: wins, losses: losses, ties: 7), live: nil)
        #expect(judgement.classification == expected, "\(judgement.rule)")
        let comparison = judgement.comparisons.first
        #expect(
            comparison?.newSuccesses == wins && comparison?.newTrials == wins + losses
                && comparison?.liveSuccesses == losses)
        #expect(comparison?.margin == 0.05)
        #expect(
            judgement.rule.contains("preferring new \(Int(wins)), live \(Int(losses)), ties 7"), "\(judgement.rule)")
    }

    @Test func aCriticalInterleavingLossFailsTheStep() {
        let judgement = Self.rules.judge(Self.metric(), new: .preferences(wins: 140, losses: 260, ties: 0), live: nil)
        let decision = Self.rules.decide([judgement], final: false)
        #expect(decision.decision == .fail && decision.rule == "critical metric preference is Low")
    }

    @Test func aRelativeEffectIsTakenOfAHalf() {
        let judgement = Self.rules.judge(
            Self.metric(effect: 0.1, absolute: false), new: .preferences(wins: 1000, losses: 1000, ties: 0), live: nil)
        #expect(judgement.comparisons.first?.margin == 0.05)
    }

    @Test func theInterleavingStepIsJudgedOnTheInterleavingMetricsAlone() {
        let errors = JudgeSpec.Metric(
            name: "errors", kind: .proportion(successes: "s{c=\"{{color}}\"}", trials: "t{c=\"{{color}}\"}"),
            bad: .increase, effect: 0.02, absolute: true,
            baseline: nil, critical: true, weight: 1, onNoData: .fail, minTrials: 30)
        var spec = Self.rules.spec
        spec.metrics = [errors, Self.metric()]
        #expect(spec.judging(weight: 0).metrics.map(\.name) == ["preference"])
        #expect(spec.judging(weight: 25).metrics.map(\.name) == ["errors", "preference"])
    }

    static func pipeline(
        steps: String = "[0, 25, 100]", interleave: String? = "{share: 20, window: 5m}",
        metric: String? = "interleaving: {}", extra: String = ""
    )
        -> String
    {
        """
        version: 1
        name: demo
        stages:
          - name: train
            uses: train
            with: {ratings: r.csv, model: m}
        deploy: {runtime: process}
        traffic:
          steps: \(steps)
        \(interleave.map { "  interleave: \($0)" } ?? "")
        analysis:
          prometheus: http://p:9090
          judge:
            metrics:
              - name: preference
                \(metric ?? "proportion: {successes: 's{c=\"{{color}}\"}', trials: 't{c=\"{{color}}\"}'}")
                bad: decrease
                effect: {absolute: 0.05}
                critical: true
        \(extra)
        """
    }

    func load(_ yaml: String) async throws -> Result<Pipeline, PipelineValidationError> {
        try await withTemporaryDirectory { folder in
            try write(yaml, to: folder + "/pipeline.yml")
            do {
                return .success(try PipelineLoader(environment: [:]).load(folder + "/pipeline.yml"))
            } catch let error as PipelineValidationError {
                return .failure(error)
            }
        }
    }

    @Test func theInterleavingKeysAreReadAndAZeroStepIsTheInterleavingStep() async throws {
        let pipeline = try await load(Self.pipeline()).get()
        #expect(pipeline.traffic?.interleave == InterleaveSpec(share: 20, window: .seconds(300)))
        #expect(pipeline.traffic?.steps == [0, 25, 100])
        #expect(pipeline.analysis?.judge?.metrics.first?.kind == .interleaving)
        #expect(
            try await load(Self.pipeline(steps: "[25, 100]")).get().traffic?.steps == [25, 100],
            "interleaving in the weighted steps only")
    }

    @Test(arguments: [
        (pipeline(interleave: nil), "weight 0 is outside 1...100"),
        (pipeline(steps: "[25, 100]", interleave: nil), "an interleaving metric needs traffic.interleave"),
        (pipeline(steps: "[25, 100]", metric: nil), "nothing judges the interleaved users"),
        (pipeline(interleave: "{share: 0}"), "must be from 1 to 100"),
        (pipeline(interleave: "{share: 10, window: 0s}"), "the credit window is 1s to 24h"),
        (pipeline(metric: "interleaving: {ties: half}"), "unknown key \"ties\""),
        (pipeline(metric: "interleaving: {}\n        histogram: 'b{c=\"{{color}}\"}'"), "exclude each other"),
        (pipeline(metric: "interleaving: {}\n        quantiles: [0.5]"), "quantiles does not apply to interleaving"),
        (
            pipeline().replacingOccurrences(of: "{absolute: 0.05}", with: "{absolute: 0.5}"),
            "an interleaving effect is a share of users below 1/2"
        ),
    ])
    func interleavingMistakesAreNamed(yaml: String, message: String) async throws {
        guard case .failure(let error) = try await load(yaml) else {
            Issue.record("accepted: \(yaml)")
            return
        }
        #expect(error.issues.contains { $0.message.contains(message) }, "\(error)")
    }
}
