import Foundation
import Provenance
import StrictYAML
import Testing

@testable import Orchestrator
@testable import PipelineSchema

/// The sample ratio check against reference values: scipy 1.17 (`scipy.stats.chisquare`,
/// `chi2.sf`, `f.sf`, `special.betainc`), computed once; the grouped statistic from its definition
/// with numpy 2.4.
@Suite struct SampleRatioTests {
    @Test(arguments: [
        (0.5, 1, 0.47950012218695337), (3.84, 1, 0.05004352124870519), (10.83, 1, 0.0009986863791802592),
        (40, 1, 2.5396285894708634e-10),
        (100, 1, 1.5239706048320995e-23), (5, 3, 0.1717971442967335), (30, 4, 4.894437128029217e-06),
    ])
    func theChiSquaredTailMatchesScipy(x: Double, degrees: Int, expected: Double) {
        let p = Statistics.chiSquaredSurvival(x, degrees: degrees)
        #expect(abs(p - expected) <= expected * 1e-9, "chi2.sf(\(x), \(degrees)) = \(expected), got \(p)")
    }

    @Test(arguments: [
        (0.5, 0.5, 0.3, 0.36901011956554536), (7.5, 0.5, 0.6, 0.006442512189176016),
        (2.0, 3.0, 0.4, 0.5247999999999999),
        (10.0, 20.0, 0.35, 0.5923866636639051), (0.5, 7.5, 0.99, 0.9999999999999998),
    ])
    func theIncompleteBetaMatchesScipy(a: Double, b: Double, x: Double, expected: Double) {
        let value = Statistics.regularizedIncompleteBeta(a, b, x)
        #expect(abs(value - expected) <= expected * 1e-9, "betainc(\(a), \(b), \(x)) = \(expected), got \(value)")
    }

    /// `scipy.stats.f.sf(x, 1, d)`: at 10.83 (chi-squared's p = 0.001 with one degree of freedom),
    /// F(1, 15), the reference with 16 user buckets, is 0.00495: five times as likely.
    @Test(arguments: [
        (0.5, 15, 0.4903404784347179), (4.0, 15, 0.06394500728472015), (10.827566170662733, 15, 0.004954204186347466),
        (16.587, 15, 0.001000103724126773), (30.0, 15, 6.371813592403321e-05), (100.0, 15, 4.9968981429249404e-08),
        (0.001, 15, 0.975189817854318), (3.0, 1, 0.33333333333333337), (10.0, 3, 0.05078186628649377),
        (7.0, 63, 0.010280087694008927), (9.952843534370574, 7, 0.01604396002044082),
    ])
    func theFTailMatchesScipy(x: Double, denominator: Int, expected: Double) {
        let p = Statistics.fSurvival(x, numerator: 1, denominator: denominator)
        #expect(abs(p - expected) <= expected * 1e-9, "f.sf(\(x), 1, \(denominator)) = \(expected), got \(p)")
    }

    @Test(arguments: [
        ([500.0, 500], [0.5, 0.5], 0.0, 1.0), ([450.0, 550], [0.5, 0.5], 10.0, 0.001565402258002549),
        ([400.0, 600], [0.5, 0.5], 40.0, 2.5396285894708634e-10),
        ([260.0, 740], [0.25, 0.75], 0.5333333333333333, 0.4652088184521417),
        ([230.0, 770], [0.25, 0.75], 2.1333333333333333, 0.14412703481601116),
        ([48.0, 152], [0.25, 0.75], 0.10666666666666667, 0.7439714780750568),
        ([10.0, 20, 30], [0.2, 0.3, 0.5], 0.5555555555555556, 0.7574651283969664),
        ([4100.0, 5900], [0.45, 0.55], 64.64646464646465, 8.961694634394557e-16),
    ])
    func theGoodnessOfFitMatchesScipy(observed: [Double], shares: [Double], statistic: Double, pValue: Double) {
        let fit = Statistics.goodnessOfFit(observed: observed, shares: shares)
        #expect(abs(fit.statistic - statistic) < 1e-9)
        #expect(abs(fit.pValue - pValue) <= pValue * 1e-9 + 1e-15, "scipy \(pValue), got \(fit.pValue)")
    }

    static func rules(pValue: Double = 0.001) -> JudgeRules {
        var spec = JudgeTests.spec([JudgeTests.metric("engagement", bad: .decrease, effect: 0.1)])
        spec.sampleRatio = .init(users: "sum(users{color=\"{{color}}\"})", requests: nil, units: nil, pValue: pValue)
        return JudgeRules(spec: spec)
    }

    @Test func aSkewedSplitIsAMismatchAndAnEvenOneIsNot() throws {
        let rules = Self.rules()
        let even = try #require(rules.sampleRatio(.init(count: "users", new: ["": 500], live: ["": 500]), weight: 50))
        #expect(!even.mismatch && even.pValue == 1 && even.expectedShare == 0.5 && even.observedShare == 0.5)
        // 40 % instead of 50 %: scipy's chisquare([400, 600]) = 40.0, p 2.54e-10.
        let skewed = try #require(rules.sampleRatio(.init(count: "users", new: ["": 400], live: ["": 600]), weight: 50))
        #expect(
            skewed.mismatch && abs(skewed.statistic - 40) < 1e-9 && abs(skewed.pValue - 2.5396285894708634e-10) < 1e-18)
        #expect(
            skewed.summary
                == "users: new 40.0 % of 1000 (400 new, 600 live), expected 50.0 %: chi-squared 40.00, p 2.5e-10")
        // 45 % of 1000 at a 50 % step: p 0.0016, not below 0.001; below a looser threshold it is.
        #expect(
            rules.sampleRatio(.init(count: "users", new: ["": 450], live: ["": 550]), weight: 50)?.mismatch == false)
        #expect(
            Self.rules(pValue: 0.01).sampleRatio(.init(count: "users", new: ["": 450], live: ["": 550]), weight: 50)?
                .mismatch == true)
        // A 25 % step expects 25 %: 260 of 1000 is fine.
        #expect(
            rules.sampleRatio(.init(count: "users", new: ["": 260], live: ["": 740]), weight: 25)?.mismatch == false)
    }

    @Test func tooFewCountsOrAStepWithOneColourAreNotChecked() {
        let rules = Self.rules()
        // 10 % of 40 expects 4 on the new colour: below the 5 the approximation wants.
        #expect(rules.sampleRatio(.init(count: "users", new: ["": 0], live: ["": 40]), weight: 10) == nil)
        #expect(
            rules.sampleRatio(.init(count: "users", new: ["": 0], live: ["": 200]), weight: 10)?.mismatch == true,
            "none of 200 at 10 %")
        #expect(rules.sampleRatio(.init(count: "users", new: [:], live: [:]), weight: 50) == nil)
        #expect(
            rules.sampleRatio(.init(count: "users", new: ["": 10], live: ["": 990]), weight: 0) == nil,
            "at 0 % only interleaved users see it")
        #expect(rules.sampleRatio(.init(count: "users", new: ["": 990], live: ["": 10]), weight: 100) == nil)
        var none = Self.rules().spec
        none.sampleRatio = nil
        #expect(
            JudgeRules(spec: none).sampleRatio(.init(count: "users", new: ["": 100], live: ["": 900]), weight: 50)
                == nil)
    }

    /// Requests come in users: a few heavy users on one colour move its share of requests far
    /// more than independent requests would. Counted by groups of users, the share is tested
    /// with the variance between them (numpy: g/(g−1) Σ(n_i − R t_i)² / T², z² = (R − 1/2)² / it,
    /// a squared t with g − 1 degrees of freedom: f.sf(z², 1, g − 1)), and the same counts summed
    /// are a false alarm.
    @Test func requestsCountedByGroupsOfUsersAreTestedWithTheirOwnVariance() throws {
        let rules = Self.rules()
        let new = [900.0, 20, 30, 25, 40, 35, 30, 20]
        let live = [600.0, 30, 25, 35, 30, 40, 25, 30]
        let groups = { (values: [Double]) in
            Dictionary(uniqueKeysWithValues: values.enumerated().map { (String($0.offset), $0.element) })
        }
        let grouped = try #require(
            rules.sampleRatio(.init(count: "requests", new: groups(new), live: groups(live)), weight: 50))
        #expect(grouped.groups == 8)
        #expect(abs(grouped.observedShare - 0.5744125326370757) < 1e-12)
        #expect(abs(grouped.statistic - 9.952843534370574) < 1e-9)
        // chi2.sf(z², 1) would say 0.0016: F(1, 7) says 0.016, ten times as likely by chance.
        #expect(abs(grouped.pValue - 0.01604396002044082) < 1e-12)
        #expect(!grouped.mismatch)
        #expect(
            grouped.summary
                == "requests: new 57.4 % of 1915 (1100 new, 815 live), expected 50.0 %: "
                + "z² (F(1, 7)) 9.95, variance between 8 groups of users, p 0.016"
        )
        let summed = try #require(
            rules.sampleRatio(
                .init(count: "requests", new: ["": new.reduce(0, +)], live: ["": live.reduce(0, +)]), weight: 50))
        #expect(
            abs(summed.statistic - 42.41514360313316) < 1e-9 && summed.mismatch,
            "scipy chisquare([1100, 815]): p 7.4e-11")
    }

    /// A count by groups waits until every group holds `fewestUsersPerGroup` users (when the users
    /// are counted by the same groups): the requests of the test above are not tested while group 7
    /// holds 9 users, and once it holds 10 they are, with the same p-value (scipy's f.sf(z², 1, 7)).
    /// A users count by groups gates itself; users counted without groups gate nothing.
    @Test func aCountByGroupsWaitsUntilEveryGroupHoldsEnoughUsers() throws {
        let rules = Self.rules()
        let groups = { (values: [Double]) in
            Dictionary(uniqueKeysWithValues: values.enumerated().map { (String($0.offset), $0.element) })
        }
        let requests = JudgeRules.RatioCounts(
            count: "requests", new: groups([900, 20, 30, 25, 40, 35, 30, 20]),
            live: groups([600, 30, 25, 35, 30, 40, 25, 30]))
        func users(lastGroup: Double) -> JudgeRules.RatioCounts {
            .init(
                count: "users", new: groups([40, 6, 8, 7, 9, 8, 7, lastGroup / 2]),
                live: groups([40, 6, 7, 8, 8, 9, 6, lastGroup - lastGroup / 2]))
        }
        #expect(rules.sampleRatio(requests, weight: 50, users: users(lastGroup: 9)) == nil)
        let checked = try #require(rules.sampleRatio(requests, weight: 50, users: users(lastGroup: 10)))
        #expect(abs(checked.pValue - 0.01604396002044082) < 1e-12 && checked.groups == 8)
        #expect(rules.sampleRatio(users(lastGroup: 9), weight: 50) == nil, "a users count gates itself")
        #expect(rules.sampleRatio(users(lastGroup: 10), weight: 50) != nil)
        #expect(
            rules.sampleRatio(requests, weight: 50, users: .init(count: "users", new: ["": 40], live: ["": 40]))?
                .pValue == checked.pValue,
            "users counted without groups say nothing of the groups")
    }

    /// Over 200 A/A steps (a fair 50/50 split of 3,000 users, looked at 30 times each), the
    /// check at p < 0.001 raises next to no false alarm; a 45/55 split of the same users is
    /// caught within the step in nearly every one.
    @Test func falseAlarmsAndDetectionsOverSimulatedSteps() {
        let rules = Self.rules()
        var generator = SystemRandomNumberGeneratorSeeded(seed: 22)
        func alarms(share: Double) -> Int {
            (0..<200).filter { _ in
                var new = 0.0
                var live = 0.0
                var alarmed = false
                for _ in 0..<30 {
                    for _ in 0..<100 {
                        if Double.random(in: 0..<1, using: &generator) < share { new += 1 } else { live += 1 }
                    }
                    if rules.sampleRatio(.init(count: "users", new: ["": new], live: ["": live]), weight: 50)?.mismatch
                        == true
                    {
                        alarmed = true
                    }
                }
                return alarmed
            }.count
        }
        let fair = alarms(share: 0.5)
        let skewed = alarms(share: 0.45)
        #expect(fair <= 4, "false alarms in 200 A/A steps: \(fair)")
        #expect(skewed >= 180, "45/55 detected in \(skewed) of 200 steps")
    }
}
