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

    /// The sample ratio check of one count at a step that gives the new colour `weight` percent:
    /// nil while a colour's expected count is below `fewestExpected` (or at 0 % and 100 %, where
    /// one colour has nothing). Counted by groups of units (two or more), the new colour's share
    /// is tested with the variance measured between the groups (z², still chi-squared with one
    /// degree of freedom), else by Pearson's goodness of fit.
    func sampleRatio(_ counts: RatioCounts, weight: Int) -> SampleRatioCheck? {
        guard let threshold = spec.sampleRatio?.pValue, weight > 0 && weight < 100 else { return nil }
        let expected = Double(weight) / 100
        let new = counts.new.values.reduce(0, +)
        let live = counts.live.values.reduce(0, +)
        let total = new + live
        guard total > 0, min(expected, 1 - expected) * total >= Self.fewestExpected else { return nil }
        let observed = new / total
        var statistic: Double
        var groups: Int?
        let keys = Set(counts.new.keys).union(counts.live.keys)
        if keys.count >= 2, !keys.contains(""),
            let variance = Statistics.clusteredVariance(
                keys.map { key in (counts.new[key] ?? 0, (counts.new[key] ?? 0) + (counts.live[key] ?? 0)) })
        {
            // Never credited with less variance than independent counts.
            let binomial = expected * (1 - expected) / total
            statistic = pow(observed - expected, 2) / max(variance, binomial)
            groups = keys.count
        } else {
            statistic = Statistics.goodnessOfFit(observed: [new, live], shares: [expected, 1 - expected]).statistic
        }
        let pValue = Statistics.chiSquaredSurvival(statistic, degrees: 1)
        return SampleRatioCheck(
            count: counts.count, expectedShare: expected, observedShare: observed, new: new, live: live, groups: groups,
            statistic: statistic, pValue: pValue,
            mismatch: pValue < threshold)
    }
}
