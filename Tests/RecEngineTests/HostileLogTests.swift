import Foundation
import RecEngine
import RecEngineContract
import TestSupport
import Testing

/// `recengine ingest` against sources made to hurt it: a gzip bomb, a file of garbage, a line that
/// never ends, a FIFO, a device, a pipe that stays open, a private file. Each runs the real binary
/// and bounds its peak memory far above what it needs (a few tens of MB) and far below what the
/// source would cost if it were held (hundreds of MB and up).
@Suite struct HostileLogTests {
    static let memoryBound = 150 << 20
    static let goodLines = [
        "2022-03-18T05:00:00,17,GET /rate/up+2009=2", "2022-03-18T05:00:01,34,GET /rate/heat+1995=4",
        "2022-03-18T05:00:02,51,GET /rate/alien+1979=3",
    ]

    struct Run {
        var exit: ChildProcess.Exit
        var output: String
        var errors: String

        /// The `--output json` report.
        var report: [String: Any] {
            (try? JSONSerialization.jsonObject(with: Data(output.utf8))) as? [String: Any] ?? [:]
        }

        func count(_ key: String) -> Int? { report[key] as? Int }
    }

    /// Runs `recengine ingest ARGUMENTS --output json`, killed if it runs past two minutes.
    func ingest(_ folder: String, _ arguments: [String], standardInput: Int32? = nil) async throws -> Run {
        let name = UUID().uuidString
        let output = "\(folder)/\(name).out"
        let errors = "\(folder)/\(name).err"
        let child = try ChildProcess.spawn(
            recengineBinary, ["ingest"] + arguments + ["--output", "json"], log: output, errors: errors,
            standardInput: standardInput,
            measuringPeakMemory: true)
        let exit = await child.exit(killingAfter: .seconds(120))
        return Run(exit: exit, output: read(output), errors: read(errors))
    }

    func shell(_ script: String) async throws {
        let result = try await runCommand("/bin/sh", ["-c", script])
        try #require(result.status == 0, "\(script): \(result.stderr)")
    }

    func mode(_ path: String) -> mode_t? {
        var info = stat()
        return stat(path, &info) == 0 ? info.st_mode & 0o7777 : nil
    }

    @Test func aGzipBombIsRefusedBeforeItFillsMemory() async throws {
        try await withTemporaryDirectory { folder in
            // 256 MiB of 1000-character lines in about 260 kB: a ratio of about 1000, refused
            // after about 26 MB (100 times the file) were read.
            try await shell(
                "mkdir -p '\(folder)/log' && yes \"$(printf '%01000d' 0)\" | head -c 268435456 | gzip -9 > '\(folder)/log/movielog.gz'"
            )
            let run = try await ingest(
                folder, ["--source", folder + "/log", "--store", folder + "/store", "--out", folder + "/ratings.csv"])
            #expect(run.exit.code == 2, "\(run.errors)")
            #expect(run.errors.contains("expands more than 100 times"), "\(run.errors)")
            #expect(run.errors.contains("nothing of this run was committed"))
            #expect(!FileManager.default.fileExists(atPath: folder + "/store/state.json"))
            #expect(!FileManager.default.fileExists(atPath: folder + "/ratings.csv"))
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: folder + "/store/segments")) ?? []
            #expect(leftovers.isEmpty, "segment files left: \(leftovers)")
            #expect(run.exit.peakMemory < Self.memoryBound, "peak memory \(run.exit.peakMemory >> 20) MiB")
        }
    }

    @Test func rejectedLinesAreCountedAndWrittenNotHeld() async throws {
        try await withTemporaryDirectory { folder in
            // 20 MB of garbage lines around a few good ones (before the fix: 3.6 GB held).
            try await shell(
                "mkdir -p '\(folder)/log' && { printf '%s\\n' '\(Self.goodLines[0])'; yes \"$(printf 'garbage %0200d' 0)\" | head -n 100000; printf '%s\\n' '\(Self.goodLines[1])'; } > '\(folder)/log/movielog.log'"
            )
            let run = try await ingest(
                folder,
                [
                    "--source", folder + "/log", "--store", folder + "/store", "--out", folder + "/ratings.csv",
                    "--rejects", folder + "/rejects.tsv",
                ])
            #expect(run.exit.code == 0, "\(run.errors)")
            #expect(run.count("lines") == 100_002)
            #expect(run.count("ratings_read") == 2)
            #expect((run.report["rejected_by_reason"] as? [String: Int])?["truncated"] == 100_000)
            // Every rejected line is in the rejects file; the report shows a few.
            #expect(await lineCount(ofFile: folder + "/rejects.tsv") == 100_000)
            let sample = run.report["rejected_sample"] as? [[String: Any]]
            #expect(sample?.count == 5)
            #expect(
                (sample?.first?["origin"] as? String)?.hasSuffix("movielog.log@\(Self.goodLines[0].utf8.count + 1)")
                    == true)
            #expect(run.exit.peakMemory < Self.memoryBound, "peak memory \(run.exit.peakMemory >> 20) MiB")
        }
    }

    @Test func anOverlongLineIsRejectedAndTheLinesBehindItAreRead() async throws {
        try await withTemporaryDirectory { folder in
            // A 64 MiB line between good ones.
            try await shell(
                "mkdir -p '\(folder)/log' && { printf '%s\\n' '\(Self.goodLines[0])'; head -c 67108864 /dev/zero | tr '\\0' x; printf '\\n%s\\n%s\\n' '\(Self.goodLines[1])' '\(Self.goodLines[2])'; } > '\(folder)/log/movielog.log'"
            )
            let arguments = [
                "--source", folder + "/log", "--store", folder + "/store", "--out", folder + "/ratings.csv",
                "--rejects", folder + "/rejects.tsv",
            ]
            let run = try await ingest(folder, arguments + ["--max-seconds", "60"])
            #expect(run.exit.code == 0, "\(run.errors)")
            #expect(run.count("lines") == 4)
            #expect(run.count("ratings_read") == 3)
            #expect((run.report["rejected_by_reason"] as? [String: Int])?["line_too_long"] == 1)
            let rejects = read(folder + "/rejects.tsv")
            #expect(
                rejects.hasPrefix("\(folder)/log/movielog.log@\(Self.goodLines[0].utf8.count + 1)\tline_too_long\txxx"))
            #expect(
                rejects.utf8.count < 2048, "the rejects file keeps the line's head, not \(rejects.utf8.count) bytes")
            #expect(run.exit.peakMemory < Self.memoryBound, "peak memory \(run.exit.peakMemory >> 20) MiB")
            let again = try await ingest(folder, arguments)
            #expect(again.count("lines") == 0, "the position is past the long line and the lines behind it")
        }
    }

    @Test func anOverlongLastLineWaitsForItsNewlineAndIsRejectedOnce() async throws {
        try await withTemporaryDirectory { folder in
            let log = folder + "/log/movielog.log"
            // Twice the longest line read.
            try write(Self.goodLines[0] + "\n" + String(repeating: "y", count: 2 << 20), to: log)
            func ingest() throws -> IngestReport {
                try MovieLogIngest(
                    source: .files(folder + "/log"), store: folder + "/store", output: folder + "/ratings.csv"
                ).run()
            }
            let first = try ingest()
            #expect(first.lines == 1)
            #expect(first.notes.contains { $0.contains("no newline") })
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(("yyy\n" + Self.goodLines[1] + "\n").utf8))
            try handle.close()
            let second = try ingest()
            #expect(second.lines == 2)
            #expect(second.rejectedByReason == ["line_too_long": 1])
            #expect(second.ratingsRead == 1)
            #expect(try ingest().lines == 0)
        }
    }

    /// A gzip file's committed position is reached by decompressing up to it, under the same
    /// deadline and ratio bound as the rest.
    @Test func aGzipFileGoesOnFromItsCommittedPosition() async throws {
        try await withTemporaryDirectory { folder in
            let log = folder + "/log/movielog.log"
            func gzip(_ lines: [String]) async throws {
                try write(lines.joined(separator: "\n") + "\n", to: log)
                try await shell("gzip -f '\(log)'")
            }
            func ingest() throws -> IngestReport {
                try MovieLogIngest(
                    source: .files(folder + "/log"), store: folder + "/store", output: folder + "/ratings.csv"
                ).run()
            }
            try await gzip(Array(Self.goodLines.prefix(1)))
            #expect(try ingest().lines == 1)
            try await gzip(Self.goodLines)
            let next = try ingest()
            #expect(next.lines == 2)
            #expect(next.ratings == 3)
            try await gzip([])
            #expect { try ingest() } throws: {
                "\($0)".contains("the decompressed file is shorter than the committed position")
            }
        }
    }

    @Test func aFIFOIsRefusedAtOnceAlsoInAFolder() async throws {
        try await withTemporaryDirectory { folder in
            try FileManager.default.createDirectory(atPath: folder + "/log", withIntermediateDirectories: true)
            try write(Self.goodLines.joined(separator: "\n") + "\n", to: folder + "/log/a.log")
            #expect(mkfifo(folder + "/log/b.fifo", 0o600) == 0)
            for source in [folder + "/log/b.fifo", folder + "/log"] {
                let run = try await ingest(
                    folder,
                    [
                        "--source", source, "--store", folder + "/store", "--out", folder + "/ratings.csv",
                        "--max-seconds", "5",
                    ])
                #expect(!run.exit.killedAtDeadline, "ingest blocked on the FIFO")
                #expect(run.exit.code == 2, "\(run.errors)")
                #expect(
                    run.errors.contains("b.fifo: the log source is a FIFO (named pipe), not a regular file"),
                    "\(run.errors)")
                #expect(!FileManager.default.fileExists(atPath: folder + "/store"))
            }
        }
    }

    @Test func aDeviceIsRefused() async throws {
        try await withTemporaryDirectory { folder in
            let run = try await ingest(
                folder,
                [
                    "--source", "/dev/zero", "--store", folder + "/store", "--out", folder + "/ratings.csv",
                    "--max-seconds", "3",
                ])
            #expect(run.exit.code == 2, "\(run.errors)")
            #expect(
                run.errors.contains("/dev/zero: the log source is a character device, not a regular file"),
                "\(run.errors)")
        }
    }

    @Test func standardInputThatStaysOpenEndsAtTheDeadline() async throws {
        try await withTemporaryDirectory { folder in
            var ends: [Int32] = [0, 0]
            #expect(pipe(&ends) == 0)
            // Only the child's standard input (a copy, made by dup2) stays open in the child.
            for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            defer { close(ends[1]) }
            let text = Self.goodLines[0] + "\n" + Self.goodLines[1] + "\n"
            #expect(text.withCString { Foundation.write(ends[1], $0, strlen($0)) } == text.utf8.count)
            let run = try await ingest(
                folder,
                [
                    "--source", "-", "--store", folder + "/store", "--out", folder + "/ratings.csv", "--max-seconds",
                    "2",
                ],
                standardInput: ends[0])
            close(ends[0])
            #expect(!run.exit.killedAtDeadline, "ingest blocked on standard input past --max-seconds")
            #expect(run.exit.code == 0, "\(run.errors)")
            #expect(run.count("lines") == 2)
            #expect(run.count("ratings") == 2)
        }
    }

    /// Everything ingest writes holds the log's lines: it is private (0600), or as private as the
    /// source where that is stricter; the report quotes no line of a private source.
    @Test(arguments: [(0o644, 0o600), (0o600, 0o600), (0o640, 0o600), (0o400, 0o400)] as [(mode_t, mode_t)])
    func outputsAreNoMoreReadableThanTheSource(source: mode_t, expected: mode_t) async throws {
        try await withTemporaryDirectory { folder in
            let log = folder + "/log/movielog.log"
            try write(
                Self.goodLines.joined(separator: "\n")
                    + "\nsecret line\n2022-03-18T05:00:03,17,GET /data/m/up+2009/0.mpg\n", to: log)
            #expect(chmod(log, source) == 0)
            let run = try await ingest(
                folder,
                [
                    "--source", folder + "/log", "--store", folder + "/store", "--out", folder + "/ratings.csv",
                    "--watches", folder + "/watches.csv",
                    "--rejects", folder + "/rejects.tsv",
                ])
            #expect(run.exit.code == 0, "\(run.errors)")
            let segments = try FileManager.default.contentsOfDirectory(atPath: folder + "/store/segments").map {
                "\(folder)/store/segments/\($0)"
            }
            #expect(segments.count == 3)
            for path in [
                folder + "/ratings.csv", folder + "/watches.csv", folder + "/rejects.tsv", folder + "/store/state.json",
            ] + segments {
                #expect(mode(path) == expected, "\(path) has mode \(String(mode(path) ?? 0, radix: 8))")
            }
            // The report goes to the history, which anyone may read: it quotes a line only of a
            // source that anyone may read.
            let sample = try #require((run.report["rejected_sample"] as? [[String: Any]])?.first)
            #expect(sample["reason"] as? String == "truncated")
            #expect(sample["text"] as? String == (source & 0o004 != 0 ? "secret line" : nil))
        }
    }

    @Test func aRecordLimitGoesOnFromTheLineItStoppedBefore() async throws {
        try await withTemporaryDirectory { folder in
            try write(Self.goodLines.joined(separator: "\n") + "\n", to: folder + "/log/movielog.log")
            let arguments = [
                "--source", folder + "/log", "--store", folder + "/store", "--out", folder + "/ratings.csv",
            ]
            let first = try await ingest(folder, arguments + ["--max-records", "1"])
            #expect(first.count("lines") == 1)
            let second = try await ingest(folder, arguments)
            #expect(second.count("lines") == 2, "the line the limit stopped at is read by the next run")
            #expect(second.count("ratings") == 3)
        }
    }
}
