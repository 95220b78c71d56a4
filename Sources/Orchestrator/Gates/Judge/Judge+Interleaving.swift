import Foundation
import PipelineSchema
import Provenance

extension Statistics {
    /// The Beta(a, a) mixture of `preferenceInterval` tuned to a margin: its standard deviation
    /// around 1/2 is the margin, as the normal mixture of `difference` has the margin's variance.
    static func preferencePrior(margin: Double) -> Double {
        max(0.5, (1 / (4 * margin * margin) - 1) / 2)
    }

    /// The always-valid confidence interval for p, the probability that a user with a preference
    /// prefers the new colour, after `wins` such users and `losses` who preferred the live one: the
    /// sign test's mixture sequential probability ratio test with a Beta(`prior`, `prior`) mixture,
    /// exact for any number of users (Robbins 1970; Howard, Ramdas, McAuliffe, Sekhon,
    /// "Time-uniform, nonparametric, nonasymptotic confidence sequences", 2021). The mixture
    /// likelihood ratio against p, `B(w + a, l + a) / B(a, a) / (p^w (1 − p)^l)`, is a martingale
    /// of mean 1 when p is true, so by Ville's inequality it ever exceeds 1/alpha with probability
    /// at most alpha: the set of p where it stays below holds the true p at every look at once.
    static func preferenceInterval(
        wins: Double, losses: Double, prior: Double, alpha: Double
    ) -> (lower: Double, upper: Double) {
        func logBeta(_ x: Double, _ y: Double) -> Double { lgamma(x) + lgamma(y) - lgamma(x + y) }
        // p is inside while the log-likelihood stays above this.
        let threshold = logBeta(wins + prior, losses + prior) - logBeta(prior, prior) + log(alpha)
        func logLikelihood(_ p: Double) -> Double {
            (wins > 0 ? wins * log(p) : 0) + (losses > 0 ? losses * log1p(-p) : 0)
        }
        let estimate = wins + losses > 0 ? wins / (wins + losses) : 0.5
        // The log-likelihood is concave with its maximum (above the threshold) at the estimate.
        func boundary(towards outside: Double) -> Double {
            var inside = estimate
            var outside = outside
            for _ in 0..<100 {
                let middle = (inside + outside) / 2
                if logLikelihood(middle) > threshold { inside = middle } else { outside = middle }
            }
            return outside
        }
        return (wins > 0 ? boundary(towards: 0) : 0, losses > 0 ? boundary(towards: 1) : 1)
    }
}

extension JudgeRules {
    /// Judges an interleaving metric from the users who preferred each colour (ties tell nothing
    /// of which is better and are left out, as in a sign test): the new colour's share of them
    /// against 1/2, the share at which both rank equally well. A relative `effect` is taken of
    /// that 1/2 (0.1: a share of 45 % is the regression that matters).
    func judgePreference(
        _ metric: JudgeSpec.Metric, wins: Double, losses: Double, ties: Double, judgement: MetricJudgement
    ) -> MetricJudgement {
        var judgement = judgement
        let margin = metric.absolute ? metric.effect : metric.effect * 0.5
        let decided = wins + losses
        let interval = Statistics.preferenceInterval(
            wins: wins, losses: losses, prior: Statistics.preferencePrior(margin: margin), alpha: alpha)
        let difference = (decided > 0 ? wins / decided : 0.5) - 0.5
        let (lower, upper) = (interval.lower - 0.5, interval.upper - 0.5)
        var classification: MetricJudgement.Classification
        if decided < Double(metric.minTrials) {
            classification = .noData
        } else {
            switch metric.bad {
            case .decrease:
                classification = upper < -margin ? .low : lower > -margin ? .pass : .undecided
            case .increase:
                classification = lower > margin ? .high : upper < margin ? .pass : .undecided
            }
        }
        judgement.comparisons = [
            .init(
                quantile: nil, threshold: nil, newSuccesses: wins, newTrials: decided, liveSuccesses: losses,
                liveTrials: decided, difference: difference,
                lower: lower, upper: upper, margin: margin, classification: classification)
        ]
        judgement.classification = classification
        let level = "\(formatNumber(spec.confidence * 100)) %"
        let share = "\(formatNumber(((0.5 - margin) * 1000).rounded() / 10)) %"
        let verdict =
            switch classification {
            case .pass:
                metric.bad == .decrease
                    ? "the new colour is preferred by more than \(share) of the users with a preference, at \(level)"
                    : "not preferred by more than \(formatNumber(((0.5 + margin) * 1000).rounded() / 10)) %, at \(level)"
            case .low: "the new colour is preferred by fewer than \(share) of the users with a preference, at \(level)"
            case .high:
                "the new colour is preferred by more than \(formatNumber(((0.5 + margin) * 1000).rounded() / 10)) % of the users with a preference, at \(level)"
            case .noData: "fewer than \(metric.minTrials) users with a preference"
            case .undecided: "the \(level) interval still straddles the margin"
            }
        judgement.rule =
            "\(classification.rawValue): \(verdict) — interleaved users preferring new \(Int(wins)), live \(Int(losses)), ties \(Int(ties)); "
            + String(
                format: "share of new − 1/2 %+.4f in [%+.4f, %+.4f], margin %.4f", difference, lower, upper, margin)
        return judgement
    }
}
