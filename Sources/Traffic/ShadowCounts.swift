import Foundation

/// What nginx counted of the shadow comparison in force (`GET /shadow` on the control socket,
/// Resources/shadow.lua): the live requests sampled, the pairs of answers compared, the shadow
/// colour's failures, sums and a histogram of rank-biased overlap, the latency histograms of both
/// colours, how many movies each colour recommended, and the last pairs of lists.
public struct ShadowCounts: Sendable, Equatable {
    public var experiment: String
    /// The shadowed colour.
    public var color: String
    /// Live `/recommend` requests drawn into the shadow.
    public var sampled = 0
    /// Pairs of answers compared.
    public var compared = 0
    /// Shadow requests that failed: no connection, a timeout, a status other than 200, no list.
    public var errors = 0
    /// Of the errors, the timeouts (2 s).
    public var timeouts = 0
    /// Of the errors, the requests not sent: the colour had refused a connection less than a
    /// second before (a dead colour is not asked again and again).
    public var skipped = 0
    /// Sampled requests not compared because too many comparisons were running.
    public var dropped = 0
    /// Sampled requests whose live answer was not a list (the live colour's failure: not compared).
    public var liveErrors = 0
    /// Movies not counted because nginx's dict was full.
    public var full = 0
    public var rboSum = 0.0
    public var overlapSum = 0.0
    /// Comparisons per tenth of RBO: index 0 holds [0, 0.1), index 9 holds [0.9, 1].
    public var rboHistogram = [Int](repeating: 0, count: 10)
    /// Comparisons per latency bucket (see `latencyBound`), of the live and of the shadow colour.
    public var liveLatency: [Int: Int] = [:]
    public var newLatency: [Int: Int] = [:]
    public var liveItems = ItemCounts()
    public var newItems = ItemCounts()
    /// The last pairs compared (at most 100), in no particular order.
    public var samples: [Sample] = []

    public init(experiment: String, color: String) {
        self.experiment = experiment
        self.color = color
    }

    /// How many movies a colour recommended over the comparisons, how many distinct ones, and how
    /// many of its recommendations were of its 10 most recommended movies.
    public struct ItemCounts: Sendable, Equatable {
        public var total = 0
        public var distinct = 0
        public var top10 = 0

        public init(total: Int = 0, distinct: Int = 0, top10: Int = 0) {
            self.total = total
            self.distinct = distinct
            self.top10 = top10
        }
    }

    /// One compared request.
    public struct Sample: Sendable, Equatable {
        public var user: String
        public var rbo: Double
        public var overlap: Double
        public var liveMilliseconds: Double
        public var newMilliseconds: Double
        public var live: [String]
        public var new: [String]

        public init(
            user: String, rbo: Double, overlap: Double, liveMilliseconds: Double, newMilliseconds: Double,
            live: [String], new: [String]
        ) {
            self.user = user
            self.rbo = rbo
            self.overlap = overlap
            self.liveMilliseconds = liveMilliseconds
            self.newMilliseconds = newMilliseconds
            self.live = live
            self.new = new
        }
    }

    /// The upper bound in milliseconds of latency bucket `bucket`: bucket 0 is below 1 ms, bucket
    /// b holds [1.1^(b-1), 1.1^b) ms.
    public static func latencyBound(_ bucket: Int) -> Double {
        bucket <= 0 ? 1 : pow(1.1, Double(bucket))
    }

    /// The `quantile` (0...1) of a latency histogram, as its bucket's upper bound (at most 10 %
    /// above the true value); nil for an empty histogram.
    public static func quantile(_ quantile: Double, of histogram: [Int: Int]) -> Double? {
        let total = histogram.values.reduce(0, +)
        guard total > 0 else { return nil }
        // Less a hair: 0.95 × 100 must be rank 95, whatever the last bit of the product.
        let rank = max(1, Int((quantile * Double(total) - 1e-9).rounded(.up)))
        var seen = 0
        for bucket in histogram.keys.sorted() {
            seen += histogram[bucket] ?? 0
            if seen >= rank { return latencyBound(bucket) }
        }
        return histogram.keys.max().map(latencyBound)
    }

    /// Reads nginx's answer: `experiment ID`, `colour NAME`, then one count, sum, bucket, item
    /// count or sample a line. nil for an answer without counts (no experiment, or one no longer
    /// in force).
    ///
    /// - Throws: `TrafficError` for a line that is not understood.
    public init?(parsing text: String) throws {
        var experiment: String?
        var color: String?
        var counts = ShadowCounts(experiment: "", color: "")
        for (index, line) in text.split(separator: "\n").enumerated() {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            func problem() -> TrafficError {
                TrafficError("line \(index + 1) of nginx's shadow counts is not understood: \"\(line.prefix(80))\"")
            }
            func count(_ field: String) throws -> Int {
                guard let value = Int(field), value >= 0 else { throw problem() }
                return value
            }
            func number(_ field: String) throws -> Double {
                guard let value = Double(field), value.isFinite, value >= 0 else { throw problem() }
                return value
            }
            switch (fields.first, fields.count) {
            case ("experiment", 2): experiment = fields[1]
            case ("colour", 2): color = fields[1]
            case ("sampled", 2): counts.sampled = try count(fields[1])
            case ("compared", 2): counts.compared = try count(fields[1])
            case ("errors", 2): counts.errors = try count(fields[1])
            case ("timeouts", 2): counts.timeouts = try count(fields[1])
            case ("skipped", 2): counts.skipped = try count(fields[1])
            case ("dropped", 2): counts.dropped = try count(fields[1])
            case ("live_errors", 2): counts.liveErrors = try count(fields[1])
            case ("full", 2): counts.full = try count(fields[1])
            case ("rbo_sum", 2): counts.rboSum = try number(fields[1])
            case ("overlap_sum", 2): counts.overlapSum = try number(fields[1])
            case ("rbo", 3):
                let bucket = try count(fields[1])
                guard bucket < 10 else { throw problem() }
                counts.rboHistogram[bucket] = try count(fields[2])
            case ("latency", 4) where fields[1] == "live" || fields[1] == "new":
                let bucket = try count(fields[2])
                guard bucket <= 200 else { throw problem() }
                if fields[1] == "live" {
                    counts.liveLatency[bucket] = try count(fields[3])
                } else {
                    counts.newLatency[bucket] = try count(fields[3])
                }
            case ("items", 5) where fields[1] == "live" || fields[1] == "new":
                let items = ItemCounts(
                    total: try count(fields[2]), distinct: try count(fields[3]), top10: try count(fields[4]))
                if fields[1] == "live" { counts.liveItems = items } else { counts.newItems = items }
            case ("sample", 8):
                let ids = { (field: String) in
                    field.split(separator: ",").map { String($0).removingPercentEncoding ?? String($0) }
                }
                counts.samples.append(
                    Sample(
                        user: fields[1], rbo: try number(fields[2]), overlap: try number(fields[3]),
                        liveMilliseconds: try number(fields[4]), newMilliseconds: try number(fields[5]),
                        live: ids(fields[6]), new: ids(fields[7])))
            default:
                throw problem()
            }
        }
        guard let experiment, experiment != "none", let color else { return nil }
        counts.experiment = experiment
        counts.color = color
        self = counts
    }
}
