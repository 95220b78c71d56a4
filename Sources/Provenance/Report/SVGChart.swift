import Foundation
import TextSafety

/// A small time-series chart drawn as inline SVG, so that the report opens anywhere with no
/// network and no script: lines (or steps) over time, horizontal bounds, an interval band, and
/// vertical markers. Every recorded point is a `<circle class="pt">` carrying its series, time and
/// exact value (`data-series`, `data-t`, `data-v`) and a `<title>` tooltip, so that what is drawn
/// can be checked against the record.
struct SVGChart {
    struct Point {
        var at: Date
        var value: Double
        /// The tooltip.
        var label: String
        /// Drawn as a failed measurement.
        var failed = false
    }

    struct Series {
        var name: String
        var points: [Point]
        /// Held until the next point (traffic weights), instead of a straight line between points.
        var stepped = false
        /// The line's colour (a CSS colour from `palette`).
        var color: String
    }

    /// A filled interval: `lower` to `upper` at each time.
    struct Band {
        var points: [(at: Date, lower: Double, upper: Double)]
        var color: String
    }

    struct Rule {
        var value: Double
        var label: String
    }

    static let palette = ["#1f6fd1", "#2e9a46", "#c9731c", "#8a4fc2", "#c23a6b", "#3a8f8f"]

    /// The line colour of a traffic colour's name, so that blue is drawn blue and green green.
    static func color(named name: String, index: Int) -> String {
        switch name.lowercased() {
        case "blue": palette[0]
        case "green": palette[1]
        default: palette[(index + 2) % palette.count]
        }
    }

    var id: String
    var start: Date
    var end: Date
    var series: [Series]
    var bands: [Band] = []
    var rules: [Rule] = []
    var markers: [(at: Date, label: String)] = []
    /// A fixed value range (0...100 for weights); nil: from the data and rules.
    var range: ClosedRange<Double>? = nil
    var unit = ""

    let width = 760.0
    let height = 230.0
    let left = 64.0
    let right = 16.0
    let top = 14.0
    let bottom = 30.0

    func render() -> String {
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let span = max(end.timeIntervalSince(start), 1)
        let (low, high) = valueRange()
        func x(_ date: Date) -> Double { left + plotWidth * min(max(date.timeIntervalSince(start) / span, 0), 1) }
        func y(_ value: Double) -> Double { top + plotHeight * (1 - (min(max(value, low), high) - low) / (high - low)) }

        var svg = """
            <svg class="chart" data-chart="\(HTMLText.escape(id))" viewBox="0 0 \(Int(width)) \(Int(height))" width="\(Int(width))" height="\(Int(height))" role="img" xmlns="http://www.w3.org/2000/svg">
            <rect class="plot" x="\(f(left))" y="\(f(top))" width="\(f(plotWidth))" height="\(f(plotHeight))"/>

            """
        for tick in 0...4 {
            let value = low + (high - low) * Double(tick) / 4
            svg +=
                "<line class=\"grid\" x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y(value)))\" y2=\"\(f(y(value)))\"/>"
            svg +=
                "<text class=\"tick\" x=\"\(f(left - 6))\" y=\"\(f(y(value) + 4))\" text-anchor=\"end\">\(HTMLText.escape(Self.number(value) + unit))</text>\n"
        }
        for tick in 0...4 {
            let date = start.addingTimeInterval(span * Double(tick) / 4)
            let anchor = tick == 0 ? "start" : tick == 4 ? "end" : "middle"
            svg +=
                "<text class=\"tick\" x=\"\(f(x(date)))\" y=\"\(f(height - 10))\" text-anchor=\"\(anchor)\">\(Self.clock(date))</text>\n"
        }
        for marker in markers {
            svg +=
                "<line class=\"marker\" x1=\"\(f(x(marker.at)))\" x2=\"\(f(x(marker.at)))\" y1=\"\(f(top))\" y2=\"\(f(top + plotHeight))\"/>"
            svg +=
                "<text class=\"marker-label\" x=\"\(f(x(marker.at) + 3))\" y=\"\(f(top + 11))\">\(HTMLText.escape(marker.label))</text>\n"
        }
        for band in bands where !band.points.isEmpty {
            let upper = band.points.map { "\(f(x($0.at))),\(f(y($0.upper)))" }
            let lower = band.points.reversed().map { "\(f(x($0.at))),\(f(y($0.lower)))" }
            svg +=
                "<polygon class=\"band\" fill=\"\(band.color)\" points=\"\((upper + lower).joined(separator: " "))\"/>\n"
        }
        for rule in rules {
            svg +=
                "<line class=\"bound\" x1=\"\(f(left))\" x2=\"\(f(width - right))\" y1=\"\(f(y(rule.value)))\" y2=\"\(f(y(rule.value)))\"/>"
            svg +=
                "<text class=\"bound-label\" x=\"\(f(width - right - 4))\" y=\"\(f(y(rule.value) - 4))\" text-anchor=\"end\">\(HTMLText.escape(rule.label))</text>\n"
        }
        for line in series {
            let points = line.points.filter { $0.value.isFinite }
            guard !points.isEmpty else { continue }
            var path = "M\(f(x(points[0].at))),\(f(y(points[0].value)))"
            for (previous, point) in zip(points, points.dropFirst()) {
                if line.stepped { path += " L\(f(x(point.at))),\(f(y(previous.value)))" }
                path += " L\(f(x(point.at))),\(f(y(point.value)))"
            }
            if line.stepped { path += " L\(f(x(end))),\(f(y(points[points.count - 1].value)))" }
            svg += "<path class=\"line\" stroke=\"\(line.color)\" d=\"\(path)\"/>\n"
            for point in points {
                svg += """
                    <circle class="pt\(point.failed ? " failed" : "")" data-series="\(HTMLText.escape(line.name))" data-t="\(Self.iso(point.at))" \
                    data-v="\(point.value)" cx="\(f(x(point.at)))" cy="\(f(y(point.value)))" r="3.5" fill="\(line.color)">\
                    <title>\(HTMLText.escape(point.label))</title></circle>

                    """
            }
        }
        return svg + "</svg>"
    }

    /// The value range: fixed, or the data and rules with a margin.
    func valueRange() -> (Double, Double) {
        if let range { return (range.lowerBound, range.upperBound) }
        var values = series.flatMap { $0.points.map(\.value) } + rules.map(\.value)
        values += bands.flatMap { $0.points.flatMap { [$0.lower, $0.upper] } }
        values = values.filter(\.isFinite)
        guard var low = values.min(), var high = values.max() else { return (0, 1) }
        if low == high {
            let pad = low == 0 ? 1 : abs(low) * 0.1
            return (low - pad, high + pad)
        }
        let pad = (high - low) * 0.08
        if low >= 0 && low - pad < 0 { low = 0 } else { low -= pad }
        high += pad
        return (low, high)
    }

    private func f(_ value: Double) -> String { String(format: "%.1f", value) }

    static func number(_ value: Double) -> String {
        if value == 0 { return "0" }
        return String(format: "%.3g", value)
    }

    static func clock(_ date: Date) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "HH:mm:ss"
        return formatter.string(from: date)
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}

/// Text made safe for HTML (and SVG) content and attribute values: every string that comes from
/// a record goes through this. Control characters are written out first (`OutsideText`), as
/// everywhere text from outside is shown.
enum HTMLText {
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in OutsideText.escaped(text, lines: .kept).unicodeScalars {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default:
                // Control characters other than tab and newline are not allowed in XML/HTML text.
                if character.value < 0x20 && character != "\t" && character != "\n" {
                    result += "\u{FFFD}"
                } else {
                    result.unicodeScalars.append(character)
                }
            }
        }
        return result
    }
}
