public import Foundation
public import PipelineSchema
import Provenance
import RecEngineContract
import StrictYAML
import TextSafety
import Traffic

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
        _ metric: JudgeSpec.Metric, quantile: Double? = nil, threshold: Double? = nil, new: (Double, Double),
        live: (Double, Double),
        variance: Double? = nil, shift: Double = 0
    ) -> MetricJudgement.Comparison {
        let reference = quantile.map { 1 - $0 } ?? Statistics.adjustedRate(live.0, live.1)
        let margin = metric.absolute ? metric.effect : metric.effect * reference
        let difference = Statistics.difference(
            newSuccesses: new.0, newTrials: new.1, liveSuccesses: live.0, liveTrials: live.1, mixture: margin * margin,
            alpha: alpha,
            variance: variance, shift: shift)
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
            quantile: quantile, threshold: threshold, newSuccesses: new.0, newTrials: new.1, liveSuccesses: live.0,
            liveTrials: live.1,
            difference: difference.estimate, lower: difference.lower, upper: difference.upper, margin: margin,
            classification: classification)
    }

    /// Judges a metric from the counts each colour gathered since the step started.
    ///
    /// - Parameter covariate: for a grouped metric with `cuped`, each group's successes and
    ///   trials on the live colour in the window before the step.
    func judge(
        _ metric: JudgeSpec.Metric, new: Counts?, live: Counts?,
        covariate: [String: (successes: Double, trials: Double)]? = nil
    ) -> MetricJudgement {
        var judgement = MetricJudgement(
            metric: metric.name, classification: .noData, comparisons: [], rule: "", critical: metric.critical,
            weight: metric.weight)
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
            if let window = metric.cuped, let covariate,
                let adjusted = Statistics.cuped(new: newGroups, live: liveGroups, covariate: covariate)
            {
                let plain = compare(metric, new: total(newGroups), live: total(liveGroups), variance: variance)
                let comparison = compare(
                    metric, new: total(newGroups), live: total(liveGroups),
                    variance: adjusted.new.adjustedVariance + adjusted.live.adjustedVariance,
                    shift: adjusted.new.shift - adjusted.live.shift)
                // As the intervals use them (never below independent trials'): their squared widths.
                let before = pow(plain.upper - plain.lower, 2)
                let reduction =
                    before > 0 && before.isFinite ? 1 - pow(comparison.upper - comparison.lower, 2) / before : 0
                judgement.cuped = CovariateAdjustment(
                    window: "\(window)", theta: adjusted.theta, newShift: adjusted.new.shift,
                    liveShift: adjusted.live.shift, varianceReduction: reduction)
                judgement.comparisons = [comparison]
            } else {
                judgement.comparisons = [
                    compare(metric, new: total(newGroups), live: total(liveGroups), variance: variance)
                ]
            }
        case (.histogram(_, let quantiles), .histogram(let newBuckets)?, .histogram(let liveBuckets)?):
            let liveTotal = liveBuckets.last?.count ?? 0
            let newTotal = newBuckets.last?.count ?? 0
            for quantile in quantiles {
                // The live colour's quantile, as the bucket boundary that first holds that share.
                guard liveTotal > 0,
                    let boundary = liveBuckets.first(where: { $0.le.isFinite && $0.count >= quantile * liveTotal })
                else {
                    judgement.comparisons.append(compare(metric, quantile: quantile, new: (0, 0), live: (0, 0)))
                    continue
                }
                // With a floor, the new colour's answers count from live's quantile plus the floor:
                // a tail slower by less than the floor is no regression, however many it holds.
                let floor = metric.floor ?? 0
                let counted =
                    floor > 0 ? Self.bound(atLeast: boundary.le + floor, in: newBuckets) ?? boundary.le : boundary.le
                let newBelow = newBuckets.first { $0.le == counted }?.count ?? 0
                var comparison = compare(
                    metric, quantile: quantile, threshold: boundary.le, new: (newTotal - newBelow, newTotal),
                    live: (liveTotal - boundary.count, liveTotal))
                if floor > 0 { comparison.newThreshold = counted }
                judgement.comparisons.append(comparison)
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

    /// The first finite bucket bound at or above `value` (within a rounding error: 0.005 + 0.005
    /// is the 0.01 bound), else the largest finite one: a floor past the last bucket still counts
    /// the answers slower than every finite bound.
    static func bound(atLeast value: Double, in buckets: [(le: Double, count: Double)]) -> Double? {
        let finite = buckets.map(\.le).filter(\.isFinite)
        return finite.first { $0 >= value * (1 - 1e-9) } ?? finite.last
    }

    func describe(_ metric: JudgeSpec.Metric, _ judgement: MetricJudgement) -> String {
        let level = "\(formatNumber(spec.confidence * 100)) %"
        let worse = metric.bad == .decrease ? "below" : "above"
        let margin =
            metric.absolute
            ? "\(formatNumber(metric.effect)) (absolute)" : "\(formatNumber(metric.effect * 100)) % of live"
        let parts = judgement.comparisons.map { comparison -> String in
            let floor =
                comparison.newThreshold.map {
                    ", new counted above \(formatNumber($0)) s (floor \(formatNumber(metric.floor ?? 0)) s)"
                } ?? ""
            let at =
                comparison.quantile.map {
                    "above live's p\(formatNumber($0 * 100)) (\(comparison.threshold.map { formatNumber($0) } ?? "?") s\(floor)): "
                } ?? ""
            return at
                + String(
                    format: "new %.0f/%.0f, live %.0f/%.0f, difference %+.4f in [%+.4f, %+.4f], margin %.4f",
                    comparison.newSuccesses, comparison.newTrials,
                    comparison.liveSuccesses, comparison.liveTrials, comparison.difference, comparison.lower,
                    comparison.upper, comparison.margin)
        }.joined(separator: "; ")
        let verdict =
            switch judgement.classification {
            case .pass: "not \(worse) live by more than \(margin) at \(level)"
            case .high, .low: "\(worse) live by more than \(margin) at \(level)"
            case .noData: "fewer than \(metric.minTrials) trials for a colour"
            case .undecided: "the \(level) interval still straddles the margin (\(margin))"
            }
        let cuped =
            judgement.cuped.map {
                "; CUPED on the \($0.window) before the step: "
                    + String(format: "variance %+.0f %%, θ %.3g", -$0.varianceReduction * 100, $0.theta)
            } ?? ""
        return "\(judgement.classification.rawValue): \(verdict) — \(parts)\(cuped)"
    }

    /// The smallest regression a look with these trials can decide for a rate near `rate`: the
    /// margin m at which the always-valid interval (tuned to m) is no wider than m.
    func detectableMargin(rate: Double, newTrials: Double, liveTrials: Double) -> Double {
        var low = 1e-9
        var high = 1.0
        for _ in 0..<80 {
            let margin = (low + high) / 2
            let width = Statistics.detectableMargin(
                rate: rate, newTrials: newTrials, liveTrials: liveTrials, mixture: margin * margin, alpha: alpha)
            if width <= margin { high = margin } else { low = margin }
        }
        return high
    }

    /// The power of one step for each metric with a known baseline: the regression detectable
    /// after `seconds` at `weight` percent of `rate` requests per second, in the unit of the
    /// metric's `effect` (relative to live, or absolute), and whether it reaches the declared one.
    ///
    /// A metric measured between groups of users (`units`) counts users, not trials: one user's
    /// recommendations are not independent, so a thousand requests of the same hundred users
    /// decide no more than those hundred users do. Each user counts as one trial of the rate (the
    /// most a user's own rate can vary: a conservative figure), at `usersPerMinute`; without it
    /// such a metric has no figure.
    func power(rate: Double, weight: Int, seconds: Double) -> [RunPlan.Power] {
        spec.metrics.compactMap { metric -> RunPlan.Power? in
            // At 0 % (the interleaving step) the A/B metrics are not judged: nothing to power.
            if weight == 0 && metric.kind != .interleaving { return nil }
            // Units (trials or users) per second reaching the service.
            let perSecond: Double
            if metric.units != nil {
                guard let users = spec.usersPerMinute else { return nil }
                perSecond = users / 60
            } else {
                perSecond = rate * metric.trialsPerRequest
            }
            let newTrials = perSecond * seconds * Double(weight) / 100
            let liveTrials = perSecond * seconds * Double(100 - weight) / 100
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
            let worst =
                rates.map { rate -> Double in
                    let margin = detectableMargin(rate: rate, newTrials: newTrials, liveTrials: liveTrials)
                    return metric.absolute ? margin : margin / rate
                }.max() ?? .infinity
            // What the new colour needs for the declared effect: the most any of its rates needs.
            let needed =
                rates.map { rate in
                    neededTrials(
                        rate: rate, margin: metric.absolute ? metric.effect : metric.effect * rate, weight: weight)
                }.max() ?? .infinity
            let share = perSecond * Double(weight) / 100
            return RunPlan.Power(
                metric: metric.name, newTrials: newTrials, detectable: worst, declared: metric.effect,
                absolute: metric.absolute,
                unit: metric.units != nil ? "users" : "trials", neededNew: needed.isFinite ? needed : nil,
                neededSeconds: needed.isFinite && share > 0 ? needed / share : nil)
        }
    }

    /// The trials (or users) the new colour needs at `weight` percent (the live colour getting
    /// the rest) for the always-valid interval to decide a regression of `margin` (absolute) of a
    /// rate near `rate`: infinity when even 1e12 cannot.
    func neededTrials(rate: Double, margin: Double, weight: Int) -> Double {
        guard weight > 0 && weight < 100, margin > 0 else { return .infinity }
        let liveShare = Double(100 - weight) / Double(weight)
        func decides(_ trials: Double) -> Bool {
            Statistics.detectableMargin(
                rate: rate, newTrials: trials, liveTrials: trials * liveShare, mixture: margin * margin, alpha: alpha)
                <= margin
        }
        var high = 1.0
        while !decides(high) {
            high *= 2
            if high > 1e12 { return .infinity }
        }
        var low = high / 2
        for _ in 0..<60 where high - low > 0.5 {
            let middle = (low + high) / 2
            if decides(middle) { high = middle } else { low = middle }
        }
        return high.rounded(.up)
    }

    /// Decides a step from the judgements of one look: a critical regression fails at once; once
    /// every metric is decided (or at the deadline, where undecided counts as not passed), the
    /// weighted score is compared with `pass` and `marginal`.
    func decide(
        _ judgements: [MetricJudgement], final: Bool
    ) -> (decision: JudgeLook.Decision, score: Double?, rule: String) {
        if let critical = judgements.first(where: {
            $0.critical && ($0.classification == .high || $0.classification == .low)
        }) {
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
        let text =
            "score \(formatNumber((score * 10).rounded() / 10)) (pass ≥ \(formatNumber(spec.pass)), marginal ≥ \(formatNumber(spec.marginal)))"
        // A critical metric is the question the release exists to answer: the others' score
        // passes a step without its answer only when the pipeline says so.
        let open = judgements.filter { judgement in
            guard judgement.critical else { return false }
            let onNoData = spec.metrics.first { $0.name == judgement.metric }?.onNoData ?? .fail
            return judgement.classification == .undecided
                || (judgement.classification == .noData && (judgement.error != nil || onNoData != .pass))
        }.map { "\($0.metric) \($0.classification.rawValue)" }.joined(separator: ", ")
        if score >= spec.pass {
            guard !open.isEmpty else { return (.pass, score, text + ": pass") }
            if spec.allowsUndecidedCritical {
                return (
                    .pass, score,
                    text
                        + ": pass without the critical metric deciding (\(open) at the deadline; allowUndecidedCritical: true)"
                )
            }
            return (
                .inconclusive, score,
                text
                    + ": inconclusive: the critical metric did not decide (\(open) at the deadline); passing on the other metrics needs allowUndecidedCritical: true"
            )
        }
        if best < spec.marginal { return (.fail, score, text + ": fail") }
        if !open.isEmpty {
            return (
                .inconclusive, score,
                text + ": inconclusive, the critical metric did not decide (\(open) at the deadline)"
            )
        }
        return (
            .inconclusive, score,
            text + (undecided > 0 ? ": inconclusive, undecided at the deadline" : ": inconclusive")
        )
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
                throw PrometheusClient.QueryError(
                    message: "the query returned \(formatMetric(value)), not a finite count")
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
                    let total = try await prometheus.queryVector(
                        trials.replacingOccurrences(of: "{{color}}", with: color))
                    let good = try await prometheus.queryVector(
                        successes.replacingOccurrences(of: "{{color}}", with: color))
                    var groups: [String: (successes: Double, trials: Double)] = [:]
                    for entry in total { groups[entry.labels[label] ?? "", default: (0, 0)].trials += entry.value }
                    for entry in good { groups[entry.labels[label] ?? "", default: (0, 0)].successes += entry.value }
                    counts[metric.name] = total.isEmpty ? .some(nil) : .some(.grouped(groups))
                case .proportion(let successes, let trials):
                    let total = try finite(
                        await prometheus.query(trials.replacingOccurrences(of: "{{color}}", with: color)))
                    let good = try finite(
                        await prometheus.query(successes.replacingOccurrences(of: "{{color}}", with: color)))
                    if case .value(let trialCount) = total {
                        // No series of successes (no 5xx yet) is zero of them.
                        let successCount: Double = if case .value(let value) = good { value } else { 0 }
                        counts[metric.name] = .some(.proportion(successes: successCount, trials: trialCount))
                    } else {
                        counts[metric.name] = .some(nil)
                    }
                case .histogram(let buckets, _):
                    let series = try await prometheus.queryVector(
                        buckets.replacingOccurrences(of: "{{color}}", with: color))
                    let cumulative = series.compactMap { entry -> (le: Double, count: Double)? in
                        guard let le = entry.labels["le"].flatMap({ $0 == "+Inf" ? Double.infinity : Double($0) })
                        else { return nil }
                        return (le, entry.value)
                    }.sorted { $0.le < $1.le }
                    counts[metric.name] = cumulative.isEmpty ? .some(nil) : .some(.histogram(cumulative))
                case .interleaving:
                    if let interleaved = try await interleaving(),
                        let other = interleaved.colors.first(where: { $0 != color })
                    {
                        counts[metric.name] = .some(
                            .preferences(
                                wins: Double(interleaved.prefer[color] ?? 0),
                                losses: Double(interleaved.prefer[other] ?? 0), ties: Double(interleaved.ties)))
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

    /// The sample ratio check's counts of a colour (`users`, `requests`), each by group of units
    /// ("" without `units`), with `{{window}}` the seconds since the step started (`5s`); a count
    /// whose query failed, or returned no series, is left out.
    func readRatios(
        _ color: String, window seconds: Double = 0, at time: Date? = nil
    ) async -> [String: [String: Double]] {
        guard let ratio = spec.sampleRatio else { return [:] }
        var counts: [String: [String: Double]] = [:]
        let window = "\(max(1, Int(seconds.rounded(.down))))s"
        for (name, query) in [("users", ratio.users), ("requests", ratio.requests)] {
            guard let query,
                let series = try? await prometheus.queryVector(
                    query.replacingOccurrences(of: "{{color}}", with: color).replacingOccurrences(
                        of: "{{window}}", with: window), at: time),
                !series.isEmpty
            else { continue }
            var groups: [String: Double] = [:]
            for entry in series where entry.value.isFinite {
                groups[ratio.units.flatMap { entry.labels[$0] } ?? "", default: 0] += entry.value
            }
            counts[name] = groups
        }
        return counts
    }

    /// Each group's successes and trials on the live colour in the `cuped` window before now, for
    /// every grouped metric with `cuped` (a metric whose queries fail has none).
    func readCovariates() async -> [String: [String: (successes: Double, trials: Double)]] {
        var covariates: [String: [String: (successes: Double, trials: Double)]] = [:]
        let now = Date()
        for metric in spec.metrics {
            guard let window = metric.cuped, let label = metric.units,
                case .proportion(let successes, let trials) = metric.kind
            else { continue }
            let earlier = now.addingTimeInterval(-window.duration.seconds)
            func groups(_ query: String, at time: Date) async throws -> [String: Double] {
                var groups: [String: Double] = [:]
                for entry in try await prometheus.queryVector(
                    query.replacingOccurrences(of: "{{color}}", with: live), at: time)
                {
                    groups[entry.labels[label] ?? "", default: 0] += entry.value
                }
                return groups
            }
            guard let goodNow = try? await groups(successes, at: now), let allNow = try? await groups(trials, at: now),
                let goodBefore = try? await groups(successes, at: earlier),
                let allBefore = try? await groups(trials, at: earlier)
            else { continue }
            let good = Self.delta(goodNow, since: goodBefore)
            let all = Self.delta(allNow, since: allBefore)
            covariates[metric.name] = Dictionary(
                uniqueKeysWithValues: all.map { ($0.key, (successes: good[$0.key] ?? 0, trials: $0.value)) })
        }
        return covariates
    }

    /// What each group of a count gathered since `start` (a counter that restarted counts from zero).
    static func delta(_ now: [String: Double], since start: [String: Double]?) -> [String: Double] {
        guard let start else { return now }
        var result: [String: Double] = [:]
        for (key, value) in now {
            let earlier = start[key] ?? 0
            result[key] = value >= earlier ? value - earlier : value
        }
        return result
    }

    /// What a colour gathered since the step started (a counter that restarted counts from zero).
    static func delta(_ now: JudgeRules.Counts?, since start: JudgeRules.Counts?) -> JudgeRules.Counts? {
        switch (now, start) {
        case (.proportion(let s, let t)?, .proportion(let s0, let t0)?):
            return t >= t0 && s >= s0
                ? .proportion(successes: s - s0, trials: t - t0) : .proportion(successes: s, trials: t)
        case (.histogram(let buckets)?, .histogram(let before)?):
            let earlier = Dictionary(before.map { ($0.le, $0.count) }, uniquingKeysWith: { first, _ in first })
            let restarted = buckets.contains { $0.count < (earlier[$0.le] ?? 0) }
            return .histogram(buckets.map { ($0.le, restarted ? $0.count : $0.count - (earlier[$0.le] ?? 0)) })
        case (.grouped(let groups)?, .grouped(let before)?):
            var result: [String: (successes: Double, trials: Double)] = [:]
            for (key, value) in groups {
                let earlier = before[key] ?? (0, 0)
                result[key] =
                    value.trials >= earlier.trials && value.successes >= earlier.successes
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
        // A metric of users with no rate of users has no power figure: say so once.
        let unknown =
            judge.usersPerMinute == nil ? judge.metrics.filter { $0.units != nil && $0.kind != .interleaving } : []
        let missing = unknown.map { metric in
            "analysis.judge: \(metric.name) is measured between users (units: \(metric.units ?? "")), so its power counts users, not requests: "
                + "give usersPerMinute (users who reach the service per minute) for validate and the plan to say whether a step can decide it"
        }
        return missing
            + traffic.steps.filter { $0 > 0 && $0 < 100 }.flatMap { weight in
                rules.power(rate: rate, weight: weight, seconds: seconds).filter { !$0.sufficient }.map { power in
                    let unit = power.absolute ? "" : " (relative to live)"
                    let arrival =
                        power.unit == "users"
                        ? "\(formatNumber(judge.usersPerMinute ?? 0)) users/min" : "\(formatNumber(rate)) requests/s"
                    let needed =
                        power.neededNew.map { needed in
                            "; it would need about \(formatNumber(needed)) \(power.unit ?? "trials") on the new colour"
                                + (power.neededSeconds.map {
                                    " (\(formatNumber(($0 / 6).rounded(.up) / 10)) minutes at this rate)"
                                } ?? "")
                                + ", maxWait gives \(formatNumber(power.newTrials.rounded()))"
                        } ?? ""
                    return
                        "analysis.judge: at the \(weight) % step, \(power.metric) can only detect a regression of \(formatNumber((power.detectable * 1000).rounded() / 1000))\(unit) "
                        + "within maxWait \(judge.maxWait) at \(arrival), not the declared \(formatNumber(power.declared))\(needed): the step will end inconclusive "
                        + "unless the effect is larger; raise maxWait or the traffic, or declare a larger effect"
                }
            }
    }
}
