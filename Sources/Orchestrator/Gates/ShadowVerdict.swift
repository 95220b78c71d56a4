import Foundation
import PipelineSchema
import Provenance
import Traffic

/// The shadow stage's decision from nginx's counts: whether it has what it needs, and then each
/// gate with its value and the verdict. A pure function of its inputs (`ShadowVerdictTests`).
enum ShadowVerdict {
    /// Whether the stage may end now: with `requests`, once that many comparisons are in; at the
    /// end of its `duration` (`final`) in any case.
    static func isDue(_ counts: ShadowCounts?, spec: ShadowSpec, final: Bool) -> Bool {
        final || (spec.requests.map { (counts?.compared ?? 0) >= $0 } ?? false)
    }

    /// The comparison as recorded, with its verdict: too few comparisons fail, then every gate is
    /// checked (all are reported, the first failed one names the failure).
    static func decide(
        _ counts: ShadowCounts?, spec: ShadowSpec, target: String, live: String, startedOn: Date, at now: Date
    ) -> ShadowComparison {
        let counts = counts ?? ShadowCounts(experiment: "", color: target)
        var result = ShadowComparison(
            startedOn: startedOn, finishedOn: now, share: spec.share, sampled: counts.sampled,
            compared: counts.compared, errors: counts.errors, timeouts: counts.timeouts, dropped: counts.dropped,
            liveErrors: counts.liveErrors, rboHistogram: counts.rboHistogram, passed: false, verdict: "")
        let compared = Double(counts.compared)
        if counts.compared > 0 {
            result.meanRBO = counts.rboSum / compared
            result.meanOverlap = counts.overlapSum / compared
        }
        let attempts = counts.compared + counts.errors
        if attempts > 0 { result.errorShare = Double(counts.errors) / Double(attempts) }
        result.liveP50 = ShadowCounts.quantile(0.5, of: counts.liveLatency)
        result.liveP95 = ShadowCounts.quantile(0.95, of: counts.liveLatency)
        result.newP50 = ShadowCounts.quantile(0.5, of: counts.newLatency)
        result.newP95 = ShadowCounts.quantile(0.95, of: counts.newLatency)
        func catalogue(_ items: ShadowCounts.ItemCounts) -> ShadowComparison.Catalogue {
            .init(
                recommended: items.total, distinct: items.distinct,
                top10Share: items.total > 0 ? Double(items.top10) / Double(items.total) : nil)
        }
        result.live = catalogue(counts.liveItems)
        result.new = catalogue(counts.newItems)
        result.samples = counts.samples.sorted { ($0.rbo, $0.user) < ($1.rbo, $1.user) }
            .prefix(ShadowComparison.maximumSamples).map {
                ShadowComparison.Sample(
                    user: $0.user, rbo: $0.rbo, overlap: $0.overlap, liveMilliseconds: $0.liveMilliseconds,
                    newMilliseconds: $0.newMilliseconds, liveItems: $0.live, newItems: $0.new)
            }

        let ratio = result.newP95.flatMap { new in result.liveP95.map { new / max($0, 1) } }
        let gates = spec.gates
        var checked: [ShadowComparison.Gate] = []
        func check(_ name: String, _ bound: Double?, minimum: Bool, _ value: Double?) {
            guard let bound else { return }
            let passed = value.map { minimum ? $0 >= bound : $0 <= bound } ?? false
            checked.append(
                .init(
                    name: name, condition: "\(minimum ? ">=" : "<=") \(formatNumber(bound))", value: value,
                    passed: passed))
        }
        check("rbo", gates.rboMin, minimum: true, result.meanRBO)
        check("overlap", gates.overlapMin, minimum: true, result.meanOverlap)
        check("coverage", gates.coverageMin, minimum: true, Self.coverageRatio(new: result.new, live: result.live))
        check(
            "popularity", gates.popularityMax, minimum: false,
            Self.popularityRatio(new: result.new, live: result.live))
        check("p95_latency_ratio", gates.p95LatencyRatioMax, minimum: false, ratio)
        check("errors", gates.errorsMax, minimum: false, result.errorShare ?? (attempts == 0 ? nil : 0))
        result.gates = checked

        let within = "within \(spec.duration)"
        if counts.compared < spec.minimumComparisons {
            let failures =
                counts.errors > 0
                ? "; \(counts.errors) of \(attempts) shadow requests to \(target) failed (\(counts.timeouts) timed out)"
                : counts.sampled == 0 ? "; no live /recommend request came to shadow" : ""
            result.verdict =
                counts.compared == 0
                ? "shadow stage: nothing compared \(within)\(failures)"
                : "shadow stage: \(counts.compared) comparisons of the \(spec.minimumComparisons) required \(within)\(failures)"
            return result
        }
        if let failed = checked.first(where: { !$0.passed }) {
            let value = failed.value.map { formatNumber(($0 * 10000).rounded() / 10000) } ?? "no data"
            let meaning: String
            switch failed.name {
            case "rbo": meaning = "mean rank-biased overlap of \(target)'s lists with \(live)'s"
            case "overlap": meaning = "mean overlap@k of \(target)'s lists with \(live)'s"
            case "coverage":
                meaning =
                    "distinct movies \(target) recommended over \(live)'s: \(result.new.distinct) against \(result.live.distinct)"
            case "popularity":
                meaning =
                    "share of \(target)'s recommendations taken by its 10 most recommended movies over \(live)'s: "
                    + "\(percent(result.new.top10Share)) against \(percent(result.live.top10Share))"
            case "p95_latency_ratio": meaning = "p95 latency of \(target) over \(live)'s"
            default: meaning = "share of shadow requests to \(target) that failed"
            }
            result.verdict =
                "shadow stage: \(failed.name) \(value) is not \(failed.condition) (\(meaning), over \(counts.compared) live requests); no user saw \(target)"
            return result
        }
        result.passed = true
        result.verdict =
            "shadow stage passed over \(counts.compared) live requests: "
            + checked.map {
                "\($0.name) \($0.value.map { formatNumber(($0 * 10000).rounded() / 10000) } ?? "-") \($0.condition)"
            }
            .joined(separator: ", ")
        return result
    }

    /// The new colour's catalogue coverage as a ratio of the live one's: distinct movies recommended
    /// over the same compared requests (nil when live recommended none).
    static func coverageRatio(new: ShadowComparison.Catalogue, live: ShadowComparison.Catalogue) -> Double? {
        live.distinct > 0 ? Double(new.distinct) / Double(live.distinct) : nil
    }

    /// The new colour's popularity concentration as a ratio of the live one's: the share of the
    /// recommendations taken by each colour's 10 most recommended movies (nil without both).
    static func popularityRatio(new: ShadowComparison.Catalogue, live: ShadowComparison.Catalogue) -> Double? {
        guard let newShare = new.top10Share, let liveShare = live.top10Share, liveShare > 0 else { return nil }
        return newShare / liveShare
    }

    private static func percent(_ share: Double?) -> String {
        share.map { String(format: "%.1f %%", $0 * 100) } ?? "-"
    }
}
