import Foundation

/// The statistics of the judge: always-valid confidence sequences for the difference of two
/// proportions, valid however often the data are looked at (a mixture sequential probability
/// ratio test, mSPRT, with a normal mixture; Johari, Pekelis, Walsh, "Always valid inference",
/// 2017), and the normal distribution they rest on.
enum Statistics {
    /// The standard normal quantile function (Acklam's rational approximation refined by one step
    /// of Newton's method: absolute error below 1e-12 on (0, 1)).
    static func normalQuantile(_ p: Double) -> Double {
        precondition(p > 0 && p < 1, "a quantile needs 0 < p < 1")
        let a = [
            -3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
            -3.066479806614716e+01, 2.506628277459239e+00,
        ]
        let b = [
            -5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
            -1.328068155288572e+01,
        ]
        let c = [
            -7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
            4.374664141464968e+00, 2.938163982698783e+00,
        ]
        let d = [7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00]
        let low = 0.02425
        var x: Double
        if p < low {
            let q = (-2 * log(p)).squareRoot()
            x =
                (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        } else if p <= 1 - low {
            let q = p - 0.5
            let r = q * q
            x =
                (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q
                / (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1)
        } else {
            let q = (-2 * log(1 - p)).squareRoot()
            x =
                -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5])
                / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1)
        }
        // One Newton step on the exact CDF.
        let error = normalCDF(x) - p
        x -= error * (2 * Double.pi).squareRoot() * exp(x * x / 2)
        return x
    }

    /// The standard normal distribution function.
    static func normalCDF(_ x: Double) -> Double {
        0.5 * erfc(-x / 2.0.squareRoot())
    }

    /// A proportion as the judge estimates it: Agresti and Caffo's adjustment (one success and
    /// one failure added), so that a colour with no errors yet still has a variance.
    static func adjustedRate(_ successes: Double, _ trials: Double) -> Double {
        (successes + 1) / (trials + 2)
    }

    /// The always-valid confidence interval at level `1 - alpha` for `estimate` with variance
    /// `variance`, from an mSPRT with a normal mixture of variance `mixture` (the size of
    /// effect the test is tuned to, squared): the set of values θ with
    /// `sqrt(V / (V + τ²)) · exp(τ² (θ̂ − θ)² / (2 V (V + τ²))) < 1 / alpha`.
    static func alwaysValidInterval(
        estimate: Double, variance: Double, mixture: Double, alpha: Double
    ) -> (lower: Double, upper: Double) {
        guard variance > 0, mixture > 0 else { return (-.infinity, .infinity) }
        let halfWidth =
            (2 * variance * (variance + mixture) / mixture
            * (log(1 / alpha) + 0.5 * log((variance + mixture) / variance))).squareRoot()
        return (estimate - halfWidth, estimate + halfWidth)
    }

    /// The difference of two proportions (new − live) with its always-valid interval.
    struct Difference: Sendable, Equatable, Codable {
        /// The adjusted rates.
        var new: Double
        var live: Double
        var estimate: Double
        var lower: Double
        var upper: Double
    }

    /// - Parameters:
    ///   - variance: the variance of the difference when measured between groups of units (see
    ///     `clusteredVariance`); nil: binomial.
    ///   - shift: what a covariate adjustment (CUPED) moves the difference by.
    static func difference(
        newSuccesses: Double, newTrials: Double, liveSuccesses: Double, liveTrials: Double, mixture: Double,
        alpha: Double, variance: Double? = nil,
        shift: Double = 0
    ) -> Difference {
        let new = adjustedRate(newSuccesses, newTrials)
        let live = adjustedRate(liveSuccesses, liveTrials)
        let binomial = new * (1 - new) / (newTrials + 2) + live * (1 - live) / (liveTrials + 2)
        // Grouped units are never credited with less variance than independent trials.
        let variance = max(variance ?? binomial, binomial)
        let interval = alwaysValidInterval(
            estimate: new - live + shift, variance: variance, mixture: mixture, alpha: alpha)
        return Difference(
            new: new, live: live, estimate: new - live + shift, lower: interval.lower, upper: interval.upper)
    }

    /// The variance of a ratio of sums (successes over trials) measured between independent
    /// groups (linearisation, the cluster-robust variance of a ratio estimator):
    /// `g/(g−1) · Σ (s_i − R t_i)² / T²` with R = S/T over g groups.
    static func clusteredVariance(_ groups: [(successes: Double, trials: Double)]) -> Double? {
        let trials = groups.reduce(0) { $0 + $1.trials }
        let count = Double(groups.filter { $0.trials > 0 }.count)
        guard count >= 2, trials > 0 else { return nil }
        let ratio = groups.reduce(0) { $0 + $1.successes } / trials
        let squares = groups.reduce(0) { $0 + pow($1.successes - ratio * $1.trials, 2) }
        return count / (count - 1) * squares / (trials * trials)
    }

    /// The half-width of the always-valid interval for two proportions near `rate` with `newTrials`
    /// and `liveTrials`: the smallest margin a look with that much data can decide.
    static func detectableMargin(
        rate: Double, newTrials: Double, liveTrials: Double, mixture: Double, alpha: Double
    ) -> Double {
        let variance = rate * (1 - rate) / max(newTrials, 1) + rate * (1 - rate) / max(liveTrials, 1)
        let interval = alwaysValidInterval(estimate: 0, variance: variance, mixture: mixture, alpha: alpha)
        return interval.upper
    }
}
