import Foundation
import PipelineSchema
import Provenance

extension Statistics {
    /// One colour's rate and variance with the covariate, and without.
    struct CovariateEstimate: Sendable, Equatable {
        /// −θ (X̄ colour − X̄ both): added to the colour's rate.
        var shift: Double
        var adjustedVariance: Double
        var variance: Double
    }

    /// CUPED for a ratio of sums measured between groups of units (successes over trials of
    /// each group, for each colour), with each group's rate before the step (`covariate`: its
    /// successes and trials then) as the covariate, linearised as the clustered variance is: per
    /// group of colour c, u = s − R_c t and v = t (x − X̄_c), with x the group's earlier rate and
    /// X̄_c its mean over c's trials; θ = Σ u v / Σ v² over both colours; the colour's rate moves
    /// by −θ (X̄_c − X̄) and its variance is g/(g−1) Σ (u − θ v)² / T_c². A group without earlier
    /// trials takes the earlier rate of all of them (it then neither helps nor biases).
    ///
    /// - Returns: nil without earlier trials, or when a colour has fewer than two groups.
    static func cuped(
        new: [String: (successes: Double, trials: Double)], live: [String: (successes: Double, trials: Double)],
        covariate: [String: (successes: Double, trials: Double)]
    ) -> (theta: Double, new: CovariateEstimate, live: CovariateEstimate)? {
        let before = covariate.values.reduce((0.0, 0.0)) { ($0.0 + $1.successes, $0.1 + $1.trials) }
        guard before.1 > 0 else { return nil }
        let overall = before.0 / before.1
        func rate(_ key: String) -> Double {
            guard let earlier = covariate[key], earlier.trials > 0 else { return overall }
            return earlier.successes / earlier.trials
        }
        struct Colour {
            var u: [Double]
            var v: [Double]
            var trials: Double
            var mean: Double
        }
        func linearised(_ groups: [String: (successes: Double, trials: Double)]) -> Colour? {
            let cells = groups.filter { $0.value.trials > 0 }.sorted { $0.key < $1.key }
            let trials = cells.reduce(0) { $0 + $1.value.trials }
            guard cells.count >= 2, trials > 0 else { return nil }
            let ratio = cells.reduce(0) { $0 + $1.value.successes } / trials
            let mean = cells.reduce(0) { $0 + $1.value.trials * rate($1.key) } / trials
            return Colour(
                u: cells.map { $0.value.successes - ratio * $0.value.trials },
                v: cells.map { $0.value.trials * (rate($0.key) - mean) }, trials: trials,
                mean: mean)
        }
        guard let newColour = linearised(new), let liveColour = linearised(live) else { return nil }
        let both = [newColour, liveColour]
        let covariance = both.reduce(0) { sum, colour in sum + zip(colour.u, colour.v).reduce(0) { $0 + $1.0 * $1.1 } }
        let spread = both.reduce(0) { sum, colour in sum + colour.v.reduce(0) { $0 + $1 * $1 } }
        let theta = spread > 0 ? covariance / spread : 0
        let pooled =
            (newColour.mean * newColour.trials + liveColour.mean * liveColour.trials)
            / (newColour.trials + liveColour.trials)
        func estimate(_ colour: Colour) -> CovariateEstimate {
            let groups = Double(colour.u.count)
            let scale = groups / (groups - 1) / (colour.trials * colour.trials)
            return CovariateEstimate(
                shift: -theta * (colour.mean - pooled),
                adjustedVariance: scale * zip(colour.u, colour.v).reduce(0) { $0 + pow($1.0 - theta * $1.1, 2) },
                variance: scale * colour.u.reduce(0) { $0 + $1 * $1 })
        }
        return (theta, estimate(newColour), estimate(liveColour))
    }
}
