import Foundation
import Provenance
import TestSupport
import Testing

/// The pin and the bad marks as the history's records make them: the newest pin or unpin
/// decides, every bad mark counts, dry runs and failed changes count for nothing.
@Suite struct ReleasePolicyStateTests {
    static func change(
        _ id: String, _ action: ReleaseAction, release: String? = nil, model: String? = nil, reason: String? = nil,
        outcome: ReleaseOutcome = .succeeded, dryRun: Bool = false
    ) -> ReleaseRecord {
        var record = ReleaseRecords.sample(id)
        record.action = action
        record.policyChange = .init(release: release, modelSHA256: model, reason: reason)
        record.outcome = outcome
        record.dryRun = dryRun
        return record
    }

    @Test func theNewestPinOrUnpinDecides() {
        let pinned = ReleasePolicyState(newestFirst: [
            Self.change("r3", .pin, release: "rel-2", reason: "freeze"), Self.change("r2", .unpin, release: "rel-1"),
            Self.change("r1", .pin, release: "rel-1"),
        ])
        #expect(pinned.pin?.release == "rel-2" && pinned.pin?.reason == "freeze")
        let unpinned = ReleasePolicyState(newestFirst: [
            Self.change("r2", .unpin, release: "rel-1"), Self.change("r1", .pin, release: "rel-1"),
        ])
        #expect(unpinned.pin == nil)
        let ignored = ReleasePolicyState(newestFirst: [
            Self.change("r3", .unpin, release: "rel-1", dryRun: true),
            Self.change("r2", .unpin, release: "rel-1", outcome: .failed), Self.change("r1", .pin, release: "rel-1"),
        ])
        #expect(ignored.pin?.release == "rel-1", "a dry run or a failed unpin lifts nothing")
    }

    @Test func everyBadMarkCountsOnce() {
        let state = ReleasePolicyState(newestFirst: [
            Self.change("r3", .markBad, model: "aaa", reason: "again"),
            Self.change("r2", .markBad, model: "bbb", reason: "nonsense"),
            Self.change("r1", .markBad, model: "aaa", reason: "stale ids"), Self.change("r0", .pin, release: "x"),
        ])
        #expect(state.badModels.map(\.modelSHA256) == ["aaa", "bbb"])
        #expect(state.badModel("bbb")?.reason == "nonsense")
        #expect(state.badModel("ccc") == nil && state.badModel(nil) == nil)
        #expect(state.pin?.release == "x", "a bad mark does not lift a pin")
    }

    @Test func aRecordWithoutAChangeCountsForNothing() {
        var release = ReleaseRecords.sample("r1")
        release.action = .release
        #expect(ReleasePolicyState(newestFirst: [release]) == ReleasePolicyState())
    }

    /// Reading the state walks the whole history: a foreign line, a line that is not JSON and a
    /// torn last line (a crash mid-append) are passed over, the pin and the marks still count.
    @Test func aTornOrForeignLineDoesNotHideThePinOrTheMarks() async throws {
        try await withTemporaryDirectory { folder in
            let history = ReleaseHistory(path: folder + "/h.jsonl")
            try history.append(Self.change("r1", .pin, release: "rel-1", reason: "freeze"))
            try history.append(Self.change("r2", .markBad, model: "aaa", reason: "stale ids"))
            let lines = try String(contentsOfFile: history.path, encoding: .utf8).split(separator: "\n")
            try #require(lines.count == 2)
            let text =
                "\(lines[0])\n{\"user\":\"x\"}\nnot json at all\n\(lines[1])\n{\"release_id\":\"rel-torn\",\"sche"
            try text.write(toFile: history.path, atomically: true, encoding: .utf8)

            let state = try history.policyState()
            #expect(state.pin?.release == "rel-1" && state.pin?.reason == "freeze")
            #expect(state.badModels.map(\.modelSHA256) == ["aaa"])
        }
    }
}
