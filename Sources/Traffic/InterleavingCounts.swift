/// What nginx counted of the interleaving experiment in force (`GET /interleaving` on the control
/// socket, Resources/interleave.lua): users sampled, and per colour the users who preferred it (more
/// of their conversions came from movies its team placed), the conversions credited to it, and
/// the answers it gave alone because the other colour failed.
public struct InterleavingCounts: Sendable, Equatable {
    public var experiment: String
    /// The two colours, in name order.
    public var colors: [String]
    /// Users who were answered an interleaved list (or were sampled and admitted).
    public var users: Int
    /// Interleaved answers.
    public var merged: Int
    /// Conversions credited.
    public var credited: Int
    /// Users credited equally by both colours (at least once each).
    public var ties: Int
    /// Sampled users turned away because nginx's dict of users was full (they keep the split).
    public var full: Int
    public var prefer: [String: Int]
    public var credits: [String: Int]
    public var fallback: [String: Int]

    public init(
        experiment: String, colors: [String], users: Int = 0, merged: Int = 0, credited: Int = 0, ties: Int = 0,
        full: Int = 0,
        prefer: [String: Int] = [:], credits: [String: Int] = [:], fallback: [String: Int] = [:]
    ) {
        self.experiment = experiment
        self.colors = colors
        self.users = users
        self.merged = merged
        self.credited = credited
        self.ties = ties
        self.full = full
        self.prefer = prefer
        self.credits = credits
        self.fallback = fallback
    }

    /// Reads nginx's answer: `experiment ID`, `colour NAME` (twice), then `NAME VALUE` or
    /// `NAME COLOUR VALUE` lines. nil for an answer without counts (no experiment, or one that is
    /// no longer in force).
    ///
    /// - Throws: `TrafficError` for a line that is not understood.
    public init?(parsing text: String) throws {
        var experiment: String?
        var counts = InterleavingCounts(experiment: "", colors: [])
        for (index, line) in text.split(separator: "\n").enumerated() {
            let fields = line.split(separator: " ").map(String.init)
            func number(_ field: String) throws -> Int {
                guard let value = Int(field), value >= 0 else {
                    throw TrafficError(
                        "line \(index + 1) of nginx's interleaving counts: \"\(field.prefix(40))\" is not a count")
                }
                return value
            }
            switch (fields.first, fields.count) {
            case ("experiment", 2): experiment = fields[1]
            case ("colour", 2): counts.colors.append(fields[1])
            case ("users", 2): counts.users = try number(fields[1])
            case ("merged", 2): counts.merged = try number(fields[1])
            case ("credited", 2): counts.credited = try number(fields[1])
            case ("ties", 2): counts.ties = try number(fields[1])
            case ("full", 2): counts.full = try number(fields[1])
            case ("prefer", 3): counts.prefer[fields[1]] = try number(fields[2])
            case ("credits", 3): counts.credits[fields[1]] = try number(fields[2])
            case ("fallback", 3): counts.fallback[fields[1]] = try number(fields[2])
            default:
                throw TrafficError(
                    "line \(index + 1) of nginx's interleaving counts is not understood: \"\(line.prefix(80))\"")
            }
        }
        guard let experiment, experiment != "none", counts.colors.count == 2 else { return nil }
        counts.experiment = experiment
        self = counts
    }
}
