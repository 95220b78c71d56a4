import Foundation
public import Yams

/// A duration as pipelines write it: `500ms`, `90s`, `5m`, `1h`, or a sum such as `1h30m`.
public struct PipelineDuration: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public var milliseconds: Int64

    public init(milliseconds: Int64) {
        self.milliseconds = milliseconds
    }

    /// Saturates at `Int64.max` milliseconds rather than trap.
    public static func seconds(_ seconds: Int64) -> PipelineDuration {
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1000)
        return PipelineDuration(milliseconds: overflow ? (seconds < 0 ? .min : .max) : product)
    }

    /// The longest wait, interval or health timeout a pipeline may set: a day. Longer holds are
    /// a mistake (a unit typo), and every duration then stays far from overflowing sums
    /// (steps × wait, deadlines on the clock, sleeps in nanoseconds).
    public static let maximum = PipelineDuration.seconds(24 * 3600)
    /// The longest stage timeout: a week (training can take longer than a day).
    public static let maximumStageTimeout = PipelineDuration.seconds(7 * 24 * 3600)

    public init?(_ text: String) {
        let units: [(String, Int64)] = [("ms", 1), ("h", 3_600_000), ("m", 60_000), ("s", 1000)]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var total: Int64 = 0
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            guard !digits.isEmpty, let value = Int64(digits), value < 1_000_000_000 else { return nil }
            rest = rest.dropFirst(digits.count)
            guard let (unit, scale) = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            rest = rest.dropFirst(unit.count)
            let (sum, overflow) = total.addingReportingOverflow(value * scale)
            guard !overflow else { return nil }
            total = sum
        }
        milliseconds = total
    }

    public var duration: Duration { .milliseconds(milliseconds) }

    public var description: String {
        if milliseconds == 0 { return "0s" }
        if milliseconds % 1000 != 0 { return "\(milliseconds)ms" }
        var seconds = milliseconds / 1000
        var text = ""
        if seconds >= 3600 {
            text += "\(seconds / 3600)h"
            seconds %= 3600
        }
        if seconds >= 60 {
            text += "\(seconds / 60)m"
            seconds %= 60
        }
        if seconds > 0 { text += "\(seconds)s" }
        return text
    }

    public static func < (lhs: PipelineDuration, rhs: PipelineDuration) -> Bool {
        lhs.milliseconds < rhs.milliseconds
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        guard let value = PipelineDuration(text) else {
            throw DecodingError.dataCorrupted(
                .init(codingPath: decoder.codingPath, debugDescription: "not a duration: \(text)"))
        }
        self = value
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}

extension NodeReader {
    /// A duration of at most `maximum` (a day unless said otherwise).
    public func duration(_ node: Node?, _ path: String, maximum: PipelineDuration = .maximum) -> PipelineDuration? {
        guard let text = string(node, path) else { return nil }
        guard let value = PipelineDuration(text) else {
            // Well formed but too large to count (a part of 10⁹ or more, or a sum past Int64).
            let wellFormed = text.wholeMatch(of: /\s*([0-9]+(ms|h|m|s))+\s*/) != nil
            report(
                node, path,
                wellFormed
                    ? "\(echoed(text)) is longer than the most allowed, \(maximum)"
                    : "\"\(echoed(text))\" is not a duration: use a number with a unit, e.g. 500ms, 90s, 5m, 1h, 1h30m")
            return nil
        }
        guard value <= maximum else {
            report(node, path, "\(value) is longer than the most allowed, \(maximum)")
            return nil
        }
        return value
    }
}
