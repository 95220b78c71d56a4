import Foundation
import Provenance
import StrictYAML
import TestSupport
import Testing

@testable import Orchestrator
@testable import PipelineSchema

/// A critical metric must decide: the others' score passes a step without it only with
/// `allowUndecidedCritical: true`; and the plan's power figures of a metric measured between
/// users count users.
@Suite struct CriticalMetricTests {
    static let engagement = JudgeTests.metric("engagement", bad: .decrease, effect: 0.1, critical: true)
    static let errors = JudgeTests.metric("errors", bad: .increase, effect: 0.02, absolute: true)
    static let latency = JudgeTests.metric("latency", bad: .increase, effect: 1)

    static func judgement(
        _ metric: JudgeSpec.Metric, _ classification: MetricJudgement.Classification
    ) -> MetricJudgement {
        MetricJudgement(
            metric: metric.name, classification: classification, comparisons: [], rule: "", critical: metric.critical,
            weight: 1)
    }

    static func rules(allow: Bool? = nil) -> JudgeRules {
        var spec = JudgeTests.spec([engagement, errors, latency])
        spec.allowUndecidedCritical = allow
        return JudgeRules(spec: spec)
    }

    @Test func aCriticalMetricStillUndecidedAtMaxWaitLeavesTheStepInconclusive() {
        let looks = [
            Self.judgement(Self.engagement, .undecided), Self.judgement(Self.errors, .pass),
            Self.judgement(Self.latency, .pass),
        ]
        // Before maxWait: wait for it.
        #expect(Self.rules().decide(looks, final: false).decision == .undecided)
        // At maxWait, 2 of 3 passed (score 66.7 < 75) and the critical one undecided: inconclusive, saying why.
        let undecided = Self.rules().decide(looks, final: true)
        #expect(undecided.decision == .inconclusive)
        #expect(
            undecided.rule.contains("the critical metric did not decide (engagement Undecided at the deadline)"),
            "\(undecided.rule)")
        // With a lower pass mark the others' score alone would pass it: still inconclusive.
        var lenient = Self.rules()
        lenient.spec.pass = 60
        let blocked = lenient.decide(looks, final: true)
        #expect(blocked.decision == .inconclusive, "\(blocked.rule)")
        #expect(
            blocked.rule.hasSuffix("passing on the other metrics needs allowUndecidedCritical: true"), "\(blocked.rule)"
        )
        // The same with no data at all for the critical metric.
        let noData = lenient.decide([Self.judgement(Self.engagement, .noData)] + looks.dropFirst(), final: true)
        #expect(noData.decision == .inconclusive && noData.rule.contains("engagement NoData"), "\(noData.rule)")
        // Opted in: it passes, and the verdict says so.
        var allowed = Self.rules(allow: true)
        allowed.spec.pass = 60
        let passed = allowed.decide(looks, final: true)
        #expect(passed.decision == .pass)
        #expect(
            passed.rule
                == "score 66.7 (pass ≥ 60, marginal ≥ 50): pass without the critical metric deciding (engagement Undecided at the deadline; allowUndecidedCritical: true)"
        )
        // A decided critical metric passes as before; one that regressed fails as before.
        #expect(
            lenient.decide([Self.judgement(Self.engagement, .pass)] + looks.dropFirst(), final: true).rule.hasSuffix(
                ": pass"))
        #expect(
            allowed.decide([Self.judgement(Self.engagement, .low)] + looks.dropFirst(), final: true).decision == .fail)
    }

    /// A pipeline file of `text`, loaded as `validate` loads it.
    static func load(_ text: String) async throws -> Pipeline {
        try await withTemporaryDirectory { folder in
            try write(text, to: folder + "/pipeline.yml")
            return try PipelineLoader(environment: [:]).load(folder + "/pipeline.yml")
        }
    }

    @Test func allowUndecidedCriticalIsDecodedAndChecked() async throws {
        let base = """
            version: 1
            name: demo
            stages:
              - name: x
                run: [true]
            deploy: {runtime: process, model: models/m}
            traffic: {}
            analysis:
              prometheus: http://127.0.0.1:9090
              judge:
                ALLOW
                metrics:
                  - name: errors
                    proportion: {successes: 's{color="{{color}}"}', trials: 't{color="{{color}}"}'}
                    bad: increase
            """
        func decode(_ line: String) async throws -> Pipeline {
            try await Self.load(base.replacingOccurrences(of: "ALLOW", with: line))
        }
        #expect(try await decode("allowUndecidedCritical: true").analysis?.judge?.allowsUndecidedCritical == true)
        #expect(
            try await decode("confidence: 0.95").analysis?.judge?.allowsUndecidedCritical == false,
            "off unless the pipeline says so")
        #expect(try await decode("usersPerMinute: 300").analysis?.judge?.usersPerMinute == 300)
        let ratio = try await decode("sampleRatio: {users: 'sum(u{color=\"{{color}}\"})', units: user_bucket}")
            .analysis?.judge?.sampleRatio
        #expect(
            ratio
                == JudgeSpec.SampleRatio(
                    users: "sum(u{color=\"{{color}}\"})", requests: nil, units: "user_bucket", pValue: 0.001))
    }

    /// Engagement measured between groups of users: its power counts the users that reach the
    /// service in maxWait, not its recommendations (a thousand requests of the same hundred users
    /// decide no more than those hundred users do).
    @Test func thePowerOfAMetricOfUsersCountsUsers() throws {
        var engagement = Self.engagement
        engagement.baseline = 0.03
        engagement.trialsPerRequest = 20
        engagement.units = "user_bucket"
        engagement.effect = 0.2
        var spec = JudgeTests.spec([engagement])
        let perRequest = JudgeRules(spec: spec)
        #expect(
            perRequest.power(rate: 100, weight: 50, seconds: 30).isEmpty,
            "no rate of users: no figure rather than one in requests")
        spec.usersPerMinute = 600
        let power = try #require(JudgeRules(spec: spec).power(rate: 100, weight: 50, seconds: 30).first)
        #expect(power.unit == "users" && power.newTrials == 150, "600 users/min × 30 s × 50 %")
        #expect(!power.sufficient, "150 users cannot decide 20 % of a 3 % rate: \(power.detectable)")
        let needed = try #require(power.neededNew)
        // The users needed decide it, one fewer does not (the interval's half-width at that size).
        let margin = 0.2 * 0.03
        let rules = JudgeRules(spec: spec)
        let half = { (users: Double) in
            Statistics.detectableMargin(
                rate: 0.03, newTrials: users, liveTrials: users, mixture: margin * margin, alpha: rules.alpha)
        }
        #expect(half(needed) <= margin && half(needed - 1) > margin, "needed \(needed)")
        #expect(abs((power.neededSeconds ?? 0) - needed / 5) < 1e-9, "5 new users a second at 50 % of 600/min")
        // The same metric per recommendation, as before: 100 requests/s × 20 × 30 s × 50 %.
        engagement.units = nil
        let trials = try #require(
            JudgeRules(spec: JudgeTests.spec([engagement])).power(rate: 100, weight: 50, seconds: 30).first)
        #expect(trials.unit == "trials" && trials.newTrials == 30_000)
    }

    @Test func validateSaysHowManyUsersAndMinutesAStepWouldNeed() async throws {
        let yaml = """
            version: 1
            name: demo
            stages:
              - name: x
                run: [true]
            deploy: {runtime: process, model: models/m}
            traffic:
              steps: [10, 50, 100]
              wait: 10s
            analysis:
              prometheus: http://127.0.0.1:9090
              judge:
                maxWait: 30s
                expectedRate: 100
                USERS
                metrics:
                  - name: engagement
                    proportion:
                      successes: sum by (user_bucket) (c{color="{{color}}"})
                      trials: sum by (user_bucket) (s{color="{{color}}"})
                      units: user_bucket
                    bad: decrease
                    effect: 0.2
                    baseline: 0.03
                    critical: true
            """
        let withoutRate = try await Self.load(yaml.replacingOccurrences(of: "USERS", with: "confidence: 0.95"))
            .judgePowerWarnings()
        #expect(withoutRate.count == 1 && withoutRate[0].contains("give usersPerMinute"), "\(withoutRate)")
        let warnings = try await Self.load(yaml.replacingOccurrences(of: "USERS", with: "usersPerMinute: 600"))
            .judgePowerWarnings()
        #expect(warnings.count == 2, "both steps below 100 %: \(warnings)")
        let first = try #require(warnings.first)
        #expect(
            first.hasPrefix("analysis.judge: at the 10 % step, engagement can only detect a regression of "), "\(first)"
        )
        #expect(first.contains("within maxWait 30s at 600 users/min"), "\(first)")
        #expect(
            first.contains("users on the new colour (") && first.contains(" minutes at this rate), maxWait gives 30"),
            "\(first)")
    }
}
