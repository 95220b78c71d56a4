import Foundation
import StrictYAML
import Yams

extension PipelineDecoder {
    /// `policy: {windows: [{days: [mon, ...], hours: "09:00-17:00", timezone: Europe/Berlin}]}`.
    func decodePolicy(_ node: Node) -> ReleasePolicy? {
        guard let map = reader.mapping(node, "policy", allowed: ["windows"]) else { return nil }
        guard
            let items = reader.required(map, "windows", "policy", in: node).flatMap({
                reader.sequence($0, "policy.windows")
            })
        else { return nil }
        if items.isEmpty {
            reader.report(
                map["windows"], "policy.windows",
                "no window: a release could never start; leave out policy.windows to allow any time")
        }
        let windows = items.enumerated().compactMap { index, item in
            decodeWindow(item, path: "policy.windows[\(index)]")
        }
        return windows.count == items.count ? ReleasePolicy(windows: windows) : nil
    }

    private func decodeWindow(_ node: Node, path: String) -> ReleaseWindow? {
        guard let map = reader.mapping(node, path, allowed: ["days", "hours", "timezone"]) else { return nil }
        var days = ReleaseWindow.Weekday.allCases
        if let node = map["days"], let names = reader.stringList(node, "\(path).days") {
            let known = Dictionary(uniqueKeysWithValues: ReleaseWindow.Weekday.allCases.map { ($0.name, $0) })
            let unknown = names.filter { known[$0.lowercased()] == nil }
            if !unknown.isEmpty || names.isEmpty {
                reader.report(
                    node, "\(path).days",
                    names.isEmpty
                        ? "no day: leave out days for every day"
                        : "\(unknown.map { echoed($0) }.joined(separator: ", ")) is not a day: use mon, tue, wed, thu, fri, sat, sun"
                )
                return nil
            }
            days = Array(Set(names.compactMap { known[$0.lowercased()] }))
        }
        guard let hoursNode = reader.required(map, "hours", path, in: node),
            let hours = reader.nonEmptyString(hoursNode, "\(path).hours")
        else { return nil }
        guard let (start, end) = Self.span(hours) else {
            reader.report(
                hoursNode, "\(path).hours",
                "\(echoed(hours)) is not a span of local time: write HH:MM-HH:MM, e.g. 09:00-17:00 (22:00-02:00 crosses midnight, 00:00-24:00 is the whole day)"
            )
            return nil
        }
        var timeZone = "UTC"
        if let node = map["timezone"], let name = reader.nonEmptyString(node, "\(path).timezone") {
            guard TimeZone(identifier: name) != nil else {
                reader.report(
                    node, "\(path).timezone",
                    "\(echoed(name)) is not a time zone this machine knows: use a tz database name, e.g. Europe/Berlin, America/New_York or UTC"
                )
                return nil
            }
            timeZone = name
        }
        return ReleaseWindow(days: days, start: start, end: end, timeZone: timeZone)
    }

    /// `HH:MM-HH:MM` as minutes after midnight; the end may be 24:00; nil when malformed or empty.
    static func span(_ text: String) -> (start: Int, end: Int)? {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        func minutes(_ part: Substring, end: Bool) -> Int? {
            let fields = part.trimmingCharacters(in: .whitespaces).split(
                separator: ":", omittingEmptySubsequences: false)
            guard fields.count == 2, fields.allSatisfy({ $0.count == 2 && $0.allSatisfy(\.isASCII) }),
                let hour = Int(fields[0]), let minute = Int(fields[1]), (0..<60).contains(minute)
            else { return nil }
            if end && hour == 24 && minute == 0 { return 1440 }
            return (0..<24).contains(hour) ? hour * 60 + minute : nil
        }
        guard let start = minutes(parts[0], end: false), let end = minutes(parts[1], end: true), start != end,
            start != end % 1440 || end == 1440
        else { return nil }
        return (start, end)
    }

    /// `history: {last: N, quantile: Q, maxDrop: F | maxRise: F}` of a stage gate's metric.
    func decodeHistoryBound(_ node: Node, path: String) -> HistoryBound? {
        guard let map = reader.mapping(node, path, allowed: ["last", "quantile", "maxDrop", "maxRise"]) else {
            return nil
        }
        let last = map["last"].flatMap { reader.int($0, "\(path).last", range: 1...100) } ?? 5
        let quantile = map["quantile"].flatMap { reader.double($0, "\(path).quantile") } ?? 0.5
        if !(0...1).contains(quantile) {
            reader.report(map["quantile"], "\(path).quantile", "a quantile is from 0 to 1 (0.5: the median)")
        }
        func fraction(_ key: String) -> Double? {
            guard let node = map[key], let value = reader.double(node, "\(path).\(key)") else { return nil }
            guard (0...10).contains(value) else {
                reader.report(node, "\(path).\(key)", "a fraction of the reference from 0 to 10 (0.02: 2 %)")
                return nil
            }
            return value
        }
        let drop = fraction("maxDrop")
        let rise = fraction("maxRise")
        if (map["maxDrop"] == nil) == (map["maxRise"] == nil) {
            reader.report(
                node, path,
                "give maxDrop: (a metric that must not fall, e.g. ndcg_at_k) or maxRise: (one that must not rise, e.g. rmse), one of them"
            )
            return nil
        }
        guard drop != nil || rise != nil else { return nil }
        return HistoryBound(last: last, quantile: quantile, maxDrop: drop, maxRise: rise)
    }
}
