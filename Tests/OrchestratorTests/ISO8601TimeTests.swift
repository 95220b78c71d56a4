import Foundation
import Orchestrator
import OrchestratorSupport
import Testing

/// `--at`, `--since` and `--until` take ISO 8601 times and nothing looser.
@Suite struct ISO8601TimeTests {
    @Test(arguments: [
        ("2026-12-01T14:05:00Z", 1_796_133_900.0),
        ("2026-12-01T15:05:00+01:00", 1_796_133_900.0),
        ("2026-12-01T09:35:00-04:30", 1_796_133_900.0),
        ("2026-12-01T14:05:00.250Z", 1_796_133_900.25),
        ("2024-02-29T00:00:00Z", 1_709_164_800.0),
        ("2000-02-29T23:59:59Z", 951_868_799.0),
        ("1970-01-01T00:00:00Z", 0.0),
        ("1969-12-31T23:59:59Z", -1.0),
        ("2026-12-31T23:59:59+23:59", 1_798_675_259.0),
    ])
    func acceptsWhatISO8601Says(text: String, seconds: Double) throws {
        #expect(try ISO8601Time.parse(text).timeIntervalSince1970 == seconds)
        // The same as Foundation's reading of a valid time.
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        if let foundation = plain.date(from: text) ?? formatter.date(from: text) {
            #expect(abs(foundation.timeIntervalSince1970 - seconds) < 0.001)
        }
    }

    @Test(arguments: [
        ("2026-02-30T00:00:00Z", "February 2026 has 28 days, not 30"),
        ("2100-02-29T00:00:00Z", "February 2100 has 28 days"),
        ("2026-04-31T00:00:00Z", "April 2026 has 30 days"),
        ("2026-12-01T14:05:00+99:99", "the offset +99:99 is out of range"),
        ("2026-12-01T14:05:00+24:00", "the offset +24:00 is out of range"),
        ("２０２６-12-01T14:05:00Z", "the year must be 4 ASCII digits"),
        ("2026-12-01T14:05:0５Z", "the second must be 2 ASCII digits"),
        ("2026-13-01T14:05:00Z", "the month is 13"),
        ("2026-00-01T14:05:00Z", "the month is 00"),
        ("2026-12-00T14:05:00Z", "December 2026 has 31 days, not 0"),
        ("2026-12-01T24:00:00Z", "the hour is 24"),
        ("2026-12-01T14:60:00Z", "the minute is 60"),
        ("2026-12-01T14:05:60Z", "the second is 60"),
        ("2026-12-01 14:05:00Z", "\"T\" must follow the date"),
        ("2026-12-01T14:05:00", "must end with Z (UTC) or an offset"),
        ("2026-12-01T14:05:00z", "must end with Z (UTC) or an offset"),
        ("2026-12-01T14:05:00Zjunk", "unexpected \"junk\" after the time"),
        ("2026-12-01T14:05:00.Z", "a decimal point must be followed by 1 to 9 digits"),
        ("2026-12-01", "\"T\" must follow the date"),
        ("", "the year must be 4 ASCII digits (0-9), the text ends"),
        ("+2026-12-01T14:05:00Z", "the year must be 4 ASCII digits"),
        ("2026-12-01T14:05:00+0100", "\":\" must follow the offset's hours"),
    ])
    func refusesAnythingLooser(text: String, reason: String) {
        let error = #expect(throws: OrchestratorError.self) { try ISO8601Time.parse(text) }
        #expect(error?.code.exitCode == 2)
        #expect(error?.message.contains(reason) == true, "\(error?.message ?? "")")
        #expect(error?.hint?.contains("2026-12-01T14:05:00Z") == true, "the accepted form is shown")
    }

    /// Through the command line: exit 2 with the reason and the accepted form.
    @Test func historyRefusesFebruaryThirtieth() async throws {
        try await withTemporaryDirectory { folder in
            for option in ["--at", "--since", "--until"] {
                let result = try await HistoryCommandTests.orchestrate(
                    ["history", "--history", "h.jsonl", option, "2026-02-30T00:00:00Z"], in: folder)
                #expect(result.status == 2, "\(option): \(result.stderr)")
                #expect(result.stderr.contains("February 2026 has 28 days"), "\(option): \(result.stderr)")
                #expect(result.stderr.contains("2026-12-01T14:05:00Z"), "\(option): \(result.stderr)")
            }
        }
    }
}
