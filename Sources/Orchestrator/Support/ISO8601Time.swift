public import Foundation
import OrchestratorSupport
import StrictYAML

/// A time as the command line takes it (`history --at`, `--since`, `--until`): ISO 8601 in its
/// RFC 3339 form, `2026-12-01T14:05:00Z` or `2026-12-01T15:05:00+01:00`, with optional fractional
/// seconds, and nothing looser. Every field is checked against its range (no February 30, no hour
/// 24, no offset +99:99) and only ASCII digits count, so that a time that is not one is refused
/// rather than read as some other time.
public enum ISO8601Time {
    /// What the messages show as the accepted form.
    public static let example = "2026-12-01T14:05:00Z, or with an offset 2026-12-01T15:05:00+01:00"

    /// The time `text` names.
    ///
    /// - Throws: `.invalidInput` (exit 2) saying what is wrong and showing the accepted form.
    public static func parse(_ text: String) throws -> Date {
        var reader = Reader(bytes: Array(text.utf8))
        let year = try reader.number(digits: 4, "the year")
        try reader.expect("-", after: "the year")
        let month = try reader.number(digits: 2, "the month")
        try reader.expect("-", after: "the month")
        let day = try reader.number(digits: 2, "the day")
        try reader.expect("T", after: "the date (a T separates it from the time)")
        let hour = try reader.number(digits: 2, "the hour")
        try reader.expect(":", after: "the hour")
        let minute = try reader.number(digits: 2, "the minute")
        try reader.expect(":", after: "the minute")
        let second = try reader.number(digits: 2, "the second")
        var fraction = 0.0
        if reader.skip(".") {
            let digits = reader.digits()
            guard !digits.isEmpty, digits.count <= 9 else {
                throw invalid(text, "a decimal point must be followed by 1 to 9 digits")
            }
            fraction = Double("0." + String(decoding: digits, as: UTF8.self)) ?? 0
        }
        var offset = 0
        if !reader.skip("Z") {
            guard let sign = reader.sign() else {
                throw invalid(text, "the time must end with Z (UTC) or an offset such as +01:00")
            }
            let offsetHours = try reader.number(digits: 2, "the offset's hours")
            try reader.expect(":", after: "the offset's hours")
            let offsetMinutes = try reader.number(digits: 2, "the offset's minutes")
            guard offsetHours <= 23, offsetMinutes <= 59 else {
                throw invalid(
                    text,
                    "the offset \(sign > 0 ? "+" : "-")\(pad(offsetHours)):\(pad(offsetMinutes)) is out of range (-23:59 to +23:59)"
                )
            }
            offset = sign * (offsetHours * 3600 + offsetMinutes * 60)
        }
        guard reader.isAtEnd else { throw invalid(text, "unexpected \(reader.rest) after the time") }
        guard (1...12).contains(month) else {
            throw invalid(text, "the month is \(pad(month)): months go from 01 to 12")
        }
        let length = days(inMonth: month, of: year)
        guard (1...length).contains(day) else {
            throw invalid(text, "\(monthNames[month - 1]) \(year) has \(length) days, not \(day)")
        }
        guard hour <= 23 else { throw invalid(text, "the hour is \(pad(hour)): hours go from 00 to 23") }
        guard minute <= 59 else { throw invalid(text, "the minute is \(pad(minute)): minutes go from 00 to 59") }
        guard second <= 59 else { throw invalid(text, "the second is \(pad(second)): seconds go from 00 to 59") }
        let seconds =
            daysSinceEpoch(year: year, month: month, day: day) * 86_400 + hour * 3600 + minute * 60 + second - offset
        return Date(timeIntervalSince1970: Double(seconds) + fraction)
    }

    private static let monthNames = [
        "January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November",
        "December",
    ]

    static func days(inMonth month: Int, of year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (Howard Hinnant's
    /// `days_from_civil`).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    private static func pad(_ value: Int) -> String {
        value < 10 ? "0\(value)" : "\(value)"
    }

    static func invalid(_ text: String, _ reason: String) -> OrchestratorError {
        OrchestratorError(
            .invalidInput, "\"\(echoed(text))\" is not an ISO 8601 time: \(reason)", hint: "write it as \(example)")
    }

    /// Reads the text's bytes from the start.
    private struct Reader {
        let bytes: [UInt8]
        var position = 0

        var isAtEnd: Bool { position == bytes.count }
        /// What comes next, as a message shows it.
        var rest: String { "\"\(echoed(String(decoding: bytes[position...].prefix(24), as: UTF8.self), limit: 24))\"" }
        private var text: String { String(decoding: bytes, as: UTF8.self) }

        /// Exactly `digits` ASCII digits.
        mutating func number(digits: Int, _ what: String) throws -> Int {
            var value = 0
            for _ in 0..<digits {
                guard position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) else {
                    let found = position < bytes.count ? "found \(rest)" : "the text ends"
                    throw ISO8601Time.invalid(text, "\(what) must be \(digits) ASCII digits (0-9), \(found)")
                }
                value = value * 10 + Int(bytes[position] - UInt8(ascii: "0"))
                position += 1
            }
            return value
        }

        mutating func expect(_ character: Unicode.Scalar, after what: String) throws {
            guard skip(character) else {
                let found = position < bytes.count ? "found \(rest)" : "the text ends"
                throw ISO8601Time.invalid(text, "\"\(character)\" must follow \(what), \(found)")
            }
        }

        mutating func skip(_ character: Unicode.Scalar) -> Bool {
            guard position < bytes.count, bytes[position] == UInt8(ascii: character) else { return false }
            position += 1
            return true
        }

        mutating func sign() -> Int? {
            if skip("+") { return 1 }
            if skip("-") { return -1 }
            return nil
        }

        mutating func digits() -> ArraySlice<UInt8> {
            let start = position
            while position < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[position]) {
                position += 1
            }
            return bytes[start..<position]
        }
    }
}
