public import Foundation

/// What the shadow stage compared before any user saw the new colour, as the record keeps it: the
/// counts, the distributions, each gate with its value, the verdict, and the pairs of lists that
/// differed most (at most `maximumSamples`).
public struct ShadowComparison: Sendable, Codable, Equatable {
    public var startedOn: Date
    public var finishedOn: Date
    /// Percent of the live `/recommend` requests shadowed.
    public var share: Int
    /// Live requests drawn into the shadow.
    public var sampled: Int
    /// Pairs of answers compared.
    public var compared: Int
    /// Shadow requests that failed (of which `timeouts` timed out).
    public var errors: Int
    public var timeouts: Int
    /// Sampled requests not compared because nginx had too many comparisons running.
    public var dropped: Int
    /// Sampled requests whose live answer was no list (not compared).
    public var liveErrors: Int
    public var meanRBO: Double?
    public var meanOverlap: Double?
    /// Comparisons per tenth of RBO: index 0 holds [0, 0.1), index 9 holds [0.9, 1].
    public var rboHistogram: [Int]
    /// Latency quantiles in milliseconds, from nginx's histograms (at most 10 % above the truth).
    public var liveP50: Double?
    public var liveP95: Double?
    public var newP50: Double?
    public var newP95: Double?
    /// The share of the shadow requests that failed.
    public var errorShare: Double?
    /// Movies recommended by each colour over the comparisons: distinct (the catalogue covered)
    /// and the share of its recommendations taken by its 10 most recommended movies (popularity
    /// concentration).
    public var live: Catalogue
    public var new: Catalogue
    public var gates: [Gate]
    public var passed: Bool
    /// Why it passed or failed, in words.
    public var verdict: String
    /// The compared requests whose lists differed most (lowest RBO first).
    public var samples: [Sample]

    public static let maximumSamples = 20

    public struct Catalogue: Sendable, Codable, Equatable {
        public var recommended: Int
        public var distinct: Int
        public var top10Share: Double?

        public init(recommended: Int, distinct: Int, top10Share: Double?) {
            self.recommended = recommended
            self.distinct = distinct
            self.top10Share = top10Share
        }
    }

    /// A gate of the stage: its name (`rbo`, `overlap`, `coverage`, `popularity`, `p95_latency_ratio`,
    /// `errors`), the bound as written (`>= 0.2`), the value measured (nil without data), and
    /// whether it passed.
    public struct Gate: Sendable, Codable, Equatable {
        public var name: String
        public var condition: String
        public var value: Double?
        public var passed: Bool

        public init(name: String, condition: String, value: Double?, passed: Bool) {
            self.name = name
            self.condition = condition
            self.value = value
            self.passed = passed
        }
    }

    /// One compared request: the user, both lists as answered, their agreement and latencies.
    public struct Sample: Sendable, Codable, Equatable {
        public var user: String
        public var rbo: Double
        public var overlap: Double
        public var liveMilliseconds: Double
        public var newMilliseconds: Double
        public var liveItems: [String]
        public var newItems: [String]

        public init(
            user: String, rbo: Double, overlap: Double, liveMilliseconds: Double, newMilliseconds: Double,
            liveItems: [String], newItems: [String]
        ) {
            self.user = user
            self.rbo = rbo
            self.overlap = overlap
            self.liveMilliseconds = liveMilliseconds
            self.newMilliseconds = newMilliseconds
            self.liveItems = liveItems
            self.newItems = newItems
        }
    }

    public init(
        startedOn: Date, finishedOn: Date, share: Int, sampled: Int = 0, compared: Int = 0, errors: Int = 0,
        timeouts: Int = 0, dropped: Int = 0, liveErrors: Int = 0, meanRBO: Double? = nil, meanOverlap: Double? = nil,
        rboHistogram: [Int] = Array(repeating: 0, count: 10), liveP50: Double? = nil, liveP95: Double? = nil,
        newP50: Double? = nil, newP95: Double? = nil, errorShare: Double? = nil,
        live: Catalogue = Catalogue(recommended: 0, distinct: 0, top10Share: nil),
        new: Catalogue = Catalogue(recommended: 0, distinct: 0, top10Share: nil), gates: [Gate] = [],
        passed: Bool, verdict: String, samples: [Sample] = []
    ) {
        self.startedOn = startedOn
        self.finishedOn = finishedOn
        self.share = share
        self.sampled = sampled
        self.compared = compared
        self.errors = errors
        self.timeouts = timeouts
        self.dropped = dropped
        self.liveErrors = liveErrors
        self.meanRBO = meanRBO
        self.meanOverlap = meanOverlap
        self.rboHistogram = rboHistogram
        self.liveP50 = liveP50
        self.liveP95 = liveP95
        self.newP50 = newP50
        self.newP95 = newP95
        self.errorShare = errorShare
        self.live = live
        self.new = new
        self.gates = gates
        self.passed = passed
        self.verdict = verdict
        self.samples = samples
    }

    enum CodingKeys: String, CodingKey {
        case share, sampled, compared, errors, timeouts, dropped, live, new, gates, passed, verdict, samples
        case startedOn = "started_on"
        case finishedOn = "finished_on"
        case liveErrors = "live_errors"
        case meanRBO = "mean_rbo"
        case meanOverlap = "mean_overlap"
        case rboHistogram = "rbo_histogram"
        case liveP50 = "live_p50_ms"
        case liveP95 = "live_p95_ms"
        case newP50 = "new_p50_ms"
        case newP95 = "new_p95_ms"
        case errorShare = "error_share"
    }
}

extension ShadowComparison {
    /// The comparison as `orchestrate explain` prints it: the verdict, the counts, each gate, a
    /// histogram of RBO, the latencies, the catalogue each colour covered, and the users whose
    /// lists changed most with both lists (`samples` of them at most).
    public func lines(target: String, live liveColor: String, samples shown: Int = 5) -> [String] {
        func number(_ value: Double?, _ format: String = "%.3f") -> String {
            value.map { String(format: format, $0) } ?? "-"
        }
        let seconds = String(format: "%.1f s", finishedOn.timeIntervalSince(startedOn))
        var lines = [
            "shadow stage (before step 1; no user was answered by \(target)), \(seconds), \(share)% of the live requests: "
                + (passed ? "passed" : "FAILED"),
            "  \(verdict)",
            "  compared \(compared) of \(sampled) sampled; \(errors) shadow errors (\(timeouts) timed out), "
                + "\(dropped) dropped, \(liveErrors) live answers not a list",
            "  mean RBO \(number(meanRBO)), mean overlap@k \(number(meanOverlap)), errors \(number(errorShare.map { $0 * 100 }, "%.1f")) %",
        ]
        for gate in gates {
            lines.append(
                "  gate \(gate.name) \(gate.condition): \(number(gate.value, "%.4g")) \(gate.passed ? "passed" : "FAILED")"
            )
        }
        let most = max(1, rboHistogram.max() ?? 1)
        lines.append("  RBO of \(target)'s list with \(liveColor)'s (comparisons per tenth):")
        for (index, count) in rboHistogram.enumerated() {
            let bar = String(repeating: "#", count: Int((Double(count) / Double(most) * 30).rounded()))
            lines.append(
                String(format: "    %.1f-%.1f ", Double(index) / 10, Double(index + 1) / 10)
                    + bar.padding(toLength: 30, withPad: " ", startingAt: 0) + " \(count)")
        }
        lines.append(
            "  latency p50/p95: \(liveColor) \(number(liveP50, "%.1f"))/\(number(liveP95, "%.1f")) ms, "
                + "\(target) \(number(newP50, "%.1f"))/\(number(newP95, "%.1f")) ms")
        func catalogue(_ value: Catalogue) -> String {
            "\(value.distinct) distinct movies of \(value.recommended) recommended, top 10 "
                + "\(number(value.top10Share.map { $0 * 100 }, "%.1f")) %"
        }
        lines.append("  catalogue: \(liveColor) \(catalogue(self.live)); \(target) \(catalogue(new))")
        // The ratios the coverage and popularity gates compare (whether gated or not).
        let coverage = live.distinct > 0 ? Double(new.distinct) / Double(live.distinct) : nil
        let popularity = new.top10Share.flatMap { share in live.top10Share.flatMap { $0 > 0 ? share / $0 : nil } }
        lines.append(
            "  coverage \(target)/\(liveColor) \(number(coverage, "%.3f")), popularity (top-10 share) "
                + "\(target)/\(liveColor) \(number(popularity, "%.3f"))")
        if !samples.isEmpty {
            lines.append("  users whose lists changed most:")
            for sample in samples.prefix(shown) {
                lines.append(
                    "    \(sample.user): RBO \(number(sample.rbo)), overlap \(number(sample.overlap)), "
                        + "\(number(sample.liveMilliseconds, "%.1f")) ms / \(number(sample.newMilliseconds, "%.1f")) ms"
                )
                lines.append("      \(liveColor): \(sample.liveItems.joined(separator: ","))")
                lines.append("      \(target): \(sample.newItems.joined(separator: ","))")
            }
        }
        return lines
    }
}
