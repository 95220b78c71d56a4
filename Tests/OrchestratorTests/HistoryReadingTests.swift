import Foundation
import RecEngine
import StrictYAML
import Testing

@testable import Orchestrator
@testable import OrchestratorSupport
@testable import PipelineSchema
@testable import Provenance

/// Reading the history a line at a time, forward or from the end, and the decisions that read
/// only the newest records: they decide as they did from every record.
@Suite struct HistoryReadingTests {
    // MARK: Lines, forward and backward

    /// Lines across chunk boundaries, empty lines, lines longer than the limit and a torn last
    /// line read the same forward and backward: same offsets, lengths, digests.
    @Test(arguments: [false, true]) func linesReadTheSameForwardAndBackward(torn: Bool) async throws {
        try await withTemporaryDirectory { folder in
            let chunk = HistoryFile.chunkBytes
            let lengths = [10, 0, chunk - 1, chunk, chunk + 1, 0, 3, 2 * chunk + 17, 150, 1]
            var text = Data()
            for (index, length) in lengths.enumerated() {
                text.append(Data(repeating: UInt8(ascii: "a") + UInt8(index), count: length))
                text.append(UInt8(ascii: "\n"))
            }
            if torn { text.append(Data("{\"torn".utf8)) }
            let path = folder + "/h.jsonl"
            try text.write(to: URL(fileURLWithPath: path))
            let limit = chunk + 5
            let result = try HistoryFile.withOpened(path, for: .read) {
                file -> ([HistoryFile.RawLine], [HistoryFile.RawLine]) in
                var forward: [HistoryFile.RawLine] = []
                var backward: [HistoryFile.RawLine] = []
                try file.forEachLine(limit: limit) {
                    forward.append($0)
                    return true
                }
                try file.forEachLineBackward(limit: limit) {
                    backward.append($0)
                    return true
                }
                return (forward, backward)
            }
            let (forward, backward) = try #require(result)
            #expect(forward.map(\.length) == lengths + (torn ? [6] : []))
            #expect(backward.reversed().map(\.offset) == forward.map(\.offset))
            #expect(backward.reversed().map(\.length) == forward.map(\.length))
            #expect(backward.reversed().map(\.sha256) == forward.map(\.sha256))
            #expect(backward.reversed().map(\.isWhole) == forward.map(\.isWhole))
            #expect(forward.map(\.isTerminated) == lengths.map { _ in true } + (torn ? [false] : []))
            #expect(backward.first?.isTerminated == !torn)
            // A line over the limit is not held, but its digest is that of all its bytes.
            let long = try #require(forward.first { !$0.isWhole })
            #expect(long.length == 2 * chunk + 17)
            #expect(long.bytes.count == HistoryFile.overlongPrefixBytes)
            #expect(long.sha256 == sha256Hex(Data(repeating: UInt8(ascii: "a") + 7, count: 2 * chunk + 17)))
            #expect(forward.filter { !$0.isWhole }.count == 1)
            for line in forward where line.isWhole {
                #expect(line.bytes == text.subdata(in: Int(line.offset)..<Int(line.offset) + line.length))
            }
        }
    }

    /// Newest first, lines carry the numbers they have from the start, with or without a head.
    @Test func linesNewestFirstAreNumberedFromTheStart() async throws {
        try await withTemporaryDirectory { folder in
            let history = ReleaseHistory(path: folder + "/h.jsonl")
            for index in 0..<5 { try history.append(ReleaseRecords.sample("rel-\(index)")) }
            for withHead in [true, false] {
                if !withHead { unlink(history.path + ".head") }
                var numbers: [Int] = []
                var ids: [String] = []
                try history.forEachLineNewestFirst { line in
                    numbers.append(line.number)
                    ids.append(line.record?.releaseID ?? "?")
                    return true
                }
                #expect(numbers == [5, 4, 3, 2, 1])
                #expect(ids == ["rel-4", "rel-3", "rel-2", "rel-1", "rel-0"])
            }
            #expect(try history.lastRecord(where: { $0.releaseID == "rel-1" })?.releaseID == "rel-1")
            #expect(try history.lastRecord(startedOnOrAfter: Date.distantFuture, where: { _ in true }) == nil)
        }
    }

    /// The history lists what reading every record listed, and an append after a torn line or
    /// with a stale head counts the lines right.
    @Test func appendsKeepTheHeadRightWhateverItSaid() async throws {
        try await withTemporaryDirectory { folder in
            let history = ReleaseHistory(path: folder + "/h.jsonl")
            for index in 0..<3 { try history.append(ReleaseRecords.sample("rel-\(index)")) }
            // A head of an earlier version: no byte count.
            try write(
                "{\"last_sha256\":\"\(try #require(try history.lines().last?.sha256))\",\"lines\":3}",
                to: history.path + ".head")
            try history.append(ReleaseRecords.sample("rel-3"))
            #expect(try history.verify().isEmpty)
            #expect(read(history.path + ".head").contains("\"bytes\":\(read(history.path).utf8.count)"))
        }
    }

    // MARK: Decisions from the newest records

    static func randomHistory(_ generator: inout SeededGenerator, count: Int) -> [ReleaseRecord] {
        let names = ["ingest", "train", "evaluate"]
        let statuses: [StageStatus] = [.succeeded, .cached, .failed, .skipped]
        let outcomes: [ReleaseOutcome] = [.succeeded, .succeeded, .failed, .rolledBack, .planned]
        return (0..<count).map { index in
            var record = ReleaseRecords.sample("rel-\(index)")
            record.outcome = outcomes[generator.nextIndex(below: outcomes.count)]
            record.dryRun = generator.nextIndex(below: 8) == 0
            record.action = generator.nextIndex(below: 6) == 0 ? .rollback : .release
            record.stages = names.filter { _ in generator.nextIndex(below: 3) > 0 }.map { name in
                var stage = StageExecutor.emptyRecord(
                    Stage(
                        name: name, action: .command(["true"]), env: [:], inputs: [], outputs: [], metricsFile: nil,
                        timeout: nil, retries: 0, gate: []),
                    status: statuses[generator.nextIndex(below: statuses.count)], reason: nil)
                if name == "ingest" && generator.nextIndex(below: 2) == 0 {
                    for share in 1...5 { stage.metrics["rating_share_\(share)"] = Double(share) / 15 }
                }
                return stage
            }
            if record.outcome == .succeeded && record.action == .release && !record.dryRun {
                record.deployment = .init(
                    runtime: "process", color: "blue", modelSHA256: "model-\(generator.nextIndex(below: 4))")
            }
            return record
        }
    }

    /// The planner decides from the few records `PlanningRecords` keeps exactly as from all.
    @Test func planningReadsOnlyTheRecordsThatDecide() {
        var generator = SeededGenerator(seed: 11)
        let stages = ["ingest", "train", "evaluate", "new"].map { name in
            Stage(
                name: name,
                action: name == "ingest"
                    ? .builtin(.ingest(IngestParameters(source: "/log", output: "/o.csv")))
                    : .command(["true"]), env: [:],
                inputs: [], outputs: [],
                metricsFile: nil, timeout: nil, retries: 0, gate: [])
        }
        for trial in 0..<300 {
            let records = Self.randomHistory(&generator, count: generator.nextIndex(below: 40))
            var planning = PlanningRecords(stages: stages)
            var read = 0
            for record in records.reversed() where !planning.isComplete {
                planning.consider(record)
                read += 1
            }
            for stage in stages {
                #expect(
                    Planner.lastSuccess(of: stage.name, in: planning.records)?.0.releaseID
                        == Planner.lastSuccess(of: stage.name, in: records)?.0.releaseID,
                    "trial \(trial), stage \(stage.name)")
                #expect(
                    Planner.baselineShares(for: stage, in: planning.records)
                        == Planner.baselineShares(for: stage, in: records), "trial \(trial)")
            }
            #expect(planning.records.count <= 4, "one record per question at most")
        }
        // With every stage found in the newest record, only that record is read.
        var newest = ReleaseRecords.sample("rel-new")
        newest.stages = stages.map { StageExecutor.emptyRecord($0, status: .succeeded, reason: nil) }
        newest.stages[0].metrics = Dictionary(uniqueKeysWithValues: (1...5).map { ("rating_share_\($0)", 0.2) })
        var planning = PlanningRecords(stages: stages)
        planning.consider(newest)
        #expect(planning.isComplete)
    }

    /// `rollback` picks from the newest records what picking from every record picked.
    @Test func rollbackPicksFromTheNewestRecordsWhatItPickedFromAll() {
        var generator = SeededGenerator(seed: 3)
        for trial in 0..<500 {
            let records = Self.randomHistory(&generator, count: generator.nextIndex(below: 30))
            let promoted = records.filter {
                ($0.action ?? .release) == .release && $0.outcome == .succeeded && $0.deployment?.modelSHA256 != nil
                    && !$0.dryRun
            }
            let liveRecord =
                promoted.isEmpty || generator.nextIndex(below: 5) == 0
                ? nil : promoted[generator.nextIndex(below: promoted.count)]
            var live = liveRecord.map {
                LiveRelease(
                    color: "blue", releaseID: $0.releaseID, modelSHA256: $0.deployment?.modelSHA256 ?? "",
                    modelVersion: "v")
            }
            if generator.nextIndex(below: 6) == 0 {
                live = LiveRelease(color: "blue", releaseID: "rel-unknown", modelSHA256: "model-1", modelVersion: "v")
            }
            let requested: String? = generator.nextIndex(below: 3) == 0 ? "rel-\(generator.nextIndex(below: 30))" : nil
            // What `Rollback` decided when it read every record.
            let expected: ReleaseRecord?
            if let requested {
                expected = promoted.last { $0.releaseID == requested }
            } else {
                let before = promoted.prefix { $0.releaseID != live?.releaseID }
                expected = before.last { $0.deployment?.modelSHA256 != live?.modelSHA256 } ?? before.last
            }
            var choice = RollbackTarget(requested: requested, live: live)
            for record in records.reversed() where !choice.isDecided { choice.consider(record) }
            #expect(choice.target?.releaseID == expected?.releaseID, "trial \(trial)")
        }
    }
}
