import Foundation
import PipelineSchema
import Provenance
import StrictYAML

/// Prometheus as the rollout's gates and judge read it: a gate's query, and the judge's counters
/// of both colours since each step started (the judgements; the machine decides from them); an
/// interleaving metric's counts are nginx's, of the step's own experiment.
actor PrometheusMetrics: MetricsSource {
    /// nil without an `analysis:` section (no gate is then measured).
    let prometheus: PrometheusClient?
    /// The judge's reads of each judged step, by its index (none without a judge).
    let judges: [Int: StepJudge]
    private var baselines:
        [Int: (started: ContinuousClock.Instant, new: [String: JudgeRules.Counts?], live: [String: JudgeRules.Counts?])] =
            [:]
    /// The sample ratio check's counts of each colour when each judged step started.
    /// The CUPED covariates of each judged step's grouped metrics, read when it started.
    private var covariates: [Int: [String: [String: (successes: Double, trials: Double)]]] = [:]
    private var ratioBaselines: [Int: (new: [String: [String: Double]], live: [String: [String: Double]])] = [:]

    /// The shortest window, in seconds, over which the sample ratio check counts.
    static let shortestRatioWindow = 10.0

    init(prometheus: PrometheusClient?, judges: [Int: StepJudge]) {
        self.prometheus = prometheus
        self.judges = judges
    }

    nonisolated func sample(_ query: String) async -> RolloutMachine.GateSample {
        guard let prometheus else { return .error("no Prometheus to ask (the pipeline has no analysis section)") }
        do {
            switch try await prometheus.query(query) {
            case .value(let value): return .value(value)
            case .noData: return .noData
            case .notANumber: return .notANumber
            }
        } catch {
            return .error("\(error)")
        }
    }

    func startJudge(step: Int) async {
        guard let judge = judges[step] else { return }
        let started = ContinuousClock.now
        let new = await judge.read(judge.target).counts
        let live = await judge.read(judge.live).counts
        baselines[step] = (started, new, live)
        ratioBaselines[step] = (await judge.readRatios(judge.target), await judge.readRatios(judge.live))
        covariates[step] = await judge.readCovariates()
    }

    func lookJudge(step: Int) async -> RolloutMachine.JudgeObservation {
        guard let judge = judges[step], let baseline = baselines[step] else {
            return RolloutMachine.JudgeObservation(judgements: [], elapsed: 0, at: Date())
        }
        let elapsed = ContinuousClock.now - baseline.started
        let (nowNew, newErrors) = await judge.read(judge.target)
        let (nowLive, liveErrors) = await judge.read(judge.live)
        var judgements: [MetricJudgement] = []
        for metric in judge.spec.metrics {
            // An interleaving experiment starts with the step: its counts are the step's.
            let fresh = metric.kind == .interleaving
            let sinceNew: JudgeRules.Counts? = fresh ? nil : baseline.new[metric.name] ?? nil
            let sinceLive: JudgeRules.Counts? = fresh ? nil : baseline.live[metric.name] ?? nil
            var judgement = judge.rules.judge(
                metric, new: StepJudge.delta(nowNew[metric.name] ?? nil, since: sinceNew),
                live: StepJudge.delta(nowLive[metric.name] ?? nil, since: sinceLive),
                covariate: covariates[step]?[metric.name])
            let errors = [(judge.target, newErrors[metric.name]), (judge.live, liveErrors[metric.name])].compactMap {
                color, error in
                error.map { "\(color): \($0)" }
            }
            if !errors.isEmpty { judgement.error = "the query failed: " + errors.joined(separator: "; ") }
            judgements.append(judgement)
        }
        var ratios: [JudgeRules.RatioCounts] = []
        // A window over `{{window}}`: from `settle` after the step started to `settle` before now.
        let settle = Double(judge.spec.sampleRatio?.settleTime.milliseconds ?? 5000) / 1000
        let seconds = Double(elapsed.components.seconds) - 2 * settle
        // A window of a few scrapes is mostly scrape timing: a loaded target scraped late shows
        // a fraction of its requests in `increase(...)` (an A/A step read 10.7 % instead of 25 %
        // over a 4 s window on the loaded CI machine). The check waits for 10 s of window.
        let (ratioNew, ratioLive) =
            seconds >= Self.shortestRatioWindow
            ? (
                await judge.readRatios(judge.target, window: seconds, at: Date().addingTimeInterval(-settle)),
                await judge.readRatios(judge.live, window: seconds, at: Date().addingTimeInterval(-settle))
            )
            : ([:], [:])
        for (count, query) in [
            ("users", judge.spec.sampleRatio?.users), ("requests", judge.spec.sampleRatio?.requests),
        ] {
            guard let query, let new = ratioNew[count], let live = ratioLive[count] else { continue }
            // A query over `{{window}}` (`increase(...[{{window}}])`) counts the step's window
            // itself, Prometheus extrapolating each colour's samples to its edges; without it,
            // the counters' growth since the step started, once both colours' have grown (a
            // colour not scraped since would show none and look skewed).
            let windowed = query.contains("{{window}}")
            let counts = JudgeRules.RatioCounts(
                count: count, new: windowed ? new : StepJudge.delta(new, since: ratioBaselines[step]?.new[count]),
                live: windowed ? live : StepJudge.delta(live, since: ratioBaselines[step]?.live[count]))
            guard windowed || (counts.new.values.reduce(0, +) > 0 && counts.live.values.reduce(0, +) > 0) else {
                continue
            }
            ratios.append(counts)
        }
        return RolloutMachine.JudgeObservation(
            judgements: judgements,
            elapsed: Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18, at: Date(),
            ratios: ratios)
    }
}
