import Foundation
import EngineAPI
import StrictYAML
import Orchestrator
import Testing

@Suite struct ReleaseHistoryTests {
    static func record(_ id: String) -> ReleaseRecord {
        ReleaseRecord(
            releaseID: id, startedOn: Date(timeIntervalSince1970: 1_800_000_000), finishedOn: nil,
            invocation: .init(trigger: "manual", user: "u", host: "h", command: []), builder: .init(id: "orchestrate", version: "t"),
            source: .init(gitCommit: nil, gitDirty: nil), pipeline: .init(name: "p", path: "/p.yml", sha256: "00"), overrides: [],
            dryRun: false, stages: [], model: nil, outcome: .succeeded)
    }

    func history(in folder: String, records: Int) throws -> ReleaseHistory {
        let history = ReleaseHistory(path: folder + "/h.jsonl")
        for index in 0..<records { try history.append(Self.record("rel-\(index)")) }
        return history
    }

    @Test func appendsChainEachRecordToThePreviousLine() async throws {
        try await withTemporaryDirectory { folder in
            let history = try history(in: folder, records: 3)
            let lines = read(history.path).split(separator: "\n")
            #expect(lines.count == 3)
            let records = try history.records()
            #expect(records.map(\.releaseID) == ["rel-0", "rel-1", "rel-2"])
            #expect(records[0].previousSHA256 == nil)
            #expect(records[1].previousSHA256?.count == 64)
            #expect(try history.verify().isEmpty)
        }
    }

    @Test func verifyDetectsAnEditedRecord() async throws {
        try await withTemporaryDirectory { folder in
            let history = try history(in: folder, records: 3)
            try write(read(history.path).replacingOccurrences(of: "rel-1", with: "rel-9"), to: history.path)
            let problems = try history.verify()
            #expect(problems.map(\.line) == [3])
            #expect(problems.first?.message.contains("previous_sha256 does not match line 2") == true)
        }
    }

    @Test func verifyDetectsRemovedRecords() async throws {
        try await withTemporaryDirectory { folder in
            let history = try history(in: folder, records: 4)
            var lines = read(history.path).split(separator: "\n", omittingEmptySubsequences: false)
            lines.remove(at: 1)
            try write(lines.joined(separator: "\n"), to: history.path)
            #expect(try history.verify().contains { $0.line == 2 })

            let tail = try self.history(in: folder + "/b", records: 4)
            let kept = read(tail.path).split(separator: "\n").prefix(2).joined(separator: "\n") + "\n"
            try write(kept, to: tail.path)
            #expect(try tail.verify().contains { $0.message.contains("truncated: the head file records 4 lines, the file has 2") })
        }
    }

    @Test func aTornLastLineIsReportedAndLaterAppendsStayReadable() async throws {
        try await withTemporaryDirectory { folder in
            let history = try history(in: folder, records: 2)
            // A crash mid-append leaves half a line with no newline.
            let handle = try #require(FileHandle(forWritingAtPath: history.path))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("{\"release_id\":\"rel-torn\",\"sche".utf8))
            try handle.close()
            let lines = try history.lines()
            #expect(lines.last?.problem?.contains("incomplete") == true)
            #expect(try history.records().count == 2)

            try history.append(Self.record("rel-after"))
            #expect(try history.records().map(\.releaseID) == ["rel-0", "rel-1", "rel-after"])
            let problems = try history.verify()
            #expect(problems.count == 1)
            #expect(problems.first?.line == 3)
            #expect(problems.first?.message.contains("torn write") == true)
        }
    }

    @Test func anAbsentHistoryIsEmptyAndVerifies() async throws {
        try await withTemporaryDirectory { folder in
            let history = ReleaseHistory(path: folder + "/none.jsonl")
            let records = try history.records()
            let problems = try history.verify()
            #expect(records.isEmpty)
            #expect(problems.isEmpty)
        }
    }

    /// A record written by an earlier version (before the judge, with its plan) stays readable:
    /// the history is forever.
    @Test func aRecordOfAnEarlierVersionStaysReadable() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/record-before-the-judge.json")
        let line = try Data(contentsOf: fixture).prefix { $0 != UInt8(ascii: "\n") }
        let record = try ReleaseRecord.decode(Data(line))
        #expect(record.outcome == .succeeded)
        #expect(record.plan?.rollout?.steps.first?.power == [])
    }
}
