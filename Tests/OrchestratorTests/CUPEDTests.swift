import Foundation
import Provenance
import StrictYAML
import TestSupport
import Testing

@testable import Orchestrator
@testable import PipelineSchema

/// CUPED for the judge's grouped metrics against a numpy computation of its definition (numpy
/// 2.4, computed once): per group u = s − R t, v = t (x − X̄_c), θ = Σuv / Σv² over both colours,
/// shift −θ (X̄_c − X̄), variance g/(g−1) Σ(u − θv)² / T².
@Suite struct CUPEDTests {
    /// Six groups of users: their rate before the step, on the live colour (successes, trials),
    /// and what each colour gathered in the step; the groups that engaged more before engage more now.
    static let before: [String: (successes: Double, trials: Double)] = [
        "0": (30, 600), "1": (5, 400), "2": (60, 800), "3": (12, 500), "4": (2, 300), "5": (40, 700),
    ]
    static let new: [String: (successes: Double, trials: Double)] = [
        "0": (20, 400), "1": (3, 250), "2": (35, 500), "3": (8, 300), "4": (1, 200), "5": (25, 450),
    ]
    static let live: [String: (successes: Double, trials: Double)] = [
        "0": (22, 380), "1": (4, 260), "2": (40, 520), "3": (9, 310), "4": (2, 190), "5": (27, 430),
    ]

    @Test func theAdjustedEstimateAndVarianceMatchNumpy() throws {
        let result = try #require(Statistics.cuped(new: Self.new, live: Self.live, covariate: Self.before))
        #expect(abs(result.theta - 0.9439298631233138) < 1e-12)
        // Rates 0.0438095 (new) and 0.0497608 (live) become 0.0438337 and 0.0497365.
        #expect(abs(0.04380952380952381 + result.new.shift - 0.04383368538778816) < 1e-15)
        #expect(abs(0.049760765550239235 + result.live.shift - 0.04973648836633726) < 1e-15)
        #expect(abs(result.new.variance - 9.67325342835547e-05) < 1e-17)
        #expect(abs(result.live.variance - 0.00011461014941684655) < 1e-17)
        #expect(abs(result.new.adjustedVariance - 6.695065263798006e-07) < 1e-18)
        #expect(abs(result.live.adjustedVariance - 1.067499001730268e-06) < 1e-18)
        let reduction =
            1 - (result.new.adjustedVariance + result.live.adjustedVariance)
            / (result.new.variance + result.live.variance)
        #expect(abs(reduction - 0.9917810945820464) < 1e-12)
        // The unadjusted variance is the judge's clustered variance.
        #expect(abs(result.new.variance - (Statistics.clusteredVariance(Array(Self.new.values)) ?? 0)) < 1e-18)
    }

    @Test func withoutEarlierTrialsOrGroupsThereIsNoAdjustment() {
        #expect(Statistics.cuped(new: Self.new, live: Self.live, covariate: [:]) == nil)
        #expect(Statistics.cuped(new: Self.new, live: Self.live, covariate: ["0": (0, 0)]) == nil)
        #expect(
            Statistics.cuped(new: ["0": (3, 100)], live: Self.live, covariate: Self.before) == nil,
            "one group has no variance to measure")
        // A covariate that says nothing (every group the same before) changes nothing.
        let flat = Self.before.mapValues { _ in (successes: 10.0, trials: 200.0) }
        let none = Statistics.cuped(new: Self.new, live: Self.live, covariate: flat)
        #expect(none?.theta == 0 && none?.new.shift == 0 && none?.new.adjustedVariance == none?.new.variance)
    }

    /// The judge with `cuped`: the same counts, a narrower interval, and the reduction recorded
    /// and written in the rule; without a covariate (the window held no data) it judges as before.
    @Test func theJudgeNarrowsItsIntervalAndSaysByHowMuch() throws {
        var engagement = JudgeTests.metric("engagement", bad: .decrease, effect: 0.2)
        engagement.units = "user_bucket"
        engagement.minTrials = 10
        engagement.cuped = .seconds(600)
        let rules = JudgeRules(spec: JudgeTests.spec([engagement]))
        let plain = rules.judge(engagement, new: .grouped(Self.new), live: .grouped(Self.live))
        let adjusted = rules.judge(
            engagement, new: .grouped(Self.new), live: .grouped(Self.live), covariate: Self.before)
        #expect(plain.cuped == nil)
        let cuped = try #require(adjusted.cuped)
        let (p, a) = (plain.comparisons[0], adjusted.comparisons[0])
        #expect(a.upper - a.lower < p.upper - p.lower)
        #expect(abs(cuped.varianceReduction - (1 - pow((a.upper - a.lower) / (p.upper - p.lower), 2))) < 1e-12)
        #expect(
            cuped.varianceReduction > 0.3,
            "the users' own differences were most of the variance: \(cuped.varianceReduction)")
        #expect(cuped.window == "10m" && abs(cuped.theta - 0.9439298631233138) < 1e-12)
        #expect(abs(a.difference - (p.difference + cuped.newShift - cuped.liveShift)) < 1e-15)
        #expect(adjusted.rule.contains("; CUPED on the 10m before the step: variance -"), "\(adjusted.rule)")
    }

    /// The adapter's read: the live colour's counters of each group now and a window earlier (an
    /// instant query at each time), their difference the covariate.
    @Test func theCovariateIsTheLiveColoursCountsInTheWindowBeforeTheStep() async throws {
        let now = Date().timeIntervalSince1970
        try await HostileHTTPServer.with({ path in
            let time = path.components(separatedBy: "&time=").last.flatMap { Double($0) } ?? now
            let earlier = time < now - 300
            let counts: [(String, Int)] =
                path.contains("conv")
                ? (earlier ? [("0", 10), ("1", 4)] : [("0", 40), ("1", 9)])
                : (earlier ? [("0", 100), ("1", 100)] : [("0", 700), ("1", 300)])
            let series = counts.map { #"{"metric":{"user_bucket":"\#($0.0)"},"value":[1700000000,"\#($0.1)"]}"# }
                .joined(separator: ",")
            return .json(#"{"status":"success","data":{"resultType":"vector","result":[\#(series)]}}"#)
        }) { server in
            var engagement = JudgeTests.metric("engagement", bad: .decrease, effect: 0.2)
            engagement.kind = .proportion(
                successes: "sum by (user_bucket) (conv{color=\"{{color}}\"})",
                trials: "sum by (user_bucket) (served{color=\"{{color}}\"})")
            engagement.units = "user_bucket"
            engagement.cuped = .seconds(600)
            let judge = StepJudge(
                spec: JudgeTests.spec([
                    engagement, JudgeTests.metric("errors", bad: .increase, effect: 0.02, absolute: true),
                ]),
                prometheus: PrometheusClient(baseURL: server.url), target: "green", live: "blue")
            let covariates = await judge.readCovariates()
            #expect(covariates.keys.sorted() == ["engagement"], "only the metric with cuped")
            let groups = try #require(covariates["engagement"])
            #expect(groups["0"]?.successes == 30 && groups["0"]?.trials == 600)
            #expect(groups["1"]?.successes == 5 && groups["1"]?.trials == 200)
            #expect(
                server.paths.count == 4 && server.paths.allSatisfy { $0.contains("blue") && !$0.contains("green") },
                "\(server.paths)")
            let times = server.paths.compactMap { $0.components(separatedBy: "&time=").last.flatMap(Double.init) }
            #expect(
                times.count == 4 && abs((times.max() ?? 0) - (times.min() ?? 0) - 600) < 1,
                "now and 10m before: \(times)")
        }
    }
}
