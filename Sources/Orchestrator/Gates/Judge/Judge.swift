public import Foundation
import RecEngineContract
import StrictYAML
import TextSafety
import Traffic
public import PipelineSchema
import Provenance

/// Classifies metrics and decides steps from counts: pure, so that it can be tested against
/// reference values and replayed by `orchestrate explain`.
struct JudgeRules {
    var spec: JudgeSpec

    var alpha: Double { 1 - spec.confidence }

    /// The counts of one colour for a proportion, or the cumulative buckets of a histogram.
    enum Counts: Sendable {
        case proportion(successes: Double, trials: Double)
        /// (upper bound `le`, cumulative count), sorted by bound; +Inf last.
        case histogram([(le: Double, count: Double)])
        /// Successes and trials per group of units (the values of the metric's `units` label).
        case grouped([String: (successes: Double, trials: Double)])
        /// Interleaved users who preferred this colour (wins), the other one (losses), neither.
        case preferences(wins: Double, losses: Double, ties: Double)
    }

    /// Compares one proportion (successes over trials of each colour). A histogram's relative
    /// effect is taken against the nominal share above the quantile (5 % above p95): the live
    /// colour's share at its bucket boundary can be far smaller, which would make any margin moot.
    func compare(
        _ metric: JudgeSpec.Metric, quantile: Double? = nil, threshold: Double? = nil, new: (Double, Double), live: (Double, Double),
        variance: Double? = nil
    ) -> MetricJudgement.Comparison {
        let reference = quantile.map { 1 - $0 } ?? Statistics.adjustedRate(live.0, live.1)
        let margin = metric.absolute ? metric.effect : metric.effect * reference
        let difference = Statistics.difference(
            newSuccesses: new.0, newTrials: new.1, liveSuccesses: live.0, liveTrials: live.1, mixture: margin * margin, alpha: alpha,
            variance: variance)
        var classification: MetricJudgement.Classification
        if new.1 < Double(metric.minTrials) || live.1 < Double(metric.minTrials) {
            classification = .noData
        } else {
            switch metric.bad {
            case .decrease:
                classification = difference.upper < -margin ? .low : difference.lower > -margin ? .pass : .undecided
            case .increase:
                classification = difference.lower > margin ? .high : difference.upper < margin ? .pass : .undecided
            }
        }
        return .init(
            quantile: quantile, threshold: threshold, newSuccesses: new.0, newTrials: new.1, liveSuccesses: live.0, liveTrials: live.1,
            difference: difference.estimate, lower: difference.lower, upper: difference.upper, margin: margin, classification: classification)
    }

    /// Judges a metric from the counts each colour gathered since the step started.
    func judge(_ metric: JudgeSpec.Metric, new: Counts?, live: Counts?) -> MetricJudgement {
        var judgement = MetricJudgement(
            metric: metric.name, classification: .noData, comparisons: [], rule: "", critical: metric.critical, weight: metric.weight)
        switch (metric.kind, new, live) {
        case (.proportion, .proportion(let ns, let nt)?, .proportion(let ls, let lt)?):
            judgement.comparisons = [compare(metric, new: (ns, nt), live: (ls, lt))]
        case (.proportion, .grouped(let newGroups)?, .grouped(let liveGroups)?):
            func total(_ groups: [String: (successes: Double, trials: Double)]) -> (Double, Double) {
                groups.values.reduce((0, 0)) { ($0.0 + $1.successes, $0.1 + $1.trials) }
            }
            let newVariance = Statistics.clusteredVariance(Array(newGroups.values))
            let liveVariance = Statistics.clusteredVariance(Array(liveGroups.values))
            let variance = newVariance.flatMap { new in liveVariance.map { new + $0 } }
            judgement.comparisons = [compare(metric, new: total(newGroups), live: total(liveGroups), variance: variance)]
        case (.histogram(_, let quantiles), .histogram(let newBuckets)?, .histogram(let liveBuckets)?):
            let liveTotal = liveBuckets.last?.count ?? 0
            let newTotal = newBuckets.last?.count ?? 0
            for quantile in quantiles {
                // The live colour's quantile, as the bucket boundary that first holds that share.
                guard liveTotal > 0, let boundary = liveBuckets.first(where: { $0.le.isFinite && $0.count >= quantile * liveTotal }) else {
                    judgement.comparisons.append(compare(metric, quantile: quantile, new: (0, 0), live: (0, 0)))
                    continue
                }
                let newBelow = newBuckets.first { $0.le == boundary.le }?.count ?? 0
                judgement.comparisons.append(
                    compare(metric, quantile: quantile, threshold: boundary.le, new: (newTotal - newBelow, newTotal), live: (liveTotal - boundary.count, liveTotal)))
            }
        case (.interleaving, .preferences(let wins, let losses, let ties)?, _):
            return judgePreference(metric, wins: wins, losses: losses, ties: ties, judgement: judgement)
        default:
            judgement.rule = "no data for a colour"
            return judgement
        }
        let classes = judgement.comparisons.map(\.classification)
        let worst = classes.first { $0 == .high || $0 == .low }
        judgement.classification =
            worst ?? (classes.contains(.noData) ? .noData : classes.contains(.undecided) ? .undecided : .pass)
        judgement.rule = describe(metric, judgement)
        return judgement
    }

    func describe(_ metric: JudgeSpec.Metric, _ judgement: MetricJudgement) -> String {
        let level = "\(formatNumber(spec.confidence * 100)) %"
        let worse = metric.bad == .decrease ? "below" : "above"
        let margin = metric.absolute ? "\(formatNumber(metric.effect)) (absolute)" : "\(formatNumber(metric.effect * 100)) % of live"
        let parts = judgement.comparisons.map { comparison -> String in
            let at = comparison.quantile.map { "above live's p\(formatNumber($0 * 100)) (\(comparison.threshold.map { formatNumber($0) } ?? "?") s): " } ?? ""
            return at + String(
                format: "new %.0f/%.0f, live %.0f/%.0f, difference %+.4f in [%+.4f, %+.4f], margin %.4f", comparison.newSuccesses, comparison.newTrials,
                comparison.liveSuccesses, comparison.liveTrials, comparison.difference, comparison.lower, comparison.upper, comparison.margin)
        }.joined(separator: "; ")
        let verdict =
            switch judgement.classification {
            case .pass: "not \(worse) live by more than \(margin) at \(level)"
            case .high, .low: "\(worse) live by more than \(margin) at \(level)"
            case .noData: "fewer than \(metric.minTrials) trials for a colour"
            case .undecided: "the \(level) interval still straddles the margin (\(margin))"
            }
        return "\(judgement.classification.rawValue): \(verdict) — \(parts)"
    }

    /// The smallest regression a look with these trials can decide for a rate near `rate`: the
    /// margin m at which the always-valid interval (tuned to m) is no wider than m.
    func detectableMargin(rate: Double, newTrials: Double, liveTrials: Double) -> Double {
        var low = 1e-9
        var high = 1.0
        for _ in 0..<80 {
            let margin = (low + high) / 2
            let width = Statistics.detectableMargin(rate: rate, newTrials: newTrials, liveTrials: liveTrials, mixture: margin * margin, alpha: alpha)
            if width <= margin { high = margin } else { low = margin }
        }
        return high
    }

    /// The power of one step for each metric with a known baseline: the regression detectable
    /// after `seconds` at `weight` percent of `rate` requests per second, in the unit of the
    /// metric's `effect` (relative to live, or absolute), and whether it reaches the declared one.
    func power(rate: Double, weight: Int, seconds: Double) -> [RunPlan.Power] {
        spec.metrics.compactMap { metric -> RunPlan.Power? in
            let requests = rate * seconds
            let newTrials = requests * Double(weight) / 100 * metric.trialsPerRequest
            let liveTrials = requests * Double(100 - weight) / 100 * metric.trialsPerRequest
            let rates: [Double]
            switch metric.kind {
            case .proportion:
                guard let baseline = metric.baseline else { return nil }
                rates = [baseline]
            case .histogram(_, let quantiles):
                rates = quantiles.map { 1 - $0 }
            case .interleaving:
                // How many users come to prefer a colour per second is not known in advance.
                return nil
            }
            let worst = rates.map { rate -> Double in
                let margin = detectableMargin(rate: rate, newTrials: newTrials, liveTrials: liveTrials)
                return metric.absolute ? margin : margin / rate
            }.max() ?? .infinity
            return RunPlan.Power(metric: metric.name, newTrials: newTrials, detectable: worst, declared: metric.effect, absolute: metric.absolute)
        }
    }

    /// Decides a step from the judgements of one look: a critical regression fails at once; once
    /// every metric is decided (or at the deadline, where undecided counts as not passed), the
    /// weighted score is compared with `pass` and `marginal`.
    func decide(_ judgements: [MetricJudgement], final: Bool) -> (decision: JudgeLook.Decision, score: Double?, rule: String) {
        if let critical = judgements.first(where: { $0.critical && ($0.classification == .high || $0.classification == .low) }) {
            return (.fail, nil, "critical metric \(critical.metric) is \(critical.classification.rawValue)")
        }
        let pending = judgements.filter { $0.classification == .undecided || ($0.classification == .noData && !final) }
        if !pending.isEmpty && !final {
            return (.undecided, nil, "waiting for \(pending.map(\.metric).joined(separator: ", "))")
        }
        var counted = 0.0
        var passed = 0.0
        var undecided = 0.0
        for judgement in judgements {
            let metric = spec.metrics.first { $0.name == judgement.metric }
            switch judgement.classification {
            case .pass:
                counted += judgement.weight
                passed += judgement.weight
            case .noData where judgement.error != nil:
                // A query that failed, or counted something that is not a finite number, measured
                // nothing: it never passes, whatever onNoData says of an honest absence of data.
                counted += judgement.weight
            case .noData:
                switch metric?.onNoData ?? .fail {
                case .ignore: break
                case .fail: counted += judgement.weight
                case .pass:
                    counted += judgement.weight
                    passed += judgement.weight
                }
            case .undecided:
                counted += judgement.weight
                undecided += judgement.weight
            case .high, .low:
                counted += judgement.weight
            }
        }
        guard counted > 0 else { return (.inconclusive, nil, "no metric could be counted (every one NoData, ignored)") }
        // Undecided metrics count as not passed; a step fails on the score only if it would fail
        // even with every undecided metric passed.
        let score = 100 * passed / counted
        let best = 100 * (passed + undecided) / counted
        let text = "score \(formatNumber((score * 10).rounded() / 10)) (pass ≥ \(formatNumber(spec.pass)), marginal ≥ \(formatNumber(spec.marginal)))"
        if score >= spec.pass { return (.pass, score, text + ": pass") }
        if best < spec.marginal { return (.fail, score, text + ": fail") }
        return (.inconclusive, score, text + (undecided > 0 ? ": inconclusive, undecided at the deadline" : ": inconclusive"))
    }
}

/// The judge's reads for one step: every metric's counters of a colour, and what a colour
/// gathered since the step started. What it decides is `JudgeRules`' (called by the rollout's
/// machine at every look); the reads are `PrometheusMetrics`'.
struct StepJudge: Sendable {
    var spec: JudgeSpec
    var prometheus: PrometheusClient
    var target: String
    var live: String
    /// nginx's counts of the step's interleaving experiment (nil when it has none yet).
    var interleaving: @Sendable () async throws -> InterleavingCounts? = { nil }

    var rules: JudgeRules { JudgeRules(spec: spec) }

    /// Every metric's counters for a colour; a metric whose query failed (or counted something
    /// that is not a finite number) maps to nil and has its error, one without data maps to
    /// `.some(nil)`.
    func read(_ color: String) async -> (counts: [String: JudgeRules.Counts?], errors: [String: String]) {
        var counts: [String: JudgeRules.Counts?] = [:]
        var errors: [String: String] = [:]
        /// A count read with `query`: a value that is not finite is an error, not a count.
        func finite(_ sample: PrometheusClient.Sample) throws -> PrometheusClient.Sample {
            switch sample {
            case .value(let value) where !value.isFinite:
                throw PrometheusClient.QueryError(message: "the query returned \(formatMetric(value)), not a finite count")
            case .notANumber:
                throw PrometheusClient.QueryError(message: "the query returned NaN, not a finite count")
            default:
                return sample
            }
        }
        for metric in spec.metrics {
            do {
                switch metric.kind {
                case .proportion(let successes, let trials) where metric.units != nil:
                    let label = metric.units ?? ""
                    let total = try await prometheus.queryVector(trials.replacingOccurrences(of: "{{color}}", with: color))
                    let good = try await prometheus.queryVector(successes.replacingOccurrences(of: "{{color}}", with: color))
                    var groups: [String: (successes: Double, trials: Double)] = [:]
                    for entry in total { groups[entry.labels[label] ?? "", default: (0, 0)].trials += entry.value }
                    for entry in good { groups[entry.labels[label] ?? "", default: (0, 0)].successes += entry.value }
                    counts[metric.name] = total.isEmpty ? .some(nil) : .some(.grouped(groups))
                case .proportion(let successes, let trials):
                    let total = try finite(await prometheus.query(trials.replacingOccurrences(of: "{{color}}", with: color)))
                    let good = try finite(await prometheus.query(successes.replacingOccurrences(of: "{{color}}", with: color)))
                    if case .value(let trialCount) = total {
                        // No series of successes (no 5xx yet) is zero of them.
                        let successCount: Double = if case .value(let value) = good { value } else { 0 }
                        counts[metric.name] = .some(.proportion(successes: successCount, trials: trialCount))
                    } else {
                        counts[metric.name] = .some(nil)
                    }
                case .histogram(let buckets, _):
                    let series = try await prometheus.queryVector(buckets.replacingOccurrences(of: "{{color}}", with: color))
                    let cumulative = series.compactMap { entry -> (le: Double, count: Double)? in
                        guard let le = entry.labels["le"].flatMap({ $0 == "+Inf" ? Double.infinity : Double($0) }) else { return nil }
                        return (le, entry.value)
                    }.sorted { $0.le < $1.le }
                    counts[metric.name] = cumulative.isEmpty ? .some(nil) : .some(.histogram(cumulative))
                case .interleaving:
                    if let interleaved = try await interleaving(), let other = interleaved.colors.first(where: { $0 != color }) {
                        counts[metric.name] = .some(
                            .preferences(
                                wins: Double(interleaved.prefer[color] ?? 0), losses: Double(interleaved.prefer[other] ?? 0), ties: Double(interleaved.ties)))
                    } else {
                        counts[metric.name] = .some(nil)
                    }
                }
            } catch {
                counts[metric.name] = nil as JudgeRules.Counts??
                // Recorded at every look: kept short.
                errors[metric.name] = OutsideText.bounded("\(error)", limit: 300)
            }
        }
        return (counts, errors)
    }

    /// What a colour gathered since the step started (a counter that restarted counts from zero).
    static func delta(_ now: JudgeRules.Counts?, since start: JudgeRules.Counts?) -> JudgeRules.Counts? {
        switch (now, start) {
        case (.proportion(let s, let t)?, .proportion(let s0, let t0)?):
            return t >= t0 && s >= s0 ? .proportion(successes: s - s0, trials: t - t0) : .proportion(successes: s, trials: t)
        case (.histogram(let buckets)?, .histogram(let before)?):
            let earlier = Dictionary(before.map { ($0.le, $0.count) }, uniquingKeysWith: { first, _ in first })
            let restarted = buckets.contains { $0.count < (earlier[$0.le] ?? 0) }
            return .histogram(buckets.map { ($0.le, restarted ? $0.count : $0.count - (earlier[$0.le] ?? 0)) })
        case (.grouped(let groups)?, .grouped(let before)?):
            var result: [String: (successes: Double, trials: Double)] = [:]
            for (key, value) in groups {
                let earlier = before[key] ?? (0, 0)
                result[key] = value.trials >= earlier.trials && value.successes >= earlier.successes
                    ? (value.successes - earlier.successes, value.trials - earlier.trials) : value
            }
            return .grouped(result)
        case (let now?, nil):
            return now
        default:
            return nil
        }
    }
}

extension Pipeline {
    /// The traffic steps whose judge cannot detect a metric's declared regression even at
    /// `maxWait`, with `judge.expectedRate` requests per second (empty without one).
    public func judgePowerWarnings() -> [String] {
        guard let judge = analysis?.judge, let rate = judge.expectedRate, let traffic else { return [] }
        let rules = JudgeRules(spec: judge)
        let seconds = max(traffic.wait.duration.seconds, judge.maxWait.duration.seconds)
        return traffic.steps.filter { $0 < 100 }.flatMap { weight in
            rules.power(rate: rate, weight: weight, seconds: seconds).filter { !$0.sufficient }.map { power in
                let unit = power.absolute ? "" : " (relative to live)"
                return "analysis.judge: at the \(weight) % step, \(power.metric) can only detect a regression of \(formatNumber((power.detectable * 1000).rounded() / 1000))\(unit) "
                    + "within maxWait \(judge.maxWait) at \(formatNumber(rate)) requests/s, not the declared \(formatNumber(power.declared)): the step will end inconclusive "
                    + "unless the effect is larger; raise maxWait or the traffic, or declare a larger effect"
            }
        }
    }
}
