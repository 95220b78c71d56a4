public import Foundation

/// When a release may start (`policy.windows`): outside every window `run` refuses to start, and
/// `--dry-run` says when the next window opens. Rollbacks and recovery are emergencies: no window
/// holds them back.
public struct ReleasePolicy: Sendable, Equatable {
    public var windows: [ReleaseWindow]

    public init(windows: [ReleaseWindow]) {
        self.windows = windows
    }

    /// Whether a release may start at `date` (always, without windows).
    public func isOpen(at date: Date) -> Bool {
        windows.isEmpty || windows.contains { $0.contains(date) }
    }

    /// The first moment at or after `date` when a window is open.
    public func nextOpening(after date: Date) -> Date? {
        windows.compactMap { $0.nextOpening(after: date) }.min()
    }

    /// The windows as people write them: `mon,tue 09:00-17:00 Europe/Berlin; sat 10:00-12:00 UTC`.
    public var summary: String {
        windows.map(\.description).joined(separator: "; ")
    }
}

/// Days of the week and a span of local time in a time zone, e.g. Monday to Friday, 09:00 to
/// 17:00 in Europe/Berlin. A span whose end is not after its start crosses midnight and belongs
/// to the day it starts on (`fri 22:00-02:00` ends on Saturday at 02:00).
public struct ReleaseWindow: Sendable, Equatable, CustomStringConvertible {
    /// Numbered as `Calendar` numbers weekdays (Sunday is 1).
    public enum Weekday: Int, Sendable, CaseIterable, Comparable {
        case sun = 1, mon, tue, wed, thu, fri, sat

        public var name: String { "\(self)" }

        public static func < (lhs: Weekday, rhs: Weekday) -> Bool { lhs.rawValue < rhs.rawValue }
    }

    public var days: [Weekday]
    /// Minutes after local midnight: from `start` (inclusive) to `end` (exclusive); `end` may be
    /// 1440 (24:00).
    public var start: Int
    public var end: Int
    /// A time zone identifier of the tz database, e.g. Europe/Berlin or UTC.
    public var timeZone: String

    public init(days: [Weekday], start: Int, end: Int, timeZone: String) {
        self.days = days.sorted()
        self.start = start
        self.end = end
        self.timeZone = timeZone
    }

    private var calendar: Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(secondsFromGMT: 0)!
        return calendar
    }

    private var crossesMidnight: Bool { end <= start }

    public func contains(_ date: Date) -> Bool {
        let calendar = calendar
        let parts = calendar.dateComponents([.weekday, .hour, .minute], from: date)
        guard let weekday = parts.weekday.flatMap(Weekday.init(rawValue:)) else { return false }
        let minute = (parts.hour ?? 0) * 60 + (parts.minute ?? 0)
        if !crossesMidnight { return days.contains(weekday) && minute >= start && minute < end }
        let previous = Weekday(rawValue: (weekday.rawValue + 5) % 7 + 1) ?? weekday
        return (days.contains(weekday) && minute >= start) || (days.contains(previous) && minute < end)
    }

    /// `date` itself when the window is open then, else the next start of the window (within
    /// the coming 8 days, which always holds one for a window with a day).
    public func nextOpening(after date: Date) -> Date? {
        if contains(date) { return date }
        let calendar = calendar
        let midnight = calendar.startOfDay(for: date)
        for offset in 0...8 {
            guard let day = calendar.date(byAdding: .day, value: offset, to: midnight),
                let weekday = Weekday(rawValue: calendar.component(.weekday, from: day)), days.contains(weekday),
                let opening = calendar.date(
                    bySettingHour: start / 60, minute: start % 60, second: 0, of: day, matchingPolicy: .nextTime)
            else { continue }
            if opening > date { return opening }
        }
        return nil
    }

    public var description: String {
        let names = days.count == 7 ? "every day" : days.map(\.name).joined(separator: ",")
        return "\(names) \(Self.clock(start))-\(Self.clock(end)) \(timeZone)"
    }

    static func clock(_ minutes: Int) -> String {
        String(format: "%02d:%02d", minutes / 60, minutes % 60)
    }
}
