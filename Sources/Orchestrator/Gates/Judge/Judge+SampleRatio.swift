import Foundation
import PipelineSchema
import Provenance

extension Statistics {
    /// The regularized upper incomplete gamma function Q(a, x) = Γ(a, x) / Γ(a): its series below
    /// a + 1, Lentz's continued fraction above (Numerical Recipes §6.2), to a relative 1e-15.
    static func regularizedUpperGamma(_ a: Double, _ x: Double) -> Double {
        precondition(a > 0, "Q(a, x) needs a > 0")
        guard x > 0 else { return 1 }
        let prefactor = exp(-x + a * log(x) - lgamma(a))
        if x < a + 1 {
            var term = 1 / a
            var sum = term
            var denominator = a
            for _ in 0..<10_000 {
                denominator += 1
                term *= x / denominator
                sum += term
                if abs(term) < abs(sum) * 1e-16 { break }
            }
            return max(0, 1 - sum * prefactor)
        }
        let tiny = 1e-300
        var b = x + 1 - a
        var c = 1 / tiny
        var d = 1 / b
        var fraction = d
        for i in 1..<10_000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b
            if abs(d) < tiny { d = tiny }
            c = b + an / c
            if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            fraction *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return prefactor * fraction
    }

    /// The regularized incomplete beta function I_x(a, b) by its continued fraction (Lentz's
    /// method, Numerical Recipes §6.4), on the side where it converges fast, to a relative 1e-15.
    static func regularizedIncompleteBeta(_ a: Double, _ b: Double, _ x: Double) -> Double {
        precondition(a > 0 && b > 0, "I_x(a, b) needs a, b > 0")
        guard x > 0 else { return 0 }
        guard x < 1 else { return 1 }
        let front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x))
        func fraction(_ a: Double, _ b: Double, _ x: Double) -> Double {
            let tiny = 1e-300
            var c = 1.0
            var d = 1 - (a + b) * x / (a + 1)
            if abs(d) < tiny { d = tiny }
            d = 1 / d
            var result = d
            for m in 1..<10_000 {
                let m = Double(m)
                for numerator in [
                    m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                    -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
                ] {
                    d = 1 + numerator * d
                    if abs(d) < tiny { d = tiny }
                    c = 1 + numerator / c
                    if abs(c) < tiny { c = tiny }
                    d = 1 / d
                    result *= d * c
                }
                if abs(d * c - 1) < 1e-16 { break }
            }
            return result
        }
        if x < (a + 1) / (a + b + 2) { return front * fraction(a, b, x) / a }
        return 1 - front * fraction(b, a, 1 - x) / b
    }

    /// P(X ≥ x) for X with Fisher's F distribution with `numerator` and `denominator` degrees of
    /// freedom: I_{d₂/(d₂ + d₁x)}(d₂/2, d₁/2).
    static func fSurvival(_ x: Double, numerator: Int, denominator: Int) -> Double {
        guard x > 0 else { return 1 }
        let (d1, d2) = (Double(numerator), Double(denominator))
        return regularizedIncompleteBeta(d2 / 2, d1 / 2, d2 / (d2 + d1 * x))
    }

    /// P(X ≥ x) for X chi-squared with `degrees` degrees of freedom.
    static func chiSquaredSurvival(_ x: Double, degrees: Int) -> Double {
        regularizedUpperGamma(Double(degrees) / 2, x / 2)
    }

    /// Pearson's chi-squared goodness of fit of `observed` counts to the `shares` they should
    /// fall in (as scipy's `chisquare(observed, shares · total)`): the statistic and its p-value.
    static func goodnessOfFit(observed: [Double], shares: [Double]) -> (statistic: Double, pValue: Double) {
        let total = observed.reduce(0, +)
        let statistic = zip(observed, shares).reduce(0) { sum, pair in
            let expected = pair.1 * total
            return expected > 0 ? sum + pow(pair.0 - expected, 2) / expected : sum
        }
        return (statistic, chiSquaredSurvival(statistic, degrees: max(1, observed.count - 1)))
    }
}

extension JudgeRules {
    /// What each colour counted of one of the sample ratio check's counts since the step
    /// started, by group of units ("" for a count read without them).
    struct RatioCounts: Sendable, Equatable {
        /// `users` or `requests`.
        var count: String
        var new: [String: Double]
        var live: [String: Double]
    }

    /// The fewest of a count each colour should have before the check is made: the chi-squared
    /// approximation wants at least 5 expected in every cell.
    static let fewestExpected = 5.0

    /// The fewest users (both colours) every group should hold before a count by groups is tested,
    /// when the users are counted by the same groups: F(1, g − 1) takes each group's share to be
    /// near normal, which a group of three or four users (each with all of their requests on one
    /// colour) is not; such looks raised the requests check's false alarms (Benchmarks/sensitivity).
    static let fewestUsersPerGroup = 10.0

    /// The sample ratio check of one count at a step that gives the new colour `weight` percent:
    /// nil while a colour's expected count is below `fewestExpected` (or at 0 % and 100 %, where
    /// one colour has nothing). Counted by groups of units (g ≥ 2), the new colour's share is
    /// tested with the variance measured between the groups: a z² whose variance is estimated from
    /// g groups (g − 1 degrees of freedom) is a squared t, so its reference is F(1, g − 1), not
    /// chi-squared with one degree of freedom (which, with the 16 user buckets, raised false alarms
    /// at p < 0.001 about five times as often as it should). Counted without groups, Pearson's
    /// goodness of fit (chi-squared, one degree of freedom). `users`: the users counted by the same
    /// groups at the same look, if they are; a count by groups is then not tested while a group
    /// holds fewer than `fewestUsersPerGroup` of them (a users count by groups gates itself).
    func sampleRatio(_ counts: RatioCounts, weight: Int, users: RatioCounts? = nil) -> SampleRatioCheck? {
        guard let threshold = spec.sampleRatio?.pValue, weight > 0 && weight < 100 else { return nil }
        let expected = Double(weight) / 100
        let new = counts.new.values.reduce(0, +)
        let live = counts.live.values.reduce(0, +)
        let total = new + live
        guard total > 0, min(expected, 1 - expected) * total >= Self.fewestExpected else { return nil }
        let observed = new / total
        var statistic: Double
        var groups: Int?
        var pValue: Double
        let keys = Set(counts.new.keys).union(counts.live.keys)
        if keys.count >= 2, !keys.contains(""),
            let users = counts.count == "users" ? counts : users,
            !Set(users.new.keys).union(users.live.keys).contains(""),
            keys.contains(where: { (users.new[$0] ?? 0) + (users.live[$0] ?? 0) < Self.fewestUsersPerGroup })
        {
            return nil
        }
        if keys.count >= 2, !keys.contains(""),
            let variance = Statistics.clusteredVariance(
                keys.map { key in (counts.new[key] ?? 0, (counts.new[key] ?? 0) + (counts.live[key] ?? 0)) })
        {
            // Never credited with less variance than independent counts.
            let binomial = expected * (1 - expected) / total
            statistic = pow(observed - expected, 2) / max(variance, binomial)
            groups = keys.count
            pValue = Statistics.fSurvival(statistic, numerator: 1, denominator: keys.count - 1)
        } else {
            statistic = Statistics.goodnessOfFit(observed: [new, live], shares: [expected, 1 - expected]).statistic
            pValue = Statistics.chiSquaredSurvival(statistic, degrees: 1)
        }
        return SampleRatioCheck(
            count: counts.count, expectedShare: expected, observedShare: observed, new: new, live: live, groups: groups,
            statistic: statistic, pValue: pValue,
            mismatch: pValue < threshold)
    }
}
