import Foundation
import PipelineSchema
import StrictYAML
import TestSupport
import Testing

/// `policy.windows`: when a release may start, in the window's own time zone, and what a
/// malformed window is told.
@Suite struct ReleasePolicyTests {
    /// A time written in UTC.
    static func utc(_ text: String) -> Date {
        let formatter = ISO8601DateFormatter()
        return formatter.date(from: text)!
    }

    static let office = ReleaseWindow(
        days: [.mon, .tue, .wed, .thu, .fri], start: 9 * 60, end: 17 * 60, timeZone: "Europe/Berlin")

    @Test func aWindowIsOpenOnItsDaysBetweenItsHoursInItsTimeZone() {
        // Monday 7 December 2026: Berlin is UTC+1 in winter.
        #expect(Self.office.contains(Self.utc("2026-12-07T08:00:00Z")), "09:00 in Berlin")
        #expect(!Self.office.contains(Self.utc("2026-12-07T07:59:00Z")), "08:59 in Berlin")
        #expect(Self.office.contains(Self.utc("2026-12-07T15:59:00Z")), "16:59 in Berlin")
        #expect(!Self.office.contains(Self.utc("2026-12-07T16:00:00Z")), "17:00 in Berlin: the end is out")
        #expect(!Self.office.contains(Self.utc("2026-12-12T10:00:00Z")), "a Saturday")
        // In summer Berlin is UTC+2: the same local hours are an hour earlier in UTC.
        #expect(Self.office.contains(Self.utc("2026-07-06T07:00:00Z")), "09:00 in Berlin in July")
        #expect(!Self.office.contains(Self.utc("2026-07-06T15:00:00Z")), "17:00 in Berlin in July")
    }

    @Test func theNextOpeningIsTheNextStartOnAnAllowedDay() throws {
        let policy = ReleasePolicy(windows: [Self.office])
        // Friday 17:30 in Berlin: the next window is Monday 09:00 Berlin, 08:00 UTC.
        let friday = Self.utc("2026-12-11T16:30:00Z")
        #expect(!policy.isOpen(at: friday))
        #expect(policy.nextOpening(after: friday) == Self.utc("2026-12-14T08:00:00Z"))
        // Before the start on an allowed day: the same day.
        #expect(policy.nextOpening(after: Self.utc("2026-12-08T05:00:00Z")) == Self.utc("2026-12-08T08:00:00Z"))
        // Open now: now.
        let open = Self.utc("2026-12-08T10:00:00Z")
        #expect(policy.nextOpening(after: open) == open)
        // The earliest of several windows.
        let saturday = ReleaseWindow(days: [.sat], start: 10 * 60, end: 12 * 60, timeZone: "UTC")
        #expect(
            ReleasePolicy(windows: [Self.office, saturday]).nextOpening(after: friday)
                == Self.utc("2026-12-12T10:00:00Z"))
    }

    @Test func aWindowAcrossMidnightBelongsToTheDayItStartsOn() {
        let night = ReleaseWindow(days: [.fri], start: 22 * 60, end: 2 * 60, timeZone: "UTC")
        #expect(night.contains(Self.utc("2026-12-11T23:00:00Z")), "Friday 23:00")
        #expect(night.contains(Self.utc("2026-12-12T01:59:00Z")), "Saturday 01:59, still Friday's window")
        #expect(!night.contains(Self.utc("2026-12-12T02:00:00Z")), "Saturday 02:00")
        #expect(!night.contains(Self.utc("2026-12-11T01:00:00Z")), "Friday 01:00 belongs to Thursday's, not allowed")
        #expect(night.description == "fri 22:00-02:00 UTC")
    }

    @Test func theWholeDayIsMidnightToTwentyFour() {
        let always = ReleaseWindow(days: ReleaseWindow.Weekday.allCases, start: 0, end: 1440, timeZone: "UTC")
        #expect(always.contains(Self.utc("2026-12-07T00:00:00Z")) && always.contains(Self.utc("2026-12-07T23:59:00Z")))
        #expect(always.description == "every day 00:00-24:00 UTC")
    }

    func load(_ policy: String) async throws -> Pipeline {
        try await withTemporaryDirectory { folder in
            let path = folder + "/pipeline.yml"
            try write(
                "version: 1\nname: demo\nstages:\n  - name: train\n    uses: train\n    with: {ratings: r.csv, model: m}\n"
                    + policy, to: path)
            return try PipelineLoader(environment: [:]).load(path)
        }
    }

    @Test func aValidPolicyIsRead() async throws {
        let pipeline = try await load(
            """
            policy:
              windows:
                - days: [mon, tue, wed, thu, fri]
                  hours: "09:00-17:00"
                  timezone: Europe/Berlin
                - hours: "22:00-02:00"

            """)
        let windows = try #require(pipeline.policy?.windows)
        #expect(
            windows == [
                Self.office,
                ReleaseWindow(days: ReleaseWindow.Weekday.allCases, start: 1320, end: 120, timeZone: "UTC"),
            ])
        #expect(pipeline.policy?.summary == "mon,tue,wed,thu,fri 09:00-17:00 Europe/Berlin; every day 22:00-02:00 UTC")
        #expect(try await load("").policy == nil)
    }

    @Test(arguments: [
        ("policy:\n  windows: []\n", "policy.windows", "no window: a release could never start"),
        (
            "policy:\n  windows:\n    - {days: [mon, funday], hours: \"09:00-17:00\"}\n", "policy.windows[0].days",
            "funday is not a day: use mon, tue, wed, thu, fri, sat, sun"
        ),
        (
            "policy:\n  windows:\n    - {hours: \"9-17\"}\n", "policy.windows[0].hours",
            "is not a span of local time: write HH:MM-HH:MM"
        ),
        (
            "policy:\n  windows:\n    - {hours: \"09:00-09:00\"}\n", "policy.windows[0].hours",
            "is not a span of local time"
        ),
        (
            "policy:\n  windows:\n    - {hours: \"09:00-25:00\"}\n", "policy.windows[0].hours",
            "is not a span of local time"
        ),
        (
            "policy:\n  windows:\n    - {hours: \"09:00-17:00\", timezone: Mars/Olympus}\n",
            "policy.windows[0].timezone", "is not a time zone this machine knows"
        ),
        ("policy:\n  windows:\n    - {days: [mon]}\n", "policy.windows[0].hours", "missing required key \"hours\""),
        ("policy:\n  window: []\n", "policy.window", "unknown key \"window\""),
    ])
    func aMalformedWindowIsToldWhereAndWhat(yaml: String, path: String, message: String) async throws {
        let error = await #expect(throws: PipelineValidationError.self) { try await load(yaml) }
        let issue = try #require(error?.issues.first { $0.message.contains(message) }, "\(String(describing: error))")
        #expect(issue.path == path, "\(issue)")
    }
}
