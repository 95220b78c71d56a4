import EngineAPI
import Foundation
import OrchestratorSupport
import PipelineSchema
import Provenance
import StrictYAML
import TestSupport
import Testing

@Suite struct ReleaseHistoryTests {
    static func record(_ id: String) -> ReleaseRecord { ReleaseRecords.sample(id) }

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
            #expect(
                try tail.verify().contains {
                    $0.message.contains("truncated: the head file records 4 lines, the file has 2")
                })
        }
    }

    /// What a crash mid-append leaves (half a line, no newline) is reported as torn, never read
    /// as a record, and the next append keeps its bytes aside, takes its place and says so: the
    /// history verifies again.
    @Test func aTornLastLineIsKeptAsideAndReplacedByTheNextAppend() async throws {
        try await withTemporaryDirectory { folder in
            let history = try history(in: folder, records: 2)
            let torn = "{\"release_id\":\"rel-torn\",\"sche"
            let handle = try #require(FileHandle(forWritingAtPath: history.path))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(torn.utf8))
            try handle.close()
            let lines = try history.lines()
            #expect(lines.last?.problem?.contains("incomplete") == true)
            #expect(lines.last?.problem?.contains("orchestrate recover") == true)
            #expect(try history.records().count == 2)
            #expect(try history.tornTail()?.number == 3)
            #expect(try history.verify().map(\.line) == [3])

            let written = try history.append(Self.record("rel-after"))
            let repair = try #require(written.historyRepair)
            #expect(repair.line == 3)
            #expect(repair.bytes == torn.utf8.count)
            #expect(read(repair.keptIn) == torn)
            #expect(try history.records().map(\.releaseID) == ["rel-0", "rel-1", "rel-after"])
            #expect(
                try history.records().last?.historyRepair == repair,
                "the repair is recorded in the line that replaced it")
            #expect(try history.verify().isEmpty)
            #expect(try history.tornTail() == nil)
        }
    }

    /// A complete record missing only its newline is still a torn line: a record counts once its
    /// newline is written, so a reader never shows a record the repair then moves aside.
    @Test func aRecordWithoutItsNewlineIsTorn() async throws {
        try await withTemporaryDirectory { folder in
            let history = try history(in: folder, records: 1)
            var text = read(history.path)
            text += String(decoding: try Self.record("rel-unended").jsonLine(), as: UTF8.self)
            try write(text, to: history.path)
            #expect(try history.records().map(\.releaseID) == ["rel-0"])
            #expect(try history.tornTail()?.number == 2)
            try history.append(Self.record("rel-1"))
            #expect(try history.records().map(\.releaseID) == ["rel-0", "rel-1"])
            #expect(try history.verify().isEmpty)
        }
    }

    /// A head file that names no usable line is reported as such, never trapped on or called missing.
    @Test(arguments: [
        (
            "{\"last_sha256\":\"\(String(repeating: "a", count: 64))\",\"lines\":0}", "unparseable head",
            "lines is 0; a head names at least 1 line"
        ),
        ("{\"last_sha256\":\"\(String(repeating: "a", count: 64))\",\"lines\":-3}", "unparseable head", "lines is -3"),
        (
            "{\"last_sha256\":\"\(String(repeating: "a", count: 64))\",\"lines\":100000000000000000000000}",
            "unparseable head", "lines"
        ),
        (
            "{\"last_sha256\":\"\(String(repeating: "a", count: 64))\",\"lines\":9223372036854775807}", "truncated",
            "records 9223372036854775807 lines, the file has 2"
        ),
        ("{\"last_sha256\":\"zz\",\"lines\":1}", "unparseable head", "last_sha256 is not 64 hex digits"),
        ("{\"lines\":1}", "unparseable head", "last_sha256 is missing"),
        ("not json at all", "unparseable head", "not {"),
    ])
    func aBadHeadIsRefusedClearly(head: String, kind: String, detail: String) async throws {
        try await withTemporaryDirectory { folder in
            let history = try history(in: folder, records: 2)
            try write(head, to: history.path + ".head")
            let problems = try history.verify()
            #expect(problems.count == 1)
            #expect(problems.first?.line == 0)
            #expect(problems.first?.message.contains(kind) == true, "\(problems)")
            #expect(problems.first?.message.contains(detail) == true, "\(problems)")
            #expect(problems.first?.message.contains("missing") == false || detail.contains("missing"))
        }
    }

    @Test func linesBeyondTheHeadAreChecked() async throws {
        try await withTemporaryDirectory { folder in
            let history = try history(in: folder, records: 3)
            let head = read(history.path + ".head")
            // Appended with a correct chain link, the head left as it was.
            try history.append(Self.record("rel-appended"))
            try write(head, to: history.path + ".head")
            let problems = try history.verify()
            #expect(problems.map(\.line) == [4])
            #expect(problems.first?.message.hasPrefix("beyond the 3 lines the head file records") == true)
        }
    }

    @Test func aFileThatIsNotAHistoryIsNeverAppendedTo() async throws {
        try await withTemporaryDirectory { folder in
            let path = folder + "/passwd"
            let text = "root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
            try write(text, to: path)
            let history = ReleaseHistory(path: path)
            let error = #expect(throws: OrchestratorError.self) { try history.append(Self.record("rel-0")) }
            #expect(error?.code == .unreadableState)
            #expect(error?.code.exitCode == 2)
            #expect(error?.message.hasPrefix("\(path):1: not a release record") == true)
            #expect(error?.message.contains("nothing was changed") == true)
            #expect(read(path) == text)
            #expect(!FileManager.default.fileExists(atPath: path + ".head"))
            #expect(try history.foreignLine()?.number == 1)

            // A record followed by valid JSON that is not one: line 2 is named.
            let mixed = try self.history(in: folder + "/m", records: 1)
            try write(read(mixed.path) + "{\"user\":\"x\"}\n", to: mixed.path)
            #expect(try mixed.foreignLine()?.number == 2)
            #expect(throws: OrchestratorError.self) { try mixed.append(Self.record("rel-1")) }
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
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Fixtures/record-before-the-judge.json")
        let line = try Data(contentsOf: fixture).prefix { $0 != UInt8(ascii: "\n") }
        let record = try ReleaseRecord.decode(Data(line))
        #expect(record.outcome == .succeeded)
        #expect(record.plan?.rollout?.steps.first?.power == [])
    }

    /// The plan such a record stored reads back with typed parameters: a whole number stored for a
    /// number is that number, and a parameter the plan predates takes its default.
    @Test func anEarlierPlansParametersReadBackTyped() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent(
            "Fixtures/record-before-the-judge.json")
        let line = try Data(contentsOf: fixture).prefix { $0 != UInt8(ascii: "\n") }
        let stages = try #require(try ReleaseRecord.decode(Data(line)).plan?.stages)
        guard case .ingest(let ingest)? = stages[0].parameters, case .split(let split)? = stages[1].parameters,
            case .train(let train)? = stages[2].parameters, case .evaluate(let evaluate)? = stages[3].parameters
        else {
            Issue.record("\(stages.map(\.parameters))")
            return
        }
        #expect(
            ingest.maxSeconds == 300 && ingest.values["mode"] == .string("historical") && ingest.format == .movielog)
        #expect(split.testSize == 0.2 && split.seed == 42 && split.mode == .random, "mode came after this record")
        #expect(train.algorithm == .svd && train.factors == 100 && train.lr == 0.005 && train.tuned == nil)
        #expect(evaluate.k == 10)
    }
}
