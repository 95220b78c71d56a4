import Foundation
import Orchestrator
import OrchestratorSupport
import Provenance
import StrictYAML
import Testing

/// The release history on a bad day, with real files: a full disk (a small tmpfs), a controller
/// killed in the middle of an append, a history that is a FIFO or a device, a huge history and a
/// huge line.
@Suite struct HistoryFaultTests {
    static func orchestrate(
        _ arguments: [String], in folder: String, environment: [String: String] = [:]
    ) async throws -> CLITests.Output {
        try await HistoryCommandTests.orchestrate(arguments, in: folder, environment: environment)
    }

    static func bigRecord(_ id: String) -> ReleaseRecord {
        var record = ReleaseRecords.sample(id)
        record.failure = String(repeating: "x", count: 64 << 10)
        return record
    }

    // MARK: A full disk

    /// On a full disk an append fails whole: the file, its head and its chain are as they were,
    /// and the error says the disk is full, which file, and what to do (exit 5). Once space is
    /// freed, the same append succeeds.
    @Test func aFullDiskLeavesTheHistoryAsItWasAndSaysSo() async throws {
        try await withSmallDisk(bytes: 512 << 10) { disk in
            let history = ReleaseHistory(path: disk + "/h.jsonl")
            for index in 0..<2 { try history.append(ReleaseRecords.sample("rel-\(index)")) }
            let before = read(history.path)
            let head = read(history.path + ".head")
            try fillDisk(disk)

            let error = #expect(throws: OrchestratorError.self) { try history.append(Self.bigRecord("rel-big")) }
            #expect(error?.code == .diskFull)
            #expect(error?.code.exitCode == 5)
            #expect(error?.message.contains("is full (ENOSPC") == true, "\(error?.description ?? "")")
            #expect(error?.message.contains(history.path) == true)
            #expect(error?.message.contains("the history is as it was") == true)
            #expect(error?.hint?.contains("free space") == true)
            #expect(read(history.path) == before, "not a byte of the failed record is left")
            #expect(read(history.path + ".head") == head)
            #expect(try history.verify().isEmpty)
            // A small record fits in the file's last block, but its head does not: all or nothing.
            let small = #expect(throws: OrchestratorError.self) {
                try history.append(ReleaseRecords.sample("rel-small"))
            }
            #expect(small?.code == .diskFull)
            #expect(
                small?.message.contains("the record was not appended and the history is as it was") == true,
                "\(small?.description ?? "")")
            #expect(read(history.path) == before)
            #expect(read(history.path + ".head") == head)

            try await freeDisk(disk)
            try history.append(Self.bigRecord("rel-big"))
            #expect(try history.records().map(\.releaseID) == ["rel-0", "rel-1", "rel-big"])
            #expect(try history.verify().isEmpty)
        }
    }

    /// A torn line on a full disk: its bytes cannot be kept aside, so nothing is touched, and the
    /// error says why; with space, the next append repairs it.
    @Test func aTornLineOnAFullDiskIsLeftUntilThereIsSpace() async throws {
        try await withSmallDisk(bytes: 512 << 10) { disk in
            let history = ReleaseHistory(path: disk + "/h.jsonl")
            try history.append(ReleaseRecords.sample("rel-0"))
            try write(read(history.path) + "{\"release_id\":\"rel-torn\"", to: history.path)
            let before = read(history.path)
            try fillDisk(disk)

            let error = #expect(throws: OrchestratorError.self) { try history.append(ReleaseRecords.sample("rel-1")) }
            #expect(error?.code == .diskFull)
            #expect(error?.message.contains("torn last line") == true, "\(error?.description ?? "")")
            #expect(read(history.path) == before)

            try await freeDisk(disk)
            let written = try history.append(ReleaseRecords.sample("rel-1"))
            #expect(written.historyRepair?.line == 2)
            #expect(try history.verify().isEmpty)
        }
    }

    /// `orchestrate run` on a full disk: exit 5, the file named, the history unchanged.
    @Test func aRunOnAFullDiskExitsFiveNamingTheFile() async throws {
        try await withSmallDisk(bytes: 512 << 10) { disk in
            try write(CLITests.passing, to: disk + "/p.yml")
            #expect(try await Self.orchestrate(["run", "p.yml"], in: disk).status == 0)
            let before = read(disk + "/h.jsonl")
            try fillDisk(disk)
            let run = try await Self.orchestrate(["run", "p.yml", "--dry-run", "--record-dry-run"], in: disk)
            #expect(run.status == 5, "\(run.stderr)")
            #expect(run.stderr.contains("/h.jsonl"), "\(run.stderr)")
            #expect(run.stderr.contains("is full (ENOSPC"), "\(run.stderr)")
            #expect(run.stderr.contains("the record was not appended and the history is as it was"), "\(run.stderr)")
            #expect(run.stderr.contains("free space"))
            #expect(read(disk + "/h.jsonl") == before)
            #expect(try await Self.orchestrate(["history", "verify", "--history", "h.jsonl"], in: disk).status == 0)
        }
    }

    // MARK: kill -9 in the middle of an append

    /// A controller killed halfway through writing its record leaves a torn line: `verify` fails
    /// saying what to do, `recover` keeps the torn bytes aside, records the interrupted run in
    /// their place with the repair, and the history verifies again.
    @Test func aRecordTornByKillNineIsRepairedByRecover() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            #expect(try await Self.orchestrate(["run", "p.yml"], in: folder).status == 0)
            let killed = try await Self.orchestrate(
                ["run", "p.yml"], in: folder, environment: try KillMidWrite.environment(suffix: "/h.jsonl"))
            #expect(killed.status == -1, "killed by SIGKILL mid-append: \(killed.stderr)")
            let text = read(folder + "/h.jsonl")
            #expect(!text.hasSuffix("\n"), "the record is torn")
            let torn = String(text.split(separator: "\n", omittingEmptySubsequences: false).last ?? "")

            let broken = try await Self.orchestrate(["history", "verify", "--history", "h.jsonl"], in: folder)
            #expect(broken.status == 1)
            #expect(broken.stderr.contains("line 2: the last line is incomplete"), "\(broken.stderr)")
            #expect(broken.stderr.contains("orchestrate recover"))

            let recover = try await Self.orchestrate(["recover", "p.yml"], in: folder)
            #expect(recover.status == 0, "\(recover.stderr)")
            #expect(recover.stderr.contains("the history's last line 2 was torn"), "\(recover.stderr)")
            let verify = try await Self.orchestrate(["history", "verify", "--history", "h.jsonl"], in: folder)
            #expect(verify.status == 0, "\(verify.stderr)")
            let records = try ReleaseHistory(path: folder + "/h.jsonl").records()
            #expect(records.count == 2)
            let repair = try #require(records.last?.historyRepair)
            #expect(repair.line == 2)
            #expect(read(repair.keptIn) == torn)
            #expect(records.last?.outcome == .interrupted, "the killed run is recorded by recovery")
        }
    }

    /// With no interrupted run, `recover` still repairs a torn line, and records the repair.
    @Test func recoverRepairsATornLineWithNoRunPending() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            #expect(try await Self.orchestrate(["run", "p.yml"], in: folder).status == 0)
            try write(read(folder + "/h.jsonl") + "{\"release_id\":\"rel-torn\",\"st", to: folder + "/h.jsonl")
            let recover = try await Self.orchestrate(["recover", "p.yml", "--output", "json"], in: folder)
            #expect(recover.status == 0, "\(recover.stderr)")
            #expect(recover.stdout.contains("\"history_repair\""))
            #expect(recover.stdout.contains("\"action\" : \"repair\""))
            #expect(try await Self.orchestrate(["history", "verify", "--history", "h.jsonl"], in: folder).status == 0)
            let again = try await Self.orchestrate(["recover", "p.yml"], in: folder)
            #expect(again.stdout.contains("nothing to recover"))
        }
    }

    /// `status` names a torn last line and what to do about it.
    @Test func statusReportsATornLine() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing + "deploy:\n  model: m\n", to: folder + "/p.yml")
            let clean = try await Self.orchestrate(["status", "p.yml"], in: folder)
            #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
            try write("{\"release_id\":\"rel-torn\"", to: folder + "/h.jsonl")
            let torn = try await Self.orchestrate(["status", "p.yml"], in: folder)
            #expect(torn.status == 1)
            #expect(torn.stderr.contains("h.jsonl:1: the history's last line is torn"), "\(torn.stderr)")
            #expect(torn.stderr.contains("`orchestrate recover` keeps its bytes aside"))
        }
    }

    // MARK: A history that is not a file

    /// A history that is a FIFO, a device or a folder is never opened (a FIFO would block,
    /// `/dev/zero` never ends): every command exits 2 saying what the path is.
    @Test(arguments: ["fifo", "/dev/zero", "folder"])
    func aHistoryThatIsNotAFileExitsTwo(kind: String) async throws {
        try await withTemporaryDirectory { folder in
            var path = kind
            if kind == "fifo" {
                path = folder + "/h.fifo"
                #expect(mkfifo(path, 0o644) == 0)
            } else if kind == "folder" {
                path = folder + "/h.d"
                try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            }
            let name = kind == "fifo" ? "a FIFO (named pipe)" : kind == "folder" ? "a folder" : "a character device"
            try write(
                CLITests.passing.replacingOccurrences(of: "history: h.jsonl", with: "history: \(path)"),
                to: folder + "/p.yml")
            for arguments in [
                ["history", "--history", path], ["history", "verify", "--history", path],
                ["history", "--history", path, "--last", "1"],
                ["validate", "p.yml"], ["run", "p.yml", "--dry-run"], ["run", "p.yml"],
            ] {
                let result = try await Self.orchestrate(arguments, in: folder)
                #expect(result.status == 2, "\(arguments): \(result.stderr)")
                #expect(
                    result.stderr.contains("\(path) is \(name), not a release history"),
                    "\(arguments): \(result.stderr)")
            }
        }
    }

    // MARK: Bounded memory

    /// A history of 64 MB: every command reads it a line at a time, and an append reads only its
    /// ends. Peak memory of the whole process stays far below the file's size (before: 4 to 8
    /// times it).
    @Test func aLargeHistoryIsReadInBoundedMemory() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            #expect(try await Self.orchestrate(["run", "p.yml"], in: folder).status == 0)
            let line = read(folder + "/h.jsonl")
            let copies = (64 << 20) / line.utf8.count
            let handle = try #require(FileHandle(forWritingAtPath: folder + "/h.jsonl"))
            let block = Data(String(repeating: line, count: 256).utf8)
            for _ in 0..<(copies / 256) { try handle.write(contentsOf: block) }
            try handle.close()
            let at = ISO8601DateFormatter().string(from: Date())
            for arguments in [
                ["history", "--history", "h.jsonl"], ["history", "--history", "h.jsonl", "--last", "5"],
                ["history", "--history", "h.jsonl", "--at", at],
                ["history", "--history", "h.jsonl", "--output", "json"],
                ["history", "verify", "--history", "h.jsonl"], ["explain", "--last", "--history", "h.jsonl"],
                ["report", "--last", "--history", "h.jsonl", "--out", "report"],
                ["run", "p.yml", "--dry-run", "--record-dry-run"],
            ] {
                let (status, peak) = try await Self.measured(arguments, in: folder)
                #expect(status != -1, "\(arguments) ran")
                #expect(peak < 150 << 20, "\(arguments): peak \(peak >> 20) MiB with a 64 MiB history")
            }
        }
    }

    /// A line of 256 MiB (a sparse file: no disk used), far more than the memory bound, is never held: `history` lists the records
    /// around it, `verify` names it, an append goes on after it.
    @Test func aLineLargerThanTheMemoryBoundIsNeverReadWhole() async throws {
        try await withTemporaryDirectory { folder in
            try write(CLITests.passing, to: folder + "/p.yml")
            #expect(try await Self.orchestrate(["run", "p.yml"], in: folder).status == 0)
            let path = folder + "/h.jsonl"
            // Line 2: "{" and 256 MiB of zeros (a hole), then its newline.
            let descriptor = open(path, O_WRONLY | O_APPEND)
            #expect(descriptor >= 0)
            var info = stat()
            fstat(descriptor, &info)
            _ = "{".withCString { write(descriptor, $0, 1) }
            #expect(ftruncate(descriptor, info.st_size + 1 + (256 << 20)) == 0)
            _ = "\n".withCString { write(descriptor, $0, 1) }
            close(descriptor)
            #expect(
                try await Self.orchestrate(["run", "p.yml"], in: folder).status == 0, "an append after the huge line")

            for arguments in [
                ["history", "--history", "h.jsonl"], ["history", "verify", "--history", "h.jsonl"], ["run", "p.yml"],
            ] {
                let (_, peak) = try await Self.measured(arguments, in: folder)
                #expect(peak < 150 << 20, "\(arguments): peak \(peak >> 20) MiB with a 256 MiB line")
            }
            let list = try await Self.orchestrate(["history", "--history", "h.jsonl"], in: folder)
            #expect(list.status == 0)
            #expect(list.stderr.contains("h.jsonl:2: 268435457 bytes long, more than"), "\(list.stderr)")
            #expect(list.stdout.split(separator: "\n").count == 4, "a header and 3 releases: \(list.stdout)")
            let verify = try await Self.orchestrate(
                ["history", "verify", "--history", "h.jsonl", "--output", "json"], in: folder)
            #expect(verify.status == 1)
            #expect(verify.stdout.contains("\"line\" : 2"))
            #expect(
                !verify.stdout.contains("\"line\" : 3"), "the chain goes on through the huge line: \(verify.stdout)")
        }
    }

    /// Runs `orchestrate` in `folder`, its output to a file; returns its exit status and peak memory.
    static func measured(_ arguments: [String], in folder: String) async throws -> (status: Int32, peak: Int) {
        let child = try ChildProcess.spawn(
            "/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", folder, CLITests.binary] + arguments,
            environment: ["CI": "true", "ORCHESTRATE_SIGNING_KEY": "", "ORCHESTRATE_SIGNING_KEY_FILE": ""],
            log: folder + "/measured.log",
            measuringPeakMemory: true)
        let (status, peak) = await child.waitMeasuringMemory()
        return ((status & 0x7F) == 0 ? (status >> 8) & 0xFF : -1, peak)
    }
}
